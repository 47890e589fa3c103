/* IDX files (MNIST, Fashion-MNIST): bytes 0 0 <type> <ndims>, then ndims big-endian uint32
 * extents, then the data. Only unsigned bytes (type 0x08) are images or labels. */
#include <string.h>

#include "data_internal.h"
#include "error.h"

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

supcon_status sc_idx_header(supcon_context *ctx, const char *name, const uint8_t *data,
                            size_t size, int ndims, uint32_t dims[4], int *ndims_out,
                            size_t *data_offset)
{
    if (size < 4)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': %zu bytes, too short for the 4-byte magic", name, size);
    if (data[0] != 0 || data[1] != 0)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': bad magic %02x %02x %02x %02x (expected 00 00 08 nn)",
                        name, data[0], data[1], data[2], data[3]);
    if (data[2] != 0x08)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': element type 0x%02x at offset 2 is not unsigned bytes "
                        "(0x08)",
                        name, data[2]);
    int nd = data[3];
    if (nd < 1 || nd > 4 || (ndims > 0 && nd != ndims))
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': %d dimensions at offset 3, expected %d", name, nd,
                        ndims > 0 ? ndims : 3);
    size_t off = 4 + 4 * (size_t)nd;
    if (size < off)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': header truncated (%zu bytes, needs %zu)", name, size,
                        off);
    uint64_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(data + 4 + 4 * i);
        total *= dims[i];
        if (total > ((uint64_t)1 << 40))
            return sc_error(ctx, SUPCON_ERR_FORMAT,
                            "IDX file '%s': dimensions give an implausible size", name);
    }
    if (size - off != total)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX file '%s': header promises %llu data bytes after offset %zu but "
                        "the file holds %zu (%s)",
                        name, (unsigned long long)total, off, size - off,
                        size - off < total ? "truncated" : "trailing bytes");
    *ndims_out = nd;
    *data_offset = off;
    return SUPCON_OK;
}

supcon_status sc_idx_parse(supcon_context *ctx, const char *images_name, const uint8_t *images,
                           size_t images_size, const char *labels_name, const uint8_t *labels,
                           size_t labels_size, sc_images *im)
{
    uint32_t idim[4] = {0}, ldim[4] = {0};
    int ind = 0, lnd = 0;
    size_t ioff = 0, loff = 0;
    supcon_status st = sc_idx_header(ctx, images_name, images, images_size, 0, idim, &ind, &ioff);
    if (st != SUPCON_OK)
        return st;
    if (ind != 3 && !(ind == 4 && (idim[3] == 1 || idim[3] == 3)))
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX images file '%s': %d dimensions; expected [N, H, W] or "
                        "[N, H, W, C] with C 1 or 3",
                        images_name, ind);
    st = sc_idx_header(ctx, labels_name, labels, labels_size, 1, ldim, &lnd, &loff);
    if (st != SUPCON_OK)
        return st;
    if (idim[0] != ldim[0])
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "IDX files '%s' and '%s' disagree: %u images but %u labels",
                        images_name, labels_name, idim[0], ldim[0]);
    int h = (int)idim[1], w = (int)idim[2], c = ind == 4 ? (int)idim[3] : 1;
    if (idim[0] > 0 && (idim[1] == 0 || idim[2] == 0 || idim[1] > 65535 || idim[2] > 65535))
        return sc_error(ctx, SUPCON_ERR_FORMAT, "IDX images file '%s': image size %ux%u",
                        images_name, idim[1], idim[2]);
    size_t per = (size_t)h * (size_t)w * (size_t)c;
    int64_t n = idim[0];
    st = sc_images_reserve(ctx, im, n, (size_t)n * per / (size_t)c * (size_t)im->channels);
    if (st != SUPCON_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        st = sc_images_push(ctx, im, images + ioff + (size_t)i * per, SUPCON_LAYOUT_HWC, c, h,
                            w, labels[loff + (size_t)i]);
        if (st != SUPCON_OK)
            return st;
    }
    return SUPCON_OK;
}
