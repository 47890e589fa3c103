/* plot_curves_png: a run's log.csv as three panels against the epoch (loss, learning rate,
 * accuracy) with axes whose ticks fall on round numbers, a legend where a panel has two lines,
 * and a one-line summary under the title. Reading the log is plot_log.c's job. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot.h"
#include "plot_canvas.h"

static const plot_rgb WHITE = {255, 255, 255}, INK = {34, 34, 34}, GREY = {110, 110, 110},
                      FRAME = {150, 150, 150}, GRID = {232, 232, 232};

/* ---- ticks ---- */

/* The smallest 1, 2, 2.5 or 5 times a power of ten that is >= raw (2.5 not as a whole-number
 * step below 10). */
static double nice_step(double raw, int integer) {
    const double p = pow(10, floor(log10(raw))), f = raw / p;
    const double m = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 2.5 + 1e-9 && !(integer && p < 10) ? 2.5
                     : f <= 5 + 1e-9 ? 5 : 10;
    return m * p;
}

void plot_nice_ticks(double min, double max, int max_ticks, int integer, plot_ticks *t) {
    if (!isfinite(min) || !isfinite(max)) min = 0, max = 1;
    if (max < min) {
        const double x = min;
        min = max, max = x;
    }
    if (!isfinite(max - min)) min = fmax(min, -1e307), max = fmin(max, 1e307); /* no overflow below */
    if (max - min <= 1e-12 * fmax(fabs(min), fabs(max))) { /* one value: widen around it */
        const double d = integer ? 1 : min == 0 ? 1 : fabs(min) * 0.1;
        min -= d, max += d;
    }
    if (max_ticks < 2) max_ticks = 2;
    double step = nice_step((max - min) / (max_ticks - 1), integer);
    if (integer && step < 1) step = 1;
    for (int tries = 0;; tries++) {
        t->lo = floor(min / step + 1e-9) * step;
        t->hi = ceil(max / step - 1e-9) * step;
        t->count = (int)llround((t->hi - t->lo) / step) + 1;
        if (t->count <= max_ticks || tries == 8) break;
        step = nice_step(step * 1.01, integer);
    }
    if (!(t->count >= 2 && t->count <= max_ticks + 2 && t->hi > t->lo)) /* rounding gave up: the bare range */
        t->lo = min, t->hi = max, step = max - min, t->count = 2;
    t->step = step;
    t->decimals = 0;
    for (double x = step; t->decimals < 12 && fabs(x - round(x)) > 1e-6 * x; x *= 10) t->decimals++;
}

void plot_tick_label(const plot_ticks *t, double v, char *out, size_t size) {
    if (fabs(v) < t->step * 1e-6) v = 0; /* no "-0.0" */
    if (t->decimals > 8 || fabs(v) >= 1e9) snprintf(out, size, "%g", v);
    else snprintf(out, size, "%.*f", t->decimals, v);
}

/* ---- panels ---- */

typedef struct series {
    int col;
    const char *name;
    plot_rgb colour;
} series;

typedef struct panel {
    const char *y_title, *y_short, *none; /* y_short: when y_title is taller than the panel; none: the
                                           * note when no series has a value */
    series s[2];
    int ns, from_zero;
    double ceiling; /* no extra tick above this (100 for percentages) */
} panel;

enum { PANELS = 3 };

/* Finite values of column col: count, and their range. */
static size_t finite_range(const plot_log *log, int col, double *lo, double *hi) {
    size_t n = 0;
    for (size_t i = 0; i < log->rows; i++) {
        const double v = log->col[col][i];
        if (!isfinite(v) || !isfinite(log->col[PLOT_LOG_EPOCH][i])) continue;
        *lo = fmin(*lo, v), *hi = fmax(*hi, v);
        n++;
    }
    return n;
}

typedef struct frame {
    int x0, y0, x1, y1;
    plot_ticks xt, yt;
} frame;

static double fx(const frame *f, double v) { return f->x0 + (v - f->xt.lo) / (f->xt.hi - f->xt.lo) * (f->x1 - f->x0); }
static double fy(const frame *f, double v) { return f->y1 - (v - f->yt.lo) / (f->yt.hi - f->yt.lo) * (f->y1 - f->y0); }

/* The frame, grid, ticks and tick labels; y_ticks 0: none on the y axis (a panel without data). */
static void axes(plot_canvas *c, const frame *f, int s, int y_ticks) {
    char label[64];
    const int tick = 4 * s;
    for (int i = 0; i < f->yt.count && y_ticks; i++) {
        const double v = f->yt.lo + i * f->yt.step;
        const int y = (int)lround(fy(f, v));
        if (i > 0 && i < f->yt.count - 1) plot_fill_rect(c, f->x0, y, f->x1, y + 1, GRID, 1);
        plot_fill_rect(c, f->x0 - tick, y, f->x0, y + 1, FRAME, 1);
        plot_tick_label(&f->yt, v, label, sizeof label);
        plot_text(c, f->x0 - tick - 3 * s - plot_text_width(label, s), y - PLOT_CAP_H * s / 2, label, s, INK);
    }
    for (int i = 0; i < f->xt.count; i++) {
        const double v = f->xt.lo + i * f->xt.step;
        const int x = (int)lround(fx(f, v));
        if (i > 0 && i < f->xt.count - 1) plot_fill_rect(c, x, f->y0, x + 1, f->y1, GRID, 1);
        plot_fill_rect(c, x, f->y1, x + 1, f->y1 + tick, FRAME, 1);
        plot_tick_label(&f->xt, v, label, sizeof label);
        plot_text(c, x - plot_text_width(label, s) / 2, f->y1 + tick + 3 * s, label, s, INK);
    }
    plot_rect(c, f->x0, f->y0, f->x1 + 1, f->y1 + 1, 1, FRAME);
}

static void draw_series(plot_canvas *c, const frame *f, const plot_log *log, const series *se, size_t n, int s) {
    double px = NAN, py = NAN;
    const double r = n == 1 ? 3.0 * s : 1.6 * s;
    for (size_t i = 0; i < log->rows; i++) {
        const double e = log->col[PLOT_LOG_EPOCH][i], v = log->col[se->col][i];
        if (!isfinite(e) || !isfinite(v)) continue; /* nan: left out, neighbours joined */
        const double x = fx(f, e), y = fy(f, v);
        if (isfinite(px)) plot_line(c, px, py, x, y, 1.5 * s, se->colour, 1);
        px = x, py = y;
    }
    if (n > 60) return;
    for (size_t i = 0; i < log->rows; i++) {
        const double e = log->col[PLOT_LOG_EPOCH][i], v = log->col[se->col][i];
        if (isfinite(e) && isfinite(v)) plot_disc(c, fx(f, e), fy(f, v), r, se->colour, 1);
    }
}

/* How much of the panel's curves lies inside a box, sampled every pixel or so along each line:
 * the legend goes where it hides the least. */
static size_t curve_in(const frame *f, const plot_log *log, const series *const *on, int k, int x0, int y0,
                       int x1, int y1) {
    size_t hits = 0;
    for (int j = 0; j < k; j++) {
        double px = NAN, py = NAN;
        for (size_t i = 0; i < log->rows; i++) {
            const double e = log->col[PLOT_LOG_EPOCH][i], v = log->col[on[j]->col][i];
            if (!isfinite(e) || !isfinite(v)) continue;
            const double x = fx(f, e), y = fy(f, v);
            if (!isfinite(px)) px = x, py = y; /* the first point: a segment of length 0 */
            const double len = hypot(x - px, y - py);
            const int steps = len > 1 ? (int)fmin(len, 4096) : 1;
            for (int q = 1; q <= steps; q++) {
                const double sx = px + (x - px) * q / steps, sy = py + (y - py) * q / steps;
                hits += sx >= x0 && sx <= x1 && sy >= y0 && sy <= y1;
            }
            px = x, py = y;
        }
    }
    return hits;
}

static void legend(plot_canvas *c, const frame *f, const plot_log *log, const series *const *on, int k, int s) {
    const int pad = 5 * s, sample = 4 * PLOT_CELL_W * s, row = (PLOT_CELL_H + 3) * s;
    int text_w = 0;
    for (int j = 0; j < k; j++) {
        const int w = plot_text_width(on[j]->name, s);
        text_w = w > text_w ? w : text_w;
    }
    const int w = pad + sample + pad + text_w + pad, h = pad + k * row - 3 * s + pad, in = 6 * s;
    const int xs[4] = {f->x1 - in - w, f->x1 - in - w, f->x0 + in, f->x0 + in};
    const int ys[4] = {f->y0 + in, f->y1 - in - h, f->y0 + in, f->y1 - in - h};
    int best = 0;
    size_t fewest = (size_t)-1;
    for (int q = 0; q < 4; q++) {
        const size_t hits = curve_in(f, log, on, k, xs[q] - 2 * s, ys[q] - 2 * s, xs[q] + w + 2 * s, ys[q] + h + 2 * s);
        if (hits < fewest) fewest = hits, best = q;
    }
    const int x = xs[best], y = ys[best];
    plot_fill_rect(c, x, y, x + w, y + h, WHITE, 0.9f);
    plot_rect(c, x, y, x + w, y + h, 1, FRAME);
    for (int j = 0; j < k; j++) {
        const int ry = y + pad + j * row, mid = ry + PLOT_CAP_H * s / 2;
        plot_line(c, x + pad, mid + 0.5, x + pad + sample, mid + 0.5, 1.5 * s, on[j]->colour, 1);
        plot_text(c, x + 2 * pad + sample, ry, on[j]->name, s, INK);
    }
}

static void summary(char *out, size_t size, const plot_log *log) {
    const size_t last = log->rows - 1;
    int w = snprintf(out, size, "%zu epoch%s", log->rows, log->rows == 1 ? "" : "s");
    const double loss = log->col[PLOT_LOG_LOSS][last], lr = log->col[PLOT_LOG_LR][last];
    if (isfinite(loss) && w >= 0 && (size_t)w < size) w += snprintf(out + w, size - (size_t)w, ", last loss %.4g", loss);
    size_t best = log->rows;
    for (size_t i = 0; i < log->rows; i++)
        if (isfinite(log->col[PLOT_LOG_VAL_ACC][i]) &&
            (best == log->rows || log->col[PLOT_LOG_VAL_ACC][i] > log->col[PLOT_LOG_VAL_ACC][best]))
            best = i;
    if (best < log->rows && w >= 0 && (size_t)w < size)
        w += snprintf(out + w, size - (size_t)w, ", best val acc %.2f (epoch %.0f)", log->col[PLOT_LOG_VAL_ACC][best],
                      log->col[PLOT_LOG_EPOCH][best]);
    else if (isfinite(log->col[PLOT_LOG_TRAIN_ACC][last]) && w >= 0 && (size_t)w < size)
        w += snprintf(out + w, size - (size_t)w, ", last train acc %.2f", log->col[PLOT_LOG_TRAIN_ACC][last]);
    if (isfinite(lr) && w >= 0 && (size_t)w < size) snprintf(out + w, size - (size_t)w, ", lr %.3g", lr);
}

int plot_curves_png(const char *path, const plot_log *log, const char *title, int width, int height, char *err,
                    size_t err_size) {
    if (plot_check_size(width, height, err, err_size)) return -1;
    if (height < PLOT_CURVES_MIN_HEIGHT)
        return plot_error(err, err_size, "training curves need a height of at least %d pixels, not %d",
                          PLOT_CURVES_MIN_HEIGHT, height);
    if (!log || !log->rows) return plot_error(err, err_size, "training curves: the log has no epochs yet");
    double e_lo = INFINITY, e_hi = -INFINITY;
    if (!finite_range(log, PLOT_LOG_EPOCH, &e_lo, &e_hi))
        return plot_error(err, err_size, "training curves: the log has no epoch numbers");
    const panel P[PANELS] = {
        {"loss", "loss", "no loss in this log", {{PLOT_LOG_LOSS, "train", plot_palette(0)}, {PLOT_LOG_VAL_LOSS, "val", plot_palette(1)}}, 2, 0, INFINITY},
        {"learning rate", "lr", "no learning rate in this log", {{PLOT_LOG_LR, "lr", plot_palette(2)}}, 1, 1, INFINITY},
        {"accuracy (%)", "acc. %", "no accuracy in this log",
         {{PLOT_LOG_TRAIN_ACC, "train", plot_palette(0)}, {PLOT_LOG_VAL_ACC, "val", plot_palette(1)}}, 2, 0, 100},
    };
    plot_canvas c;
    if (plot_canvas_init(&c, width, height, WHITE))
        return plot_error(err, err_size, "training curves: out of memory for %dx%d pixels", width, height);
    const int s = plot_scale_for(width, height), m = 10 * s, ch = PLOT_CELL_H * s;

    int top = m;
    const int title_h = plot_title(&c, title, top, s, INK);
    if (title_h) top += title_h + 3 * s;
    char text[512], line[512];
    summary(text, sizeof text, log);
    plot_fit_text(line, sizeof line, text, width - 2 * m, s);
    plot_text(&c, (width - plot_text_width(line, s)) / 2, top, line, s, GREY);
    top += ch + m;

    /* vertical layout: three panels, each with its x tick labels below; "epoch" at the bottom */
    const int x_labels = 7 * s + ch, bottom = height - m - ch - 3 * s;
    int ph = (bottom - top - PANELS * x_labels - (PANELS - 1) * m) / PANELS;
    if (ph < 2 * ch) ph = 2 * ch;

    frame F[PANELS];
    size_t counts[PANELS][2];
    int present[PANELS], label_w = 0;
    for (int p = 0; p < PANELS; p++) {
        double lo = INFINITY, hi = -INFINITY;
        present[p] = 0;
        for (int j = 0; j < P[p].ns; j++) {
            counts[p][j] = finite_range(log, P[p].s[j].col, &lo, &hi);
            present[p] += counts[p][j] > 0;
        }
        if (!present[p]) lo = 0, hi = 1;
        if (P[p].from_zero) lo = fmin(lo, 0), hi = fmax(hi, 0);
        int max_ticks = ph / (ch * 2);
        max_ticks = max_ticks < 3 ? 3 : max_ticks > 8 ? 8 : max_ticks;
        plot_ticks *t = &F[p].yt;
        plot_nice_ticks(lo, hi, max_ticks, 0, t);
        /* a curve along the frame is hard to see: one more step where the data touch an end */
        const double touch = 0.02 * (t->hi - t->lo);
        if (present[p] && hi > t->hi - touch && t->hi + t->step <= P[p].ceiling) t->hi += t->step, t->count++;
        if (present[p] && lo < t->lo + touch && !(P[p].from_zero && t->lo == 0)) t->lo -= t->step, t->count++;
        for (int i = 0; i < F[p].yt.count && present[p]; i++) {
            plot_tick_label(&F[p].yt, F[p].yt.lo + i * F[p].yt.step, text, sizeof text);
            const int w = plot_text_width(text, s);
            label_w = w > label_w ? w : label_w;
        }
    }
    /* horizontal layout: y title (turned), y tick labels, ticks, the plot; shared by all panels */
    const int x0 = m + ch + 6 * s + label_w + 7 * s, x1 = width - m - 3 * PLOT_CELL_W * s;
    snprintf(text, sizeof text, "%.0f", fmax(fabs(e_lo), fabs(e_hi)));
    int x_ticks = (x1 - x0) / (plot_text_width(text, s) + 5 * PLOT_CELL_W * s);
    x_ticks = x_ticks < 2 ? 2 : x_ticks > 12 ? 12 : x_ticks;
    plot_ticks xt;
    plot_nice_ticks(e_lo, e_hi, x_ticks, 1, &xt);

    for (int p = 0; p < PANELS; p++) {
        frame *f = &F[p];
        f->x0 = x0, f->x1 = x1, f->xt = xt;
        f->y0 = top + p * (ph + x_labels + m), f->y1 = f->y0 + ph;
        axes(&c, f, s, present[p]);
        const char *y_title = plot_text_width(P[p].y_title, s) <= ph ? P[p].y_title : P[p].y_short;
        plot_fit_text(line, sizeof line, y_title, ph, s);
        plot_text_up(&c, m, (f->y0 + f->y1 - plot_text_width(line, s)) / 2, line, s, INK);
        if (!present[p]) {
            plot_fit_text(line, sizeof line, P[p].none, f->x1 - f->x0 - 4 * s, s);
            const int w = plot_text_width(line, s);
            plot_text(&c, (f->x0 + f->x1 - w) / 2, (f->y0 + f->y1 - PLOT_CAP_H * s) / 2, line, s, GREY);
            continue;
        }
        const series *on[2];
        int k = 0;
        for (int j = 0; j < P[p].ns; j++)
            if (counts[p][j]) {
                draw_series(&c, f, log, &P[p].s[j], counts[p][j], s);
                on[k++] = &P[p].s[j];
            }
        if (k > 1) legend(&c, f, log, on, k, s);
    }
    const int epoch_w = plot_text_width("epoch", s);
    plot_text(&c, (x0 + x1 - epoch_w) / 2, F[PANELS - 1].y1 + x_labels + 3 * s, "epoch", s, INK);
    const int rc = plot_png_write(&c, path, err, err_size);
    plot_canvas_free(&c);
    return rc;
}
