/* IDX pairs, plain or gzipped: the first two bytes give the length of the images file, the
 * rest after it is the labels file. Inflation is capped at 16 MiB so the fuzzer's memory
 * limit is never the reason a run stops. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static supcon_status maybe_inflate(supcon_context *ctx, const uint8_t *in, size_t n,
                                   uint8_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = n;
    if (!sc_is_gzip(in, n))
        return SUPCON_OK;
    return sc_gunzip(ctx, "fuzz.gz", in, n, (size_t)16 << 20, out, out_n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]);
    data += 2;
    size -= 2;
    if (split > size)
        split = size;
    supcon_context *ctx = fuzz_context();
    uint8_t *img = NULL, *lab = NULL;
    size_t in = 0, ln = 0;
    if (maybe_inflate(ctx, data, split, &img, &in) == SUPCON_OK &&
        maybe_inflate(ctx, data + split, size - split, &lab, &ln) == SUPCON_OK) {
        sc_images im;
        memset(&im, 0, sizeof im);
        im.channels = 1;
        sc_idx_parse(ctx, "images", img ? img : data, in, "labels", lab ? lab : data + split, ln,
                     &im);
        sc_images_free(&im);
    }
    free(img);
    free(lab);
    return 0;
}
