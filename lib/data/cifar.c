/* CIFAR-10 / CIFAR-100 binary records: [label] or [coarse, fine] then 3072 pixel bytes
 * (1024 R, 1024 G, 1024 B, each 32x32 row-major). Only whole files of whole records. */
#include <string.h>

#include "data_internal.h"
#include "error.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)

supcon_status sc_cifar_parse(supcon_context *ctx, const char *name, const uint8_t *data,
                             size_t size, int cifar100, sc_images *im)
{
    size_t head = cifar100 ? 2 : 1;
    size_t rec = head + CIFAR_PIXELS;
    int classes = cifar100 ? 100 : 10;
    if (size == 0)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "CIFAR file '%s' is empty", name);
    if (size % rec != 0)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "CIFAR file '%s': size %zu is not a whole number of %zu-byte records "
                        "(record %zu is truncated: it starts at offset %zu, %zu bytes short)",
                        name, size, rec, size / rec, size / rec * rec, rec - size % rec);
    size_t n = size / rec;
    supcon_status st = sc_images_reserve(ctx, im, (int64_t)n, n * (size_t)CIFAR_PIXELS);
    if (st != SUPCON_OK)
        return st;
    for (size_t r = 0; r < n; r++) {
        const uint8_t *p = data + r * rec;
        if (cifar100 && p[0] >= 20)
            return sc_error(ctx, SUPCON_ERR_FORMAT,
                            "CIFAR-100 file '%s': coarse label %u out of range 0..19 in record "
                            "%zu (offset %zu)",
                            name, p[0], r, r * rec);
        int label = p[head - 1];
        if (label >= classes)
            return sc_error(ctx, SUPCON_ERR_FORMAT,
                            "CIFAR-%d file '%s': label %d out of range 0..%d in record %zu "
                            "(offset %zu)",
                            classes, name, label, classes - 1, r, r * rec + head - 1);
        st = sc_images_push(ctx, im, p + head, SUPCON_LAYOUT_CHW, 3, CIFAR_SIDE, CIFAR_SIDE,
                            label);
        if (st != SUPCON_OK)
            return st;
    }
    return SUPCON_OK;
}
