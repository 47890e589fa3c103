/* plot_scatter_png: 2-D points as small translucent discs coloured by class, drawn in a fixed
 * shuffled order (no class always on top), with a title and a legend box on the right. The
 * axes carry no ticks: t-SNE coordinates have no units worth reading. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "plot_canvas.h"

static const plot_rgb WHITE = {255, 255, 255}, INK = {34, 34, 34}, GREY = {110, 110, 110},
                      FRAME = {190, 190, 190};

enum { MAX_LEGEND = 20, NAME_CHARS = 28 };

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The legend: its text scale, box size and the name of each class, cut to fit. */
typedef struct legend {
    int scale, w, h, row, show; /* show 0: a one-line note instead of entries */
    char note[64];
} legend;

static void class_name(char *out, size_t size, const char *const *names, int k, int max_w, int scale) {
    char buf[64];
    if (names && names[k]) plot_fit_text(out, size, names[k], max_w, scale);
    else {
        snprintf(buf, sizeof buf, "class %d", k);
        plot_fit_text(out, size, buf, max_w, scale);
    }
}

static void legend_layout(legend *L, int num_classes, const char *const *names, int s, int max_w, int max_h) {
    memset(L, 0, sizeof *L);
    L->show = num_classes <= MAX_LEGEND;
    for (L->scale = s; L->scale >= 1; L->scale--) {
        const int ls = L->scale, pad = 6 * ls;
        L->row = (PLOT_CELL_H + 5) * ls;
        int text_w = 0;
        if (L->show) {
            for (int k = 0; k < num_classes; k++) {
                char name[NAME_CHARS + 4];
                class_name(name, sizeof name, names, k, NAME_CHARS * PLOT_CELL_W * ls, ls);
                const int w = plot_text_width(name, ls);
                text_w = w > text_w ? w : text_w;
            }
            L->w = pad + PLOT_CELL_H * ls + pad + text_w + pad;
            L->h = pad + num_classes * L->row - 5 * ls + pad;
        } else {
            snprintf(L->note, sizeof L->note, "%d classes", num_classes);
            L->w = pad + plot_text_width(L->note, ls) + pad;
            L->h = pad + PLOT_CELL_H * ls + pad;
        }
        if ((L->w <= max_w && L->h <= max_h) || ls == 1) break;
    }
    if (L->w > max_w) L->w = max_w;
}

static void legend_draw(plot_canvas *c, const legend *L, int x, int y, int num_classes,
                        const char *const *names) {
    const int ls = L->scale, pad = 6 * ls;
    plot_fill_rect(c, x, y, x + L->w, y + L->h, WHITE, 1);
    plot_rect(c, x, y, x + L->w, y + L->h, 1, FRAME);
    if (!L->show) {
        plot_text(c, x + pad, y + pad, L->note, ls, INK);
        return;
    }
    const int sw = PLOT_CELL_H * ls, text_max = L->w - 3 * pad - sw;
    for (int k = 0; k < num_classes; k++) {
        const int ry = y + pad + k * L->row;
        if (ry + PLOT_CAP_H * ls > y + L->h) break;
        plot_disc(c, x + pad + sw / 2.0, ry + PLOT_CAP_H * ls / 2.0, PLOT_CAP_H * ls * 0.55, plot_palette(k), 1);
        char name[NAME_CHARS + 4];
        class_name(name, sizeof name, names, k, text_max, ls);
        plot_text(c, x + 2 * pad + sw, ry, name, ls, INK);
    }
}

int plot_scatter_png(const char *path, const float *xy, const int32_t *labels, size_t n,
                     int num_classes, const char *const *class_names, const char *title,
                     int width, int height, char *err, size_t err_size) {
    if (plot_check_size(width, height, err, err_size)) return -1;
    if (num_classes < 1) return plot_error(err, err_size, "scatter plot: %d classes", num_classes);
    if (n && (!xy || !labels)) return plot_error(err, err_size, "scatter plot: no points given");
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes)
            return plot_error(err, err_size, "scatter plot: point %zu has label %d, outside 0..%d", i,
                              (int)labels[i], num_classes - 1);
        const double x = xy[2 * i], y = xy[2 * i + 1];
        if (!isfinite(x) || !isfinite(y))
            return plot_error(err, err_size, "scatter plot: point %zu is not finite (%g, %g)", i, x, y);
        x_lo = fmin(x_lo, x), x_hi = fmax(x_hi, x), y_lo = fmin(y_lo, y), y_hi = fmax(y_hi, y);
    }
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    plot_canvas c;
    if (!order || plot_canvas_init(&c, width, height, WHITE)) {
        free(order);
        return plot_error(err, err_size, "scatter plot: out of memory for %dx%d pixels", width, height);
    }
    const int s = plot_scale_for(width, height), m = 10 * s;

    /* title, centred on the whole picture */
    int top = m;
    const int title_h = plot_title(&c, title, top, s, INK);
    if (title_h) top += title_h + m;

    /* legend on the right, the plot area takes the rest */
    legend L;
    legend_layout(&L, num_classes, class_names, s, width / 3, height - top - m - 3 * PLOT_CELL_H * s);
    char count[64];
    snprintf(count, sizeof count, "%zu point%s", n, n == 1 ? "" : "s");
    const int side = L.w > plot_text_width(count, L.scale) ? L.w : plot_text_width(count, L.scale);
    const int ax0 = m, ay0 = top, ax1 = width - 2 * m - side, ay1 = height - m;
    plot_rect(&c, ax0, ay0, ax1, ay1, 1, FRAME);
    legend_draw(&c, &L, ax1 + m, ay0, num_classes, class_names);
    plot_text(&c, ax1 + m, ay0 + L.h + PLOT_CELL_H * L.scale, count, L.scale, GREY);

    /* points: a disc size and opacity that keep 10 000 of them readable */
    const double area = (double)(ax1 - ax0) * (ay1 - ay0);
    double r = n ? 0.3 * sqrt(area / (double)n) : 1;
    r = r < 1.6 ? 1.6 : r > 3 + 2 * s ? 3 + 2 * s : r;
    const float alpha = n <= 1000 ? 0.85f : n <= 5000 ? 0.7f : 0.55f;
    const double inset = r + 2 + 0.04 * fmin(ax1 - ax0, ay1 - ay0);
    const double px0 = ax0 + inset, px1 = ax1 - inset, py0 = ay0 + inset, py1 = ay1 - inset;
    const double xs = x_hi > x_lo ? (px1 - px0) / (x_hi - x_lo) : 0, ys = y_hi > y_lo ? (py1 - py0) / (y_hi - y_lo) : 0;

    for (size_t i = 0; i < n; i++) order[i] = i;
    uint64_t seed = 0x5ca77e7ull;
    for (size_t i = n; i > 1; i--) {
        const size_t j = (size_t)(splitmix(&seed) % i), t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
    for (size_t k = 0; k < n; k++) {
        const size_t i = order[k];
        const double x = xs > 0 ? px0 + (xy[2 * i] - x_lo) * xs : (px0 + px1) / 2;
        const double y = ys > 0 ? py1 - (xy[2 * i + 1] - y_lo) * ys : (py0 + py1) / 2; /* y up */
        plot_disc(&c, x, y, r, plot_palette(labels[i]), alpha);
    }
    free(order);
    const int rc = plot_png_write(&c, path, err, err_size);
    plot_canvas_free(&c);
    return rc;
}
