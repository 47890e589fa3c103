/* The pictures of the `supcon` tool (examples/supcon/plot): the font covers printable ASCII with
 * distinct glyphs, axis ticks are round, a scatter plot and training curves decode with libpng
 * at the right size with the class colours where the clusters are and text where the title and
 * legend are, and every failure (unwritable folder, missing or damaged log) is a message. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "plot.h"
#include "plot_canvas.h"
#include "test_util.h"

static char dir[] = "/tmp/supcon_plot_XXXXXX";

static int setup(void **unused) { return mkdtemp(dir) ? 0 : -1; }

/* Files left in dir (the temporaries of a failed write would show up here); remove: delete them. */
static int files_in_dir(int remove_them) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        n++;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove_them) remove(p);
    }
    closedir(d);
    return n;
}

static int teardown(void **unused) {
    files_in_dir(1);
    return rmdir(dir);
}

static const char *in_dir(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* ---- reading the pictures back ---- */

typedef struct picture {
    int w, h;
    uint8_t *rgb;
} picture;

static int read_png(const char *path, picture *pic) {
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    if (!f) return -1;
    const size_t got = fread(sig, 1, 8, f);
    fclose(f);
    if (got != 8 || png_sig_cmp(sig, 0, 8) != 0) return -1;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return -1;
    img.format = PNG_FORMAT_RGB;
    pic->rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!pic->rgb || !png_image_finish_read(&img, NULL, pic->rgb, 0, NULL)) {
        free(pic->rgb);
        png_image_free(&img);
        return -1;
    }
    pic->w = (int)img.width, pic->h = (int)img.height;
    return 0;
}

static const uint8_t *px(const picture *p, int x, int y) { return p->rgb + ((size_t)y * p->w + x) * 3; }

static int near(const uint8_t *a, plot_rgb b, int tol) {
    return abs(a[0] - b.r) <= tol && abs(a[1] - b.g) <= tol && abs(a[2] - b.b) <= tol;
}

/* Pixels in rows [y0, y1), columns [x0, x1) that are text-dark, or coloured (not a grey). */
static int count_dark(const picture *p, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *q = px(p, x, y);
            n += q[0] < 80 && q[1] < 80 && q[2] < 80;
        }
    return n;
}

static int count_coloured(const picture *p, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *q = px(p, x, y);
            const int hi = q[0] > q[1] ? (q[0] > q[2] ? q[0] : q[2]) : (q[1] > q[2] ? q[1] : q[2]);
            const int lo = q[0] < q[1] ? (q[0] < q[2] ? q[0] : q[2]) : (q[1] < q[2] ? q[1] : q[2]);
            n += hi - lo > 60;
        }
    return n;
}

/* The class (0..2) whose palette colour a pixel shows, blended over white at any opacity: the
 * pixel's offset from white points the way of the colour's; -1 for white, greys and mixtures. */
static int class_of(const uint8_t *q) {
    const double d[3] = {255.0 - q[0], 255.0 - q[1], 255.0 - q[2]};
    const double dn = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    if (dn < 40) return -1;
    for (int k = 0; k < 3; k++) {
        const plot_rgb c = plot_palette(k);
        const double e[3] = {255.0 - c.r, 255.0 - c.g, 255.0 - c.b};
        const double en = sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
        if ((d[0] * e[0] + d[1] * e[1] + d[2] * e[2]) / (dn * en) > 0.995) return k;
    }
    return -1;
}

/* ---- font and ticks ---- */

static void test_font_covers_ascii_with_distinct_glyphs(void **unused) {
    uint8_t bits[95][PLOT_GLYPH_H * PLOT_GLYPH_W];
    for (int c = 32; c <= 126; c++) {
        int set = 0;
        for (int y = 0; y < PLOT_GLYPH_H; y++)
            for (int x = 0; x < PLOT_GLYPH_W; x++) {
                bits[c - 32][y * PLOT_GLYPH_W + x] = (uint8_t)plot_glyph_pixel(c, x, y);
                set += bits[c - 32][y * PLOT_GLYPH_W + x];
            }
        if (c == ' ') assert_int_equal(set, 0);
        else if (set == 0) fail_msg("no glyph for '%c'", c);
        assert_int_equal(plot_glyph_pixel(c, -1, 0) + plot_glyph_pixel(c, PLOT_GLYPH_W, 0) +
                             plot_glyph_pixel(c, 0, PLOT_GLYPH_H),
                         0);
    }
    for (int a = 0; a < 95; a++)
        for (int b = a + 1; b < 95; b++)
            if (memcmp(bits[a], bits[b], sizeof bits[a]) == 0) fail_msg("'%c' and '%c' look the same", a + 32, b + 32);
    /* bytes outside printable ASCII are drawn as '?' */
    for (int y = 0; y < PLOT_GLYPH_H; y++)
        for (int x = 0; x < PLOT_GLYPH_W; x++) {
            assert_int_equal(plot_glyph_pixel(200, x, y), plot_glyph_pixel('?', x, y));
            assert_int_equal(plot_glyph_pixel('\n', x, y), plot_glyph_pixel('?', x, y));
        }
    assert_int_equal(plot_text_width("", 2), 0);
    assert_int_equal(plot_text_width("ab", 2), 2 * PLOT_CELL_W * 2 - 2);
    char cut[32];
    plot_fit_text(cut, sizeof cut, "Ankle boot", 7 * PLOT_CELL_W, 1);
    assert_string_equal(cut, "Ankl...");
    plot_fit_text(cut, sizeof cut, "Bag", 7 * PLOT_CELL_W, 1);
    assert_string_equal(cut, "Bag");
}

static void test_nice_ticks(void **unused) {
    const struct { double lo, hi; int max, integer; double t_lo, t_hi, step; int decimals; } cases[] = {
        {0.13, 0.97, 6, 0, 0, 1, 0.2, 1},
        {2.31, 2.31, 6, 0, 2.0, 2.6, 0.2, 1},  /* one value: widened */
        {0, 0.1, 4, 0, 0, 0.1, 0.05, 2},
        {0, 0.0005, 6, 0, 0, 0.0005, 0.0001, 4},
        {1, 30, 7, 1, 0, 30, 5, 0},
        {1, 1, 8, 1, 0, 2, 1, 0},             /* a single epoch */
        {1, 3, 12, 1, 1, 3, 1, 0},            /* whole-number steps only */
        {43.7, 97.2, 6, 0, 40, 100, 20, 0},
        {-3, 7, 6, 0, -5, 7.5, 2.5, 1},      /* 2 would need 7 ticks */
        {0, 25, 6, 0, 0, 25, 5, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plot_ticks t;
        plot_nice_ticks(cases[i].lo, cases[i].hi, cases[i].max, cases[i].integer, &t);
        if (fabs(t.lo - cases[i].t_lo) > 1e-12 || fabs(t.hi - cases[i].t_hi) > 1e-12 ||
            fabs(t.step - cases[i].step) > 1e-12 || t.decimals != cases[i].decimals)
            fail_msg("case %zu [%g, %g]: ticks %g..%g step %g (%d decimals), expected %g..%g step %g (%d)", i,
                     cases[i].lo, cases[i].hi, t.lo, t.hi, t.step, t.decimals, cases[i].t_lo, cases[i].t_hi,
                     cases[i].step, cases[i].decimals);
        assert_true(t.count >= 2 && t.count <= cases[i].max);
        assert_true(t.lo <= fmin(cases[i].lo, cases[i].hi) && t.hi >= fmax(cases[i].lo, cases[i].hi));
    }
    plot_ticks t;
    char label[32];
    const double wild[][2] = {{-1e308, 1e308}, {1e-300, 2e-300}, {NAN, 1}, {0, INFINITY}, {5e15, 5e15 + 1}};
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        plot_nice_ticks(wild[i][0], wild[i][1], 6, 0, &t);
        if (!(t.count >= 2 && t.count <= 8 && t.hi > t.lo && isfinite(t.lo) && isfinite(t.hi)))
            fail_msg("[%g, %g]: ticks %g..%g, %d of them", wild[i][0], wild[i][1], t.lo, t.hi, t.count);
    }
    plot_nice_ticks(-0.3, 0.3, 7, 0, &t);
    plot_tick_label(&t, t.lo + 3 * t.step, label, sizeof label); /* 1e-17-ish: no "-0.0" */
    assert_string_equal(label, "0.0");
    plot_tick_label(&t, t.lo + 4 * t.step, label, sizeof label);
    assert_string_equal(label, "0.1");
}

/* ---- scatter ---- */

static void test_scatter_clusters(void **unused) {
    enum { N = 300, W = 900, H = 700 };
    const double cx[3] = {0, 10, 5}, cy[3] = {0, 0, 10};
    float xy[2 * N];
    int32_t labels[N];
    tu_rng r = tu_rng_seed(7);
    for (int i = 0; i < N; i++) {
        labels[i] = i % 3;
        xy[2 * i] = (float)(cx[i % 3] + 0.3 * tu_normal(&r));
        xy[2 * i + 1] = (float)(cy[i % 3] + 0.3 * tu_normal(&r));
    }
    const char *names[3] = {"left", "right", "top"};
    char err[256] = "";
    const char *path = in_dir("scatter.png");
    if (plot_scatter_png(path, xy, labels, N, 3, names, "three clusters", W, H, err, sizeof err) != 0)
        fail_msg("plot_scatter_png: %s", err);
    assert_int_equal(files_in_dir(0), 1); /* no temporary left beside it */
    picture p;
    assert_int_equal(read_png(path, &p), 0);
    assert_int_equal(p.w, W);
    assert_int_equal(p.h, H);

    /* where each class colour is: the clusters' layout (y grows downwards in the picture) */
    double mx[3], my[3];
    for (int k = 0; k < 3; k++) {
        double sx = 0, sy = 0;
        long n = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (class_of(px(&p, x, y)) == k) sx += x, sy += y, n++;
        if (n < 1000) fail_msg("class %d: only %ld pixels of its colour", k, n);
        mx[k] = sx / n, my[k] = sy / n;
        /* a dense cluster: around its centre the pixels carry the class colour */
        int mine = 0;
        for (int dy = -3; dy <= 3; dy++)
            for (int dx = -3; dx <= 3; dx++) mine += class_of(px(&p, (int)mx[k] + dx, (int)my[k] + dy)) == k;
        if (mine < 30) fail_msg("class %d: %d of 49 pixels around (%d, %d) have its colour", k, mine, (int)mx[k], (int)my[k]);
    }
    assert_true(mx[0] < mx[2] && mx[2] < mx[1]);
    assert_true(my[2] < my[0] && my[2] < my[1]);
    assert_true(mx[1] - mx[0] > W / 3); /* the points fill the plot area */
    assert_true(my[0] - my[2] > H / 3);
    /* dark text in the title band and in the legend (to the right of the clusters) */
    assert_true(count_dark(&p, 0, 0, W, 45) > 100);
    assert_true(count_dark(&p, (int)mx[1] + 40, 45, W, H / 2) > 100);
    free(p.rgb);

    /* more classes than the legend shows, no names, no title, one point: still a picture */
    const float one[2] = {3, 4};
    const int32_t lab[1] = {24};
    if (plot_scatter_png(path, one, lab, 1, 25, NULL, NULL, 320, 240, err, sizeof err) != 0)
        fail_msg("plot_scatter_png: %s", err);
    assert_int_equal(read_png(path, &p), 0);
    assert_int_equal(p.w, 320);
    assert_int_equal(p.h, 240);
    assert_true(count_dark(&p, 0, 0, 320, 240) > 20); /* "25 classes" */
    free(p.rgb);
}

static void test_scatter_errors(void **unused) {
    const float xy[4] = {0, 0, 1, 1};
    const int32_t ok[2] = {0, 1}, bad[2] = {0, 3};
    char err[256] = "";
    const int before = files_in_dir(0);
    assert_int_equal(plot_scatter_png("/nonexistent-folder/x.png", xy, ok, 2, 2, NULL, "t", 400, 300, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot write '/nonexistent-folder/x.png'"));
    assert_int_equal(plot_scatter_png(in_dir("x.png"), xy, bad, 2, 2, NULL, "t", 400, 300, err, sizeof err), -1);
    assert_non_null(strstr(err, "label 3"));
    assert_int_equal(plot_scatter_png(in_dir("x.png"), xy, ok, 2, 2, NULL, "t", 10, 10, err, sizeof err), -1);
    assert_non_null(strstr(err, "10x10"));
    const float inf[4] = {0, INFINITY, 1, 1};
    assert_int_equal(plot_scatter_png(in_dir("x.png"), inf, ok, 2, 2, NULL, "t", 400, 300, err, sizeof err), -1);
    assert_non_null(strstr(err, "not finite"));
    assert_int_equal(files_in_dir(0), before); /* nothing written, no temporaries */
}

/* ---- training curves ---- */

static const char HEADER[] =
    "epoch,steps,lr,loss,train_acc,val_acc,val_acc5,val_loss,epoch_seconds,images_per_second\n";

static const char *write_log(const char *name, const char *header, const char *rows) {
    const char *path = in_dir(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(header, f);
    fputs(rows, f);
    fclose(f);
    return path;
}

/* Reads the log, draws it, decodes it; checks the size and each panel's band. accuracy: 1 when
 * the third panel has curves, 0 when it should carry only the grey note. */
static void curves_of(const char *name, const char *rows, size_t epochs, int accuracy) {
    char log_name[64], png_name[64], err[512] = "";
    snprintf(log_name, sizeof log_name, "%s.csv", name);
    snprintf(png_name, sizeof png_name, "%s.png", name);
    const char *log_path = write_log(log_name, HEADER, rows);
    plot_log log;
    if (plot_log_read(log_path, &log, err, sizeof err) != 0) fail_msg("plot_log_read: %s", err);
    assert_int_equal(log.rows, epochs);
    char png_path[512];
    snprintf(png_path, sizeof png_path, "%s", in_dir(png_name));
    if (plot_curves_png(png_path, &log, name, 1000, 800, err, sizeof err) != 0) fail_msg("plot_curves_png: %s", err);
    plot_log_free(&log);
    plot_log_free(&log); /* twice is fine */
    picture p;
    assert_int_equal(read_png(png_path, &p), 0);
    assert_int_equal(p.w, 1000);
    assert_int_equal(p.h, 800);
    assert_true(count_dark(&p, 0, 0, 1000, 50) > 100); /* title */
    /* the panels fill the rest in three bands; look at the middle of each */
    const int top = 100, band = (800 - top) / 3;
    for (int k = 0; k < 3; k++) {
        const int y0 = top + k * band + 10, y1 = top + (k + 1) * band - 10;
        const int coloured = count_coloured(&p, 0, y0, 1000, y1), dark = count_dark(&p, 0, y0, 1000, y1);
        if (dark < 50) fail_msg("%s: panel %d has no axis labels (%d dark pixels)", name, k, dark);
        if (k < 2 || accuracy) {
            if (coloured < 30) fail_msg("%s: panel %d has no curve (%d coloured pixels)", name, k, coloured);
        } else {
            if (coloured) fail_msg("%s: panel %d should have no curve (%d coloured pixels)", name, k, coloured);
            int note = 0; /* the grey "no accuracy in this log" */
            for (int y = y0; y < y1; y++)
                for (int x = 0; x < 1000; x++) note += near(px(&p, x, y), (plot_rgb){110, 110, 110}, 2);
            assert_true(note > 100);
        }
    }
    free(p.rgb);
}

static void test_curves(void **unused) {
    curves_of("ce3",
              "1,10,0.1,2.1,35.5,40.25,90.1,1.9,1.5,800\n"
              "2,20,0.1,1.4,55.0,58.5,95.2,1.3,1.4,810\n"
              "3,30,0.01,0.9,70.25,68.0,97.0,1.1,1.4,805\n",
              3, 1);
    curves_of("one", "1,235,0.5,6.25,12.5,nan,nan,nan,30.5,500\n", 1, 1);
    curves_of("pretrain",
              "1,8,0.5,7.9,nan,nan,nan,nan,2.0,128\n"
              "2,16,0.5,7.5,nan,nan,nan,nan,2.1,130\r\n" /* a CRLF line is read too */
              "3,24,0.5,7.2,nan,nan,nan,nan,2.0,131\n"
              "4,32,0.05,7.1,nan,nan,nan,nan,2.0,129\n",
              4, 0);
}

static void expect_log_error(const char *name, const char *header, const char *rows, const char *a, const char *b) {
    const char *path = write_log(name, header, rows);
    char err[512] = "", copy[512];
    snprintf(copy, sizeof copy, "%s", path);
    plot_log log;
    memset(&log, 0x5a, sizeof log);
    if (plot_log_read(copy, &log, err, sizeof err) != -1) fail_msg("%s: read without error", name);
    if (!strstr(err, copy) || !strstr(err, a) || (b && !strstr(err, b)))
        fail_msg("%s: message '%s' should name the file, '%s' and '%s'", name, err, a, b ? b : "");
    assert_int_equal(log.rows, 0);
    assert_null(log.col[0]);
}

static void test_log_errors(void **unused) {
    char err[512] = "";
    plot_log log;
    assert_int_equal(plot_log_read(in_dir("missing.csv"), &log, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.csv"));
    assert_non_null(strstr(err, "No such file"));
    expect_log_error("empty.csv", "", "", "line 1", "empty file");
    expect_log_error("header.csv", "epoch,steps,lr,loss\n", "1,2,3,4\n", "line 1", "header");
    expect_log_error("truncated.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800\n2,20,0.1,1.4,n", "line 3",
                     "truncated");
    expect_log_error("short.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800\n2,20,0.1\n", "line 3",
                     "truncated row, 3 of 10");
    expect_log_error("word.csv", HEADER, "1,10,0.1,abc,nan,nan,nan,nan,1.5,800\n", "line 2", "loss value 'abc'");
    expect_log_error("blank.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800\n,20,0.1,1,1,1,1,1,1,1\n", "line 3",
                     "epoch value ''");
    expect_log_error("long.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800,7\n", "line 2", "11 values");
    expect_log_error("gap.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800\n\n", "line 3", "empty line");
    expect_log_error("tail.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800x\n", "line 2",
                     "images_per_second value '800x'");

    /* a header alone is a valid log, but no picture */
    const char *path = write_log("header_only.csv", HEADER, "");
    assert_int_equal(plot_log_read(path, &log, err, sizeof err), 0);
    assert_int_equal(log.rows, 0);
    assert_int_equal(plot_curves_png(in_dir("x.png"), &log, "t", 1000, 800, err, sizeof err), -1);
    assert_non_null(strstr(err, "no epochs"));
    plot_log_free(&log);

    /* unwritable output: the message names the file; nothing is left behind */
    path = write_log("ok.csv", HEADER, "1,10,0.1,2.1,nan,nan,nan,nan,1.5,800\n");
    assert_int_equal(plot_log_read(path, &log, err, sizeof err), 0);
    assert_int_equal(plot_curves_png(in_dir("low.png"), &log, "t", 1000, 200, err, sizeof err), -1);
    assert_non_null(strstr(err, "height of at least 240"));
    if (plot_curves_png(in_dir("low.png"), &log, "t", 200, 240, err, sizeof err) != 0)
        fail_msg("the smallest curves: %s", err);
    assert_int_equal(remove(in_dir("low.png")), 0);
    assert_int_equal(plot_curves_png("/nonexistent-folder/c.png", &log, "t", 1000, 800, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot write '/nonexistent-folder/c.png'"));
    /* a folder in the way of the rename: the temporary is removed */
    char target[512];
    snprintf(target, sizeof target, "%s", in_dir("a_folder.png"));
    assert_int_equal(mkdir(target, 0755), 0);
    const int before = files_in_dir(0);
    assert_int_equal(plot_curves_png(target, &log, "t", 1000, 800, err, sizeof err), -1);
    assert_non_null(strstr(err, "a_folder.png"));
    assert_int_equal(files_in_dir(0), before);
    rmdir(target);
    plot_log_free(&log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_font_covers_ascii_with_distinct_glyphs),
        cmocka_unit_test(test_nice_ticks),
        cmocka_unit_test(test_scatter_clusters),
        cmocka_unit_test(test_scatter_errors),
        cmocka_unit_test(test_curves),
        cmocka_unit_test(test_log_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
