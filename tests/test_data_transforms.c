/* Transforms: the statistics of the drawn parameters (crop area and aspect within range and
 * distributed as drawn, positions uniform, the centre-crop fallback, flip / jitter / grey
 * rates, jitter factors and orders), each pixel operation against values worked out by hand,
 * normalisation, determinism, and config validation. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "test_data_util.h"

static supcon_context *g_ctx;

static supcon_transform *make(const supcon_transform_config *cfg) {
    supcon_transform *t = NULL;
    supcon_status st = supcon_transform_create(g_ctx, cfg, &t);
    if (st != SUPCON_OK) fail_msg("%s", supcon_context_last_error(g_ctx));
    return t;
}

static supcon_transform_params draw(const supcon_transform *t, int h, int w, uint64_t epoch,
                                    uint64_t index, int view) {
    supcon_transform_params p;
    p.struct_size = sizeof p;
    assert_int_equal(supcon_transform_sample(t, h, w, 7, epoch, index, view, &p), SUPCON_OK);
    return p;
}

/* |count - n p| within 5 standard deviations of a binomial */
static void assert_rate(long count, long n, double p) {
    double sd = sqrt(n * p * (1 - p));
    if (fabs(count - n * p) > 5 * sd + 1)
        fail_msg("rate %g, expected %g (n %ld)", (double)count / n, p, n);
}

/* chi-square of `bins` counts against equal expectation, below a generous bound */
static void assert_flat(const long *counts, int bins, long n) {
    double e = (double)n / bins, chi = 0;
    for (int b = 0; b < bins; b++) chi += (counts[b] - e) * (counts[b] - e) / e;
    /* df = bins - 1; mean df, sd sqrt(2 df): 6 sd above the mean */
    double bound = (bins - 1) + 6 * sqrt(2.0 * (bins - 1));
    if (chi > bound) fail_msg("chi-square %g over %d bins exceeds %g", chi, bins, bound);
}

static void test_contrastive_statistics(void **state) {
    (void)state;
    supcon_transform_config cfg = supcon_transform_config_default();
    supcon_transform *t = make(&cfg);
    assert_int_equal(supcon_transform_views(t), 2);
    assert_int_equal(supcon_transform_size(t), 32);
    const long n = 40000;
    long flips = 0, jitters = 0, greys = 0, fallbacks = 0, orders[24] = {0};
    long bbins[10] = {0}, hbins[10] = {0};
    for (long i = 0; i < n; i++) {
        supcon_transform_params p = draw(t, 32, 32, 3, (uint64_t)i / 2, (int)(i % 2));
        /* the box lies in the image; area and aspect follow the drawn values up to rounding */
        assert_true(p.crop_top >= 0 && p.crop_left >= 0 && p.crop_height >= 1 && p.crop_width >= 1);
        assert_true(p.crop_top + p.crop_height <= 32 && p.crop_left + p.crop_width <= 32);
        if (p.crop_tries == 11) {
            fallbacks++;
        } else {
            assert_true(p.crop_tries >= 1 && p.crop_tries <= 10);
            assert_true(p.crop_scale >= 0.2f && p.crop_scale <= 1.0f);
            assert_true(p.crop_ratio >= 0.75f * 0.9999f && p.crop_ratio <= (4.0f / 3) * 1.0001f);
            double area = (double)p.crop_height * p.crop_width / 1024.0;
            double ws = sqrt(p.crop_scale * p.crop_ratio) * 32, hs = sqrt(p.crop_scale / p.crop_ratio) * 32;
            assert_true(fabs(p.crop_width - ws) <= 0.5 + 1e-6 && fabs(p.crop_height - hs) <= 0.5 + 1e-6);
            assert_true(area >= 0.2 * 0.85 && area <= 1.0);
        }
        flips += p.flip;
        jitters += p.jitter;
        greys += p.grey;
        /* factors in range, drawn whether applied or not */
        assert_true(p.brightness >= 0.6f && p.brightness <= 1.4f);
        assert_true(p.contrast >= 0.6f && p.contrast <= 1.4f);
        assert_true(p.saturation >= 0.6f && p.saturation <= 1.4f);
        assert_true(p.hue >= -0.1f && p.hue <= 0.1f);
        bbins[(int)((p.brightness - 0.6f) / 0.8f * 10 * 0.99999f)]++;
        hbins[(int)((p.hue + 0.1f) / 0.2f * 10 * 0.99999f)]++;
        int seen = 0, code = 0;
        for (int k = 0; k < 4; k++) {
            seen |= 1 << p.jitter_order[k];
            code = code * 4 + p.jitter_order[k];
        }
        assert_int_equal(seen, 15);
        /* rank of the permutation among the 24 */
        static int map[256];
        static int next = 0;
        if (!map[code]) map[code] = ++next;
        assert_true(map[code] <= 24);
        orders[map[code] - 1]++;
    }
    assert_rate(flips, n, 0.5);
    assert_rate(jitters, n, 0.8);
    assert_rate(greys, n, 0.2);
    assert_true(fallbacks < n / 100); /* a square image rarely needs it */
    assert_flat(orders, 24, n);
    assert_flat(bbins, 10, n);
    assert_flat(hbins, 10, n);
    supcon_transform_free(t);
}

/* On an image big enough that the first try always fits, the realised area fraction is
 * uniform on the scale range, the log aspect uniform on the log ratio range, and the box's
 * position uniform over the places it fits. */
static void test_crop_distribution(void **state) {
    (void)state;
    supcon_transform_config cfg = supcon_transform_config_preset(SUPCON_PRESET_SUPERVISED);
    cfg.scale_min = 0.2f;
    cfg.scale_max = 0.5f;
    supcon_transform *t = make(&cfg);
    const long n = 20000;
    long abins[10] = {0}, rbins[10] = {0}, tbins[10] = {0};
    const double lo = log(0.75), hi = log(4.0 / 3);
    for (long i = 0; i < n; i++) {
        supcon_transform_params p = draw(t, 2000, 2000, 1, (uint64_t)i, 0);
        assert_int_equal(p.crop_tries, 1);
        double area = (double)p.crop_height * p.crop_width / 4e6;
        double lr = log((double)p.crop_width / p.crop_height);
        assert_true(area > 0.2 - 2e-3 && area < 0.5 + 2e-3);
        assert_true(lr > lo - 2e-3 && lr < hi + 2e-3);
        int ab = (int)((area - 0.2) / 0.3 * 10), rb = (int)((lr - lo) / (hi - lo) * 10);
        abins[ab < 0 ? 0 : ab > 9 ? 9 : ab]++;
        rbins[rb < 0 ? 0 : rb > 9 ? 9 : rb]++;
        double pos = (p.crop_top + 0.5) / (2000 - p.crop_height + 1);
        tbins[(int)(pos * 10)]++;
    }
    assert_flat(abins, 10, n);
    assert_flat(rbins, 10, n);
    assert_flat(tbins, 10, n);
    supcon_transform_free(t);

    /* the fallback: nothing fits, so a centre crop clamped to the ratio range */
    cfg.scale_min = 2.0f;
    cfg.scale_max = 3.0f;
    t = make(&cfg);
    supcon_transform_params p = draw(t, 10, 40, 0, 0, 0);
    assert_int_equal(p.crop_tries, 11);
    assert_int_equal(p.crop_height, 10); /* 40 / 10 > 4/3: h = H, w = round(10 * 4/3) */
    assert_int_equal(p.crop_width, 13);
    assert_int_equal(p.crop_top, 0);
    assert_int_equal(p.crop_left, 13);
    p = draw(t, 40, 10, 0, 0, 0); /* too tall: w = W, h = round(10 / 0.75) */
    assert_int_equal(p.crop_width, 10);
    assert_int_equal(p.crop_height, 13);
    assert_int_equal(p.crop_top, 13);
    p = draw(t, 30, 35, 0, 0, 0); /* within the ratio range: the whole image */
    assert_int_equal(p.crop_height, 30);
    assert_int_equal(p.crop_width, 35);
    supcon_transform_free(t);
}

/* ---- Pixel operations, through apply_params ---------------------------------------------------- */

static supcon_transform_params plain(int h, int w) {
    supcon_transform_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.crop_height = h;
    p.crop_width = w;
    for (int k = 0; k < 4; k++) p.jitter_order[k] = k;
    p.brightness = p.contrast = p.saturation = 1;
    return p;
}

/* An evaluation pipeline of the given size with mean 0 and std 1: output = pixel / 255. */
static supcon_transform *identity_pipeline(int size, int antialias) {
    supcon_transform_config cfg = supcon_transform_config_preset(SUPCON_PRESET_EVAL);
    cfg.size = size;
    cfg.antialias = antialias;
    for (int c = 0; c < 3; c++) {
        cfg.mean[c] = 0;
        cfg.std[c] = 1;
    }
    return make(&cfg);
}

static void test_resize_and_flip(void **state) {
    (void)state;
    /* 2 -> 4 (enlarging): align_corners=False bilinear, the same with and without antialias */
    const uint8_t src[2 * 2] = {0, 255, 51, 102};
    for (int aa = 0; aa < 2; aa++) {
        supcon_transform *t = identity_pipeline(4, aa);
        float out[16];
        supcon_transform_params p = plain(2, 2);
        assert_int_equal(supcon_transform_apply_params(t, src, 1, 2, 2, &p, out), SUPCON_OK);
        /* along x: taps at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) */
        const float wx[4][2] = {{1, 0}, {0.75f, 0.25f}, {0.25f, 0.75f}, {0, 1}};
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                double r0 = wx[x][0] * 0 + wx[x][1] * 1.0, r1 = wx[x][0] * 0.2 + wx[x][1] * 0.4;
                double v = wx[y][0] * r0 + wx[y][1] * r1;
                assert_true(fabs(out[y * 4 + x] - v) < 1e-6);
            }
        /* flipped: the same rows mirrored */
        float fl[16];
        p.flip = 1;
        assert_int_equal(supcon_transform_apply_params(t, src, 1, 2, 2, &p, fl), SUPCON_OK);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) assert_true(fl[y * 4 + x] == out[y * 4 + 3 - x]);
        supcon_transform_free(t);
    }
    /* 4 -> 2 (shrinking) along x on a 1-row crop of a 3-row image */
    const uint8_t row[3 * 4] = {9, 9, 9, 9, 0, 51, 102, 255, 9, 9, 9, 9};
    supcon_transform *t = identity_pipeline(2, 0);
    float out[4];
    supcon_transform_params p = plain(1, 4);
    p.crop_top = 1;
    assert_int_equal(supcon_transform_apply_params(t, row, 1, 3, 4, &p, out), SUPCON_OK);
    /* plain bilinear samples at 0.5 and 2.5 */
    assert_true(fabs(out[0] - 0.1) < 1e-6 && fabs(out[1] - 0.7) < 1e-6);
    assert_true(out[2] == out[0] && out[3] == out[1]); /* 1 row repeated */
    supcon_transform_free(t);
    t = identity_pipeline(2, 1);
    assert_int_equal(supcon_transform_apply_params(t, row, 1, 3, 4, &p, out), SUPCON_OK);
    /* a triangle of half-width 2 centred at 1 and at 3: weights 3/7 3/7 1/7 and 1/7 3/7 3/7 */
    double a0 = (3 * 0.0 + 3 * 0.2 + 1 * 0.4) / 7, a1 = (1 * 0.2 + 3 * 0.4 + 3 * 1.0) / 7;
    assert_true(fabs(out[0] - a0) < 1e-6 && fabs(out[1] - a1) < 1e-6);
    supcon_transform_free(t);

    /* no resize: exactly v / 255, and the crop offset respected */
    uint8_t big[3 * 5 * 6];
    for (int k = 0; k < 90; k++) big[k] = (uint8_t)(k * 3);
    t = identity_pipeline(3, 1);
    float o3[27];
    p = plain(3, 3);
    p.crop_top = 2;
    p.crop_left = 1;
    assert_int_equal(supcon_transform_apply_params(t, big, 3, 5, 6, &p, o3), SUPCON_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                assert_true(o3[(c * 3 + y) * 3 + x] == (float)big[c * 30 + (y + 2) * 6 + x + 1] / 255.0f);
    supcon_transform_free(t);
}

static void test_colour_ops(void **state) {
    (void)state;
    /* a 1x2 RGB image: (255, 0, 0) and (51, 102, 204) */
    const uint8_t img[6] = {255, 51, 0, 102, 0, 204};
    const float r[2] = {1.0f, 0.2f}, g[2] = {0.0f, 0.4f}, b[2] = {0.0f, 0.8f};
    supcon_transform *t = identity_pipeline(1, 1);
    float out[6];
    /* size 1 on a 1x2 image is a resize: use a 1x1 crop of each pixel instead */
    for (int px = 0; px < 2; px++) {
        supcon_transform_params p = plain(1, 1);
        p.crop_left = px;
        float grey = 0.299f * r[px] + 0.587f * g[px] + 0.114f * b[px];
        /* grey */
        p.grey = 1;
        assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
        for (int c = 0; c < 3; c++) assert_true(fabs(out[c] - grey) < 1e-6);
        p.grey = 0;
        /* brightness 1.3 scales and clamps */
        p.jitter = 1;
        p.brightness = 1.3f;
        p.jitter_order[0] = SUPCON_JITTER_BRIGHTNESS;
        p.jitter_order[1] = SUPCON_JITTER_CONTRAST;
        p.jitter_order[2] = SUPCON_JITTER_SATURATION;
        p.jitter_order[3] = SUPCON_JITTER_HUE;
        p.contrast = p.saturation = 1;
        p.hue = 0;
        assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
        const float *in[3] = {r, g, b};
        for (int c = 0; c < 3; c++) {
            double v = in[c][px] * 1.3;
            assert_true(fabs(out[c] - (v > 1 ? 1 : v)) < 1e-6);
        }
        /* saturation 0.5 blends halfway to the pixel's grey */
        p.brightness = 1;
        p.saturation = 0.5f;
        assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
        for (int c = 0; c < 3; c++) assert_true(fabs(out[c] - (0.5 * in[c][px] + 0.5 * grey)) < 1e-6);
        /* contrast on a 1-pixel image: the mean is that pixel's grey */
        p.saturation = 1;
        p.contrast = 0.25f;
        assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
        for (int c = 0; c < 3; c++) assert_true(fabs(out[c] - (0.25 * in[c][px] + 0.75 * grey)) < 1e-6);
        /* hue: a shift of 0 returns the pixel; 1/3 turns red into green, 2/3 into blue */
        p.contrast = 1;
        p.hue = 0;
        assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
        for (int c = 0; c < 3; c++) assert_true(fabs(out[c] - in[c][px]) < 1e-6);
        if (px == 0) {
            p.hue = 1.0f / 3;
            assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
            assert_true(fabs(out[0]) < 1e-5 && fabs(out[1] - 1) < 1e-5 && fabs(out[2]) < 1e-5);
            p.hue = -1.0f / 3;
            assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
            assert_true(fabs(out[0]) < 1e-5 && fabs(out[1]) < 1e-5 && fabs(out[2] - 1) < 1e-5);
        } else {
            /* (0.2, 0.4, 0.8): h = 11/18, s = 0.75, v = 0.8; shifting by 1/8 gives h = 53/72:
             * sector 4, f = 5/12: (t, p, v) = (0.8 (1 - 0.75 * 7/12), 0.2, 0.8) */
            p.hue = 0.125f;
            assert_int_equal(supcon_transform_apply_params(t, img, 3, 1, 2, &p, out), SUPCON_OK);
            assert_true(fabs(out[0] - 0.45) < 1e-5 && fabs(out[1] - 0.2) < 1e-5 &&
                        fabs(out[2] - 0.8) < 1e-5);
        }
        p.hue = 0;
    }
    supcon_transform_free(t);

    /* order matters: brightness 1.5 then contrast 0 (= the mean grey) differs from the reverse */
    const uint8_t two[6] = {51, 153, 51, 153, 51, 153}; /* 1x2, grey levels 0.2 and 0.6 */
    t = identity_pipeline(2, 1);
    supcon_transform_params p = plain(1, 2);
    float o1[12], o2[12]; /* 3 x 2 x 2 */
    /* the size-2 pipeline on a 1x2 crop resizes to 2x2: rows repeat */
    p.jitter = 1;
    p.brightness = 1.5f;
    p.contrast = 0.0f;
    int ord1[4] = {0, 1, 2, 3}, ord2[4] = {1, 0, 2, 3};
    memcpy(p.jitter_order, ord1, sizeof ord1);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o1), SUPCON_OK);
    memcpy(p.jitter_order, ord2, sizeof ord2);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o2), SUPCON_OK);
    /* brightness first: (0.3, 0.9) -> mean 0.6 everywhere; contrast first: 0.4 * 1.5 */
    assert_true(fabs(o1[0] - 0.6) < 1e-5 && fabs(o1[1] - 0.6) < 1e-5);
    assert_true(fabs(o2[0] - 0.6) < 1e-5 && fabs(o2[1] - 0.6) < 1e-5);
    p.contrast = 0.5f;
    memcpy(p.jitter_order, ord1, sizeof ord1);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o1), SUPCON_OK);
    memcpy(p.jitter_order, ord2, sizeof ord2);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o2), SUPCON_OK);
    /* b then c: 0.3, 0.9 -> mean 0.6 -> 0.45, 0.75; c then b: 0.3, 0.5 -> 0.45, 0.75 (linear)... */
    assert_true(fabs(o1[0] - 0.45) < 1e-5 && fabs(o1[1] - 0.75) < 1e-5);
    assert_true(fabs(o2[0] - 0.45) < 1e-5 && fabs(o2[1] - 0.75) < 1e-5);
    /* ...but clamping makes them differ: brightness 3 saturates 0.6 first */
    p.brightness = 3.0f;
    memcpy(p.jitter_order, ord1, sizeof ord1);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o1), SUPCON_OK);
    memcpy(p.jitter_order, ord2, sizeof ord2);
    assert_int_equal(supcon_transform_apply_params(t, two, 3, 1, 2, &p, o2), SUPCON_OK);
    /* b then c: (0.6, 1) mean 0.8 -> (0.7, 0.9); c then b: (0.3, 0.5) -> (0.9, 1) */
    assert_true(fabs(o1[0] - 0.7) < 1e-5 && fabs(o1[1] - 0.9) < 1e-5);
    assert_true(fabs(o2[0] - 0.9) < 1e-5 && fabs(o2[1] - 1.0) < 1e-5);
    supcon_transform_free(t);

    /* grey images: saturation, hue and grey scale leave them alone; contrast uses their mean */
    t = identity_pipeline(2, 1);
    const uint8_t g1[2] = {51, 153};
    p = plain(1, 2);
    p.jitter = 1;
    p.saturation = 0;
    p.hue = 0.3f;
    p.grey = 1;
    assert_int_equal(supcon_transform_apply_params(t, g1, 1, 1, 2, &p, o1), SUPCON_OK);
    assert_true(fabs(o1[0] - 0.2) < 1e-6 && fabs(o1[1] - 0.6) < 1e-6);
    supcon_transform_free(t);
}

static void test_normalise_and_determinism(void **state) {
    (void)state;
    supcon_transform_config cfg = supcon_transform_config_preset(SUPCON_PRESET_EVAL);
    supcon_transform *t = make(&cfg);
    uint8_t img[3 * 32 * 32];
    for (int k = 0; k < 3 * 1024; k++) img[k] = (uint8_t)(k % 251);
    float out[3 * 1024];
    assert_int_equal(supcon_transform_apply(t, img, 3, 32, 32, 1, 0, 0, 0, out, NULL), SUPCON_OK);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 1024; k++) {
            float v = ((float)img[c * 1024 + k] / 255.0f - cfg.mean[c]) / cfg.std[c];
            assert_true(out[c * 1024 + k] == v);
        }
    supcon_transform_free(t);

    /* the contrastive pipeline: same key, same bytes; another view or epoch, other bytes */
    cfg = supcon_transform_config_default();
    t = make(&cfg);
    float a[3 * 1024], b[3 * 1024];
    supcon_transform_params pa, pb;
    pa.struct_size = pb.struct_size = sizeof pa;
    assert_int_equal(supcon_transform_apply(t, img, 3, 32, 32, 5, 2, 17, 1, a, &pa), SUPCON_OK);
    assert_int_equal(supcon_transform_apply(t, img, 3, 32, 32, 5, 2, 17, 1, b, &pb), SUPCON_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(&pa, &pb, sizeof pa);
    /* sample draws what apply uses, and apply_params reproduces apply */
    supcon_transform_params ps;
    ps.struct_size = sizeof ps;
    assert_int_equal(supcon_transform_sample(t, 32, 32, 5, 2, 17, 1, &ps), SUPCON_OK);
    assert_memory_equal(&ps, &pa, sizeof ps);
    assert_int_equal(supcon_transform_apply_params(t, img, 3, 32, 32, &ps, b), SUPCON_OK);
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (int v = 0; v < 2; v++)
        for (int e = 0; e < 3; e++) {
            if (v == 1 && e == 2) continue;
            assert_int_equal(supcon_transform_apply(t, img, 3, 32, 32, 5, (uint64_t)e, 17, v, b, NULL), SUPCON_OK);
            differ += memcmp(a, b, sizeof a) != 0;
        }
    assert_int_equal(differ, 5);
    /* outputs stay within the normalised [0, 1] range */
    for (int k = 0; k < 3 * 1024; k++) {
        int c = k / 1024;
        float lo = (0 - cfg.mean[c]) / cfg.std[c], hi = (1 - cfg.mean[c]) / cfg.std[c];
        assert_true(a[k] >= lo - 1e-5f && a[k] <= hi + 1e-5f);
    }
    supcon_transform_free(t);
}

static void test_config_errors(void **state) {
    (void)state;
    supcon_transform *t = (supcon_transform *)1;
    supcon_transform_config cfg = supcon_transform_config_default();
    supcon_transform_config bad;
#define EXPECT_BAD(stmt)                                                                      \
    do {                                                                                      \
        bad = cfg;                                                                            \
        stmt;                                                                                 \
        assert_int_equal(supcon_transform_create(g_ctx, &bad, &t), SUPCON_ERR_INVALID_ARGUMENT); \
        assert_null(t);                                                                       \
    } while (0)
    EXPECT_BAD(bad.struct_size = 4);
    EXPECT_BAD(bad.size = 0);
    EXPECT_BAD(bad.views = 0);
    EXPECT_BAD(bad.views = 9);
    EXPECT_BAD(bad.scale_min = 0.5f; bad.scale_max = 0.4f);
    EXPECT_BAD(bad.ratio_min = -1);
    EXPECT_BAD(bad.flip_p = 1.5f);
    EXPECT_BAD(bad.grey_p = NAN);
    EXPECT_BAD(bad.hue = 0.6f);
    EXPECT_BAD(bad.brightness = -0.1f);
    EXPECT_BAD(bad.std[1] = 0);
    assert_int_equal(supcon_transform_create(NULL, &cfg, &t), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_transform_create(g_ctx, NULL, &t), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_transform_free(NULL);

    t = make(&cfg);
    uint8_t img[16] = {0};
    float out[3 * 32 * 32];
    assert_int_equal(supcon_transform_apply(t, img, 2, 4, 4, 0, 0, 0, 0, out, NULL),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_transform_apply(t, img, 1, 4, 4, 0, 0, 0, 2, out, NULL),
                     SUPCON_ERR_INVALID_ARGUMENT);
    supcon_transform_params p = plain(5, 4);
    assert_int_equal(supcon_transform_apply_params(t, img, 1, 4, 4, &p, out),
                     SUPCON_ERR_INVALID_ARGUMENT);
    p = plain(4, 4);
    p.jitter = 1;
    p.jitter_order[3] = 0;
    assert_int_equal(supcon_transform_apply_params(t, img, 1, 4, 4, &p, out),
                     SUPCON_ERR_INVALID_ARGUMENT);
    p.struct_size = 3;
    assert_int_equal(supcon_transform_sample(t, 4, 4, 0, 0, 0, 0, &p), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_transform_free(t);
}

int main(void) {
    g_ctx = td_context();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contrastive_statistics), cmocka_unit_test(test_crop_distribution),
        cmocka_unit_test(test_resize_and_flip),        cmocka_unit_test(test_colour_ops),
        cmocka_unit_test(test_normalise_and_determinism), cmocka_unit_test(test_config_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    supcon_context_free(g_ctx);
    return rc;
}
