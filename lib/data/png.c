/* PNG decoding with libpng, from memory. libpng reports errors by longjmp: its error
 * callback keeps the message and jumps back here, so a corrupt or truncated file becomes a
 * status, never a message on stderr or an abort. Warnings are dropped. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "error.h"

typedef struct png_source {
    const uint8_t *data;
    size_t size, pos;
    char msg[256];
} png_source;

static void on_error(png_structp png, png_const_charp msg)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t n)
{
    png_source *src = png_get_io_ptr(png);
    if (n > src->size - src->pos)
        png_error(png, "file ends early (truncated)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

supcon_status sc_png_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                            size_t size, int64_t max_pixels, sc_picture *pic)
{
    memset(pic, 0, sizeof *pic);
    png_source src = {data, size, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    if (!png)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': libpng could not start", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': libpng could not start", name);
    }
    /* changed after setjmp and read after a longjmp: volatile */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int too_big = 0;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (too_big)
            return sc_error(ctx, SUPCON_ERR_UNSUPPORTED,
                            "'%s': image of more than %lld pixels", name, (long long)max_pixels);
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': corrupt PNG (%s) at byte offset %zu", name,
                        src.msg, src.pos);
    }
    png_set_read_fn(png, &src, on_read);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((int64_t)w * (int64_t)h > max_pixels) {
        too_big = 1;
        png_error(png, "too big");
    }
    int color = png_get_color_type(png, info);
    /* As PIL's convert("RGB") / convert("L"): alpha and transparency are dropped, not
     * composited; 16-bit samples keep their high byte. */
    png_set_strip_16(png);
    png_set_packing(png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    if ((channels != 1 && channels != 3) || png_get_rowbytes(png, info) != (size_t)w * channels)
        png_error(png, "unexpected pixel layout after conversion");
    pixels = malloc((size_t)w * h * (size_t)channels);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * w * (size_t)channels;
    png_read_image(png, rows);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    pic->pixels = pixels;
    pic->height = (int)h;
    pic->width = (int)w;
    pic->channels = channels;
    return SUPCON_OK;
}
