/* `supcon info CKPT`: a checkpoint's metadata, then one line per tensor with its dtype,
 * shape and a 64-bit FNV-1a hash of its bytes, so that two runs can be compared with diff
 * (the tests check that a resumed run ends with the same tensors as an uninterrupted one). */
#include <string.h>

#include "cli.h"

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int cli_info(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        const int help = argc == 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0);
        fprintf(help ? stdout : stderr,
                "usage: supcon info CHECKPOINT.safetensors\n"
                "prints the metadata (\"meta KEY VALUE\") and every tensor (\"tensor NAME DTYPE [SHAPE] HASH\")\n");
        return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    supcon_context_config c = supcon_context_config_default();
    c.backend = SUPCON_BACKEND_CPU;
    c.num_threads = 1;
    supcon_context *ctx = NULL;
    supcon_status s = supcon_context_create(&c, &ctx);
    if (s != SUPCON_OK) return cli_fail(NULL, s, "context");
    supcon_safetensors *st = NULL;
    s = supcon_safetensors_load(ctx, argv[0], NULL, &st);
    if (s != SUPCON_OK) {
        int rc = cli_fail(ctx, s, argv[0]);
        supcon_context_free(ctx);
        return rc;
    }
    for (int64_t i = 0; i < supcon_safetensors_metadata_count(st); i++)
        printf("meta %s %s\n", supcon_safetensors_metadata_key(st, i), supcon_safetensors_metadata_value(st, i));
    for (int64_t i = 0; i < supcon_safetensors_count(st); i++) {
        const supcon_dtype dt = supcon_safetensors_dtype(st, i);
        printf("tensor %s %s [", supcon_safetensors_name(st, i),
               dt == SUPCON_FLOAT32 ? "F32" : dt == SUPCON_INT64 ? "I64" : "I32");
        for (int d = 0; d < supcon_safetensors_ndim(st, i); d++)
            printf("%s%lld", d ? ", " : "", (long long)supcon_safetensors_dim(st, i, d));
        printf("] %016llx\n", (unsigned long long)fnv1a(supcon_safetensors_data(st, i), supcon_safetensors_bytes(st, i)));
    }
    supcon_safetensors_free(st);
    supcon_context_free(ctx);
    return CLI_EXIT_OK;
}
