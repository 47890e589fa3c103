/* CIFAR binary records: the first byte picks CIFAR-10 (even) or CIFAR-100 (odd), the rest is
 * the file. Every accepted image must be readable back through the public accessors. */
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    supcon_context *ctx = fuzz_context();
    sc_images im;
    memset(&im, 0, sizeof im);
    im.channels = (data[0] & 2) ? 1 : 3;
    if (sc_cifar_parse(ctx, "fuzz.bin", data + 1, size - 1, data[0] & 1, &im) == SUPCON_OK) {
        for (int64_t i = 0; i < im.count; i++)
            if (im.labels[i] < 0 || im.labels[i] >= ((data[0] & 1) ? 100 : 10) ||
                im.offsets[i] + 1024 * im.channels > (int64_t)im.bytes)
                abort();
    }
    sc_images_free(&im);
    return 0;
}
