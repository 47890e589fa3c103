/* The safetensors reader on arbitrary bytes. Whatever parses must also survive a round trip:
 * serialised again and re-read, it gives the same entries and metadata (else abort, which
 * libFuzzer reports). Tensor data is capped by the config so memory stays small. */
#include <string.h>

#include "checkpoint/checkpoint_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    supcon_context *ctx = fuzz_context();
    supcon_safetensors_config cfg = supcon_safetensors_config_default();
    cfg.max_data_bytes = (uint64_t)1 << 24;
    supcon_safetensors *st = NULL, *again = NULL;
    if (supcon_safetensors_parse(ctx, data, size, &cfg, &st) != SUPCON_OK)
        return 0;
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (sc_st_serialize(st, &bytes, &n) != SUPCON_OK)
        abort();
    if (supcon_safetensors_parse(ctx, bytes, n, &cfg, &again) != SUPCON_OK)
        abort();
    if (supcon_safetensors_count(st) != supcon_safetensors_count(again) ||
        supcon_safetensors_metadata_count(st) != supcon_safetensors_metadata_count(again))
        abort();
    for (int64_t i = 0; i < supcon_safetensors_count(st); i++) {
        size_t b = supcon_safetensors_bytes(st, i);
        if (strcmp(supcon_safetensors_name(st, i), supcon_safetensors_name(again, i)) ||
            supcon_safetensors_dtype(st, i) != supcon_safetensors_dtype(again, i) ||
            supcon_safetensors_ndim(st, i) != supcon_safetensors_ndim(again, i) ||
            b != supcon_safetensors_bytes(again, i) ||
            memcmp(supcon_safetensors_data(st, i), supcon_safetensors_data(again, i), b) ||
            supcon_safetensors_find(again, supcon_safetensors_name(st, i)) != i)
            abort();
    }
    for (int64_t i = 0; i < supcon_safetensors_metadata_count(st); i++)
        if (strcmp(supcon_safetensors_metadata_key(st, i), supcon_safetensors_metadata_key(again, i)) ||
            strcmp(supcon_safetensors_metadata_value(st, i), supcon_safetensors_metadata_value(again, i)))
            abort();
    free(bytes);
    supcon_safetensors_free(again);
    supcon_safetensors_free(st);
    return 0;
}
