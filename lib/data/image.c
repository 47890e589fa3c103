/* Picks the decoder from a file's first bytes (as PIL does), not from its name, and names
 * the formats it recognises but does not decode. */
#include <string.h>

#include "data_internal.h"
#include "error.h"

supcon_status sc_image_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                              size_t size, int64_t max_pixels, sc_picture *pic)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    memset(pic, 0, sizeof *pic);
    if (size >= 8 && memcmp(data, png_sig, 8) == 0)
        return sc_png_decode(ctx, name, data, size, max_pixels, pic);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return sc_jpeg_decode(ctx, name, data, size, max_pixels, pic);
    const char *other = NULL;
    if (size >= 2 && data[0] == 'B' && data[1] == 'M')
        other = "BMP";
    else if (size >= 4 && memcmp(data, "GIF8", 4) == 0)
        other = "GIF";
    else if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        other = "WebP";
    else if (size >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0))
        other = "TIFF";
    else if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7')
        other = "PNM";
    if (other)
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED,
                        "'%s': %s images are not supported (PNG and JPEG only)", name, other);
    if (size == 0)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': empty file, not an image", name);
    uint8_t b[4] = {0};
    memcpy(b, data, size < 4 ? size : 4);
    return sc_error(ctx, SUPCON_ERR_FORMAT,
                    "'%s': not a PNG or JPEG image (starts with bytes %02x %02x %02x %02x)", name,
                    b[0], b[1], b[2], b[3]);
}
