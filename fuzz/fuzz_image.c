/* PNG / JPEG (and anything else) through the decoder the image folders use, then through
 * the contrastive pipeline so the transforms see odd sizes and grey images too. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    supcon_context *ctx = fuzz_context();
    static supcon_transform *tf = NULL;
    if (!tf) {
        supcon_transform_config cfg = supcon_transform_config_default();
        cfg.size = 8;
        if (supcon_transform_create(ctx, &cfg, &tf) != SUPCON_OK)
            abort();
    }
    sc_picture pic;
    if (sc_image_decode(ctx, "fuzz.img", data, size, (int64_t)1 << 20, &pic) != SUPCON_OK)
        return 0;
    if (pic.channels != 1 && pic.channels != 3)
        abort();
    size_t plane = (size_t)pic.height * (size_t)pic.width;
    uint8_t *chw = malloc(plane * (size_t)pic.channels);
    for (int c = 0; c < pic.channels; c++)
        for (size_t k = 0; k < plane; k++)
            chw[(size_t)c * plane + k] = pic.pixels[k * (size_t)pic.channels + (size_t)c];
    float out[3 * 8 * 8];
    for (int v = 0; v < 2; v++)
        if (supcon_transform_apply(tf, chw, pic.channels, pic.height, pic.width, 1, 0,
                                   (uint64_t)size, v, out, NULL) != SUPCON_OK)
            abort();
    free(chw);
    free(pic.pixels);
    return 0;
}
