/* PNG output with libpng: 8-bit RGB, written to a temporary file beside the target and renamed
 * over it. libpng reports errors by calling our handler, which longjmps back into
 * plot_png_write only, so every failure becomes -1 and a message. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "plot_canvas.h"

typedef struct png_guard {
    jmp_buf jump;
    char msg[256];
} png_guard;

static void on_error(png_structp png, png_const_charp msg) {
    png_guard *g = png_get_error_ptr(png);
    snprintf(g->msg, sizeof g->msg, "%s%s%s", msg, errno ? ": " : "", errno ? strerror(errno) : "");
    longjmp(g->jump, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* The libpng part; f is open for writing. Returns 0, or -1 with g->msg set. */
static int write_png(FILE *f, const plot_canvas *c, png_guard *g) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, g, on_error, on_warning);
    if (!png) {
        snprintf(g->msg, sizeof g->msg, "libpng could not start (out of memory)");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(g->msg, sizeof g->msg, "libpng could not start (out of memory)");
        return -1;
    }
    if (setjmp(g->jump)) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    errno = 0;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->width, (png_uint_32)c->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->height; y++) png_write_row(png, c->rgb + (size_t)y * (size_t)c->width * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int plot_png_write(const plot_canvas *c, const char *path, char *err, size_t err_size) {
    if (!c->rgb || c->width < 1 || c->height < 1) return plot_error(err, err_size, "'%s': empty picture", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return plot_error(err, err_size, "'%s': path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return plot_error(err, err_size, "cannot write '%s': %s", path, strerror(errno));
    png_guard g;
    g.msg[0] = 0;
    int rc = write_png(f, c, &g);
    if (rc == 0 && fflush(f) != 0) {
        snprintf(g.msg, sizeof g.msg, "%s", strerror(errno));
        rc = -1;
    }
    if (fclose(f) != 0 && rc == 0) {
        snprintf(g.msg, sizeof g.msg, "%s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(g.msg, sizeof g.msg, "cannot rename the temporary file into place: %s", strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        remove(tmp);
        return plot_error(err, err_size, "cannot write '%s': %s", path, g.msg);
    }
    return 0;
}
