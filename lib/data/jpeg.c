/* JPEG decoding with libjpeg(-turbo), from memory. The error manager jumps back here instead
 * of exit()ing and never prints. A file that ends early is an error (libjpeg only warns and
 * pads with grey), as in PIL without LOAD_TRUNCATED_IMAGES; other warnings are tolerated. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "data_internal.h"
#include "error.h"

typedef struct jpeg_guard {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back a pointer to it */
    jmp_buf jump;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} jpeg_guard;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, g->msg);
    longjmp(g->jump, 1);
}

static void on_emit(j_common_ptr cinfo, int level)
{
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    if (level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF)
            g->truncated = 1;
    }
}

static void on_output(j_common_ptr cinfo)
{
    (void)cinfo;
}

supcon_status sc_jpeg_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                             size_t size, int64_t max_pixels, sc_picture *pic)
{
    memset(pic, 0, sizeof *pic);
    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard;
    memset(&guard, 0, sizeof guard);
    cinfo.err = jpeg_std_error(&guard.mgr);
    guard.mgr.error_exit = on_error_exit;
    guard.mgr.emit_message = on_emit;
    guard.mgr.output_message = on_output;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;
    if (setjmp(guard.jump)) {
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': corrupt JPEG (%s)", name, guard.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int64_t npix = (int64_t)cinfo.image_width * (int64_t)cinfo.image_height;
    if (npix > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED, "'%s': image of %lld pixels, more than %lld",
                        name, (long long)npix, (long long)max_pixels);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE)
        cinfo.out_color_space = JCS_GRAYSCALE;
    else if (cmyk)
        cinfo.out_color_space = JCS_CMYK;
    else
        cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int in_c = cinfo.output_components, out_c = cmyk ? 3 : in_c;
    if ((cmyk && in_c != 4) || (!cmyk && in_c != 1 && in_c != 3))
        ERREXIT(&cinfo, JERR_CONVERSION_NOTIMPL);
    pixels = malloc((size_t)w * (size_t)h * (size_t)out_c);
    row = malloc((size_t)w * (size_t)in_c);
    if (!pixels || !row)
        ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW r = row;
        if (jpeg_read_scanlines(&cinfo, &r, 1) != 1)
            break; /* suspended: cannot happen with a memory source */
        uint8_t *dst = pixels + (size_t)y * (size_t)w * (size_t)out_c;
        if (!cmyk) {
            memcpy(dst, row, (size_t)w * (size_t)in_c);
        } else {
            /* Adobe CMYK is stored inverted: each channel times K gives RGB (approximate, no
             * colour profile). */
            for (int x = 0; x < w; x++) {
                const uint8_t *p = row + 4 * x;
                for (int c = 0; c < 3; c++)
                    dst[3 * x + c] = (uint8_t)((p[c] * p[3] + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (guard.truncated) {
        free(pixels);
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': truncated JPEG (premature end of data)",
                        name);
    }
    pic->pixels = pixels;
    pic->height = h;
    pic->width = w;
    pic->channels = out_c;
    return SUPCON_OK;
}
