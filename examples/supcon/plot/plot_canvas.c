/* The RGB canvas: blending, rectangles, anti-aliased lines and discs (coverage from the
 * distance of each pixel centre to the shape), plus the palette and the error helper shared by
 * the plots. Text is in plot_font.c, PNG output in plot_png.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "plot.h"
#include "plot_canvas.h"

int plot_canvas_init(plot_canvas *c, int width, int height, plot_rgb background) {
    c->width = c->height = 0;
    c->rgb = NULL;
    if (width < 1 || height < 1) return -1;
    const size_t n = (size_t)width * (size_t)height;
    uint8_t *p = malloc(n * 3);
    if (!p) return -1;
    for (size_t i = 0; i < n; i++) {
        p[3 * i] = background.r;
        p[3 * i + 1] = background.g;
        p[3 * i + 2] = background.b;
    }
    c->width = width;
    c->height = height;
    c->rgb = p;
    return 0;
}

void plot_canvas_free(plot_canvas *c) {
    if (!c) return;
    free(c->rgb);
    c->rgb = NULL;
    c->width = c->height = 0;
}

static uint8_t mix(uint8_t dst, uint8_t src, float a) {
    const float v = (float)dst + ((float)src - (float)dst) * a;
    return (uint8_t)(v + 0.5f);
}

void plot_blend(plot_canvas *c, int x, int y, plot_rgb col, float alpha) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height || !(alpha > 0)) return;
    if (alpha > 1) alpha = 1;
    uint8_t *p = c->rgb + ((size_t)y * (size_t)c->width + (size_t)x) * 3;
    p[0] = mix(p[0], col.r, alpha);
    p[1] = mix(p[1], col.g, alpha);
    p[2] = mix(p[2], col.b, alpha);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1, plot_rgb col, float alpha) {
    x0 = clampi(x0, 0, c->width), x1 = clampi(x1, 0, c->width);
    y0 = clampi(y0, 0, c->height), y1 = clampi(y1, 0, c->height);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) plot_blend(c, x, y, col, alpha);
}

void plot_rect(plot_canvas *c, int x0, int y0, int x1, int y1, int line_width, plot_rgb col) {
    const int w = line_width < 1 ? 1 : line_width;
    plot_fill_rect(c, x0, y0, x1, y0 + w, col, 1);
    plot_fill_rect(c, x0, y1 - w, x1, y1, col, 1);
    plot_fill_rect(c, x0, y0 + w, x0 + w, y1 - w, col, 1);
    plot_fill_rect(c, x1 - w, y0 + w, x1, y1 - w, col, 1);
}

/* The pixel range [*a, *b) a shape spanning [lo, hi] touches, clipped to [0, n); doubles are
 * clamped before the conversion so that a wild coordinate cannot overflow an int. */
static void span(double lo, double hi, int n, int *a, int *b) {
    if (lo < -1) lo = -1;
    if (hi > n + 1) hi = n + 1;
    *a = clampi((int)floor(lo), 0, n);
    *b = clampi((int)ceil(hi) + 1, 0, n);
}

void plot_line(plot_canvas *c, double x0, double y0, double x1, double y1, double width, plot_rgb col,
               float alpha) {
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1) || !(width > 0)) return;
    const double h = width / 2 + 1;
    int xa, xb, ya, yb;
    span(fmin(x0, x1) - h, fmax(x0, x1) + h, c->width, &xa, &xb);
    span(fmin(y0, y1) - h, fmax(y0, y1) + h, c->height, &ya, &yb);
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y < yb; y++)
        for (int x = xa; x < xb; x++) {
            const double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            const double ex = px - t * dx, ey = py - t * dy;
            const double cover = width / 2 + 0.5 - sqrt(ex * ex + ey * ey);
            if (cover > 0) plot_blend(c, x, y, col, alpha * (float)(cover > 1 ? 1 : cover));
        }
}

void plot_disc(plot_canvas *c, double cx, double cy, double radius, plot_rgb col, float alpha) {
    if (!isfinite(cx) || !isfinite(cy) || !(radius > 0)) return;
    int xa, xb, ya, yb;
    span(cx - radius - 1, cx + radius + 1, c->width, &xa, &xb);
    span(cy - radius - 1, cy + radius + 1, c->height, &ya, &yb);
    for (int y = ya; y < yb; y++)
        for (int x = xa; x < xb; x++) {
            const double ex = x + 0.5 - cx, ey = y + 0.5 - cy;
            const double cover = radius + 0.5 - sqrt(ex * ex + ey * ey);
            if (cover > 0) plot_blend(c, x, y, col, alpha * (float)(cover > 1 ? 1 : cover));
        }
}

/* matplotlib's tab10 followed by the light halves of tab20. */
static const uint32_t PALETTE[20] = {
    0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf,
    0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896, 0xc5b0d5, 0xc49c94, 0xf7b6d2, 0xc7c7c7, 0xdbdb8d, 0x9edae5,
};

plot_rgb plot_palette(int k) {
    if (k < 0) k = -k;
    if (k < 20) {
        const uint32_t v = PALETTE[k];
        return (plot_rgb){(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    }
    /* hue by the golden angle, saturation and value alternating: neighbours stay apart */
    const double hue = fmod((k - 20) * 137.50776, 360.0) / 60.0, s = k % 2 ? 0.55 : 0.8, v = k % 3 ? 0.85 : 0.65;
    const double f = hue - floor(hue), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double r, g, b;
    switch ((int)hue % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    return (plot_rgb){(uint8_t)(r * 255 + 0.5), (uint8_t)(g * 255 + 0.5), (uint8_t)(b * 255 + 0.5)};
}

int plot_title(plot_canvas *c, const char *title, int y, int scale, plot_rgb col) {
    if (!title || !title[0]) return 0;
    const int room = c->width - 20 * scale;
    int ts = scale + 1;
    if (plot_text_width(title, ts) > room) ts = scale;
    char line[512];
    plot_fit_text(line, sizeof line, title, room, ts);
    const int x = (c->width - plot_text_width(line, ts)) / 2;
    plot_text(c, x, y, line, ts, col);
    if (ts == scale && scale > 1) plot_text(c, x + 1, y, line, ts, col); /* bolder than the labels */
    return PLOT_CELL_H * ts;
}

int plot_scale_for(int width, int height) {
    const int side = width < height * 5 / 4 ? width : height * 5 / 4;
    const int s = side / 450;
    return s < 1 ? 1 : s > 6 ? 6 : s;
}

int plot_error(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int plot_check_size(int width, int height, char *err, size_t err_size) {
    if (width < PLOT_MIN_WIDTH || height < PLOT_MIN_HEIGHT || width > PLOT_MAX_SIDE || height > PLOT_MAX_SIDE)
        return plot_error(err, err_size, "picture size %dx%d is outside %dx%d..%dx%d", width, height,
                          PLOT_MIN_WIDTH, PLOT_MIN_HEIGHT, PLOT_MAX_SIDE, PLOT_MAX_SIDE);
    return 0;
}
