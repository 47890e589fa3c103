/* SupConLoss gradients: (a) the double reference's analytic gradient against central finite
 * differences, for every mode, denominator, aggregation and kind of positives, batch and
 * pair form; (b) the library (CPU backend, float32) against that reference on random
 * inputs, shapes up to N = 600 so that tiling is exercised; (c) stability at tau = 0.01. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/loss_ref.h"
#include "supcon/loss.h"
#include "supcon/tensor.h"
#include "test_cmocka_context.h"
#include "test_util.h"

enum { POS_NONE = 0, POS_LABELS = 1, POS_MASK = 2 };
static const char *const POS_NAME[] = {"none", "labels", "mask"};
static const char *const DEN_NAME[] = {"all", "positive", "negatives"};
static const char *const AGG_NAME[] = {"out", "in"};
static const char *const MODE_NAME[] = {"all", "one"};


/* ---- random problems ----------------------------------------------------------------- */

/* Labels in [0, nclass); sample 0 gets a class of its own when lonely (no positive at V=1). */
static void rand_labels(tu_rng *r, int64_t *lab, int64_t b, int64_t nclass, int lonely) {
    for (int64_t i = 0; i < b; i++) lab[i] = tu_randint(r, nclass);
    if (lonely) lab[0] = nclass + 7;
}

/* A weighted, asymmetric mask: ~40 % zeros, weights in (0, 1.5]; row 0 all zero (no
 * positive), row 1 all ones when b > 2 (no negative for 'negatives'). */
static void rand_mask(tu_rng *r, float *m, int64_t b) {
    for (int64_t i = 0; i < b * b; i++)
        m[i] = tu_uniform(r) < 0.4 ? 0.0f : (float)(0.05 + 1.45 * tu_uniform(r));
    for (int64_t j = 0; j < b; j++) m[j] = 0.0f;
    if (b > 2)
        for (int64_t j = 0; j < b; j++) m[b + j] = 1.0f;
}

/* ---- (a) reference vs finite differences --------------------------------------------- */

static double fd_batch_loss(const loss_ref_config *rc, const double *x, int64_t b, int64_t v,
                            int64_t d, const int64_t *lab, const double *mask) {
    return loss_ref_batch(rc, x, b, v, d, lab, mask, NULL);
}

static void fd_check_batch(const loss_ref_config *rc, int64_t b, int64_t v, int64_t d, int pos,
                           uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    const int64_t n = b * v * d;
    float *xf = malloc(sizeof(float) * (size_t)n);
    double *x = malloc(sizeof(double) * (size_t)n), *g = malloc(sizeof(double) * (size_t)n),
           *fd = malloc(sizeof(double) * (size_t)n);
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)b);
    float *mf = malloc(sizeof(float) * (size_t)(b * b));
    double *mask = malloc(sizeof(double) * (size_t)(b * b));
    assert_true(xf && x && g && fd && lab && mf && mask);
    tu_fill_rows(&r, xf, b * v, d, 1);
    for (int64_t i = 0; i < n; i++) x[i] = xf[i];
    rand_labels(&r, lab, b, 2, 1);
    rand_mask(&r, mf, b);
    for (int64_t i = 0; i < b * b; i++) mask[i] = mf[i];
    const int64_t *L = pos == POS_LABELS ? lab : NULL;
    const double *M = pos == POS_MASK ? mask : NULL;

    double loss = loss_ref_batch(rc, x, b, v, d, L, M, g);
    assert_true(isfinite(loss));
    const double h = 1e-6;
    double gmax = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = fd_batch_loss(rc, x, b, v, d, L, M);
        x[i] = keep - h;
        double lm = fd_batch_loss(rc, x, b, v, d, L, M);
        x[i] = keep;
        fd[i] = (lp - lm) / (2 * h);
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    }
    double e = tu_rel_norm_err_dd(g, fd, n, 1e-12);
    double emax = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(g[i] - fd[i]) > emax) emax = fabs(g[i] - fd[i]);
    if (!(e <= 1e-6) || !(emax <= 1e-6 * (gmax > 1e-3 ? gmax : 1e-3)))
        fail_msg("reference vs FD: B=%lld V=%lld D=%lld mode=%s den=%s agg=%s pos=%s tau=%g: "
                 "rel norm err %.3g, max abs err %.3g (max |g| %.3g)",
                 (long long)b, (long long)v, (long long)d, MODE_NAME[rc->contrast_mode],
                 DEN_NAME[rc->denominator], AGG_NAME[rc->aggregation], POS_NAME[pos],
                 rc->temperature, e, emax, gmax);
    /* the check has teeth: the gradient is not identically zero */
    assert_true(gmax > 1e-4);
    free(xf), free(x), free(g), free(fd), free(lab), free(mf), free(mask);
}

static void test_ref_fd_batch(void **state) {
    (void)state;
    uint64_t seed = 1;
    for (int mode = 0; mode < 2; mode++)
        for (int den = 0; den < 3; den++)
            for (int agg = 0; agg < 2; agg++)
                for (int pos = 0; pos < 3; pos++) {
                    loss_ref_config rc = {0.1, 0.07, mode, den, agg};
                    fd_check_batch(&rc, 6, 2, 5, pos, seed++);
                    if (pos == POS_LABELS) fd_check_batch(&rc, 5, 3, 4, pos, seed++);
                }
    /* un-normalised-scale temperature and V = 1 */
    loss_ref_config rc = {0.5, 0.07, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT};
    fd_check_batch(&rc, 7, 1, 3, POS_LABELS, 99);
}

static void fd_check_pair(const loss_ref_config *rc, int64_t na, int64_t nc, int64_t d,
                          int same, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    if (same) nc = na;
    float *af = malloc(sizeof(float) * (size_t)(na * d)), *cf = malloc(sizeof(float) * (size_t)(nc * d));
    double *a = malloc(sizeof(double) * (size_t)(na * d)), *c = malloc(sizeof(double) * (size_t)(nc * d));
    double *ga = malloc(sizeof(double) * (size_t)(na * d)), *gc = malloc(sizeof(double) * (size_t)(nc * d));
    int64_t *la = malloc(sizeof(int64_t) * (size_t)na), *lc = malloc(sizeof(int64_t) * (size_t)nc);
    assert_true(af && cf && a && c && ga && gc && la && lc);
    tu_fill_rows(&r, af, na, d, 1);
    tu_fill_rows(&r, cf, nc, d, 1);
    rand_labels(&r, la, na, 3, 0);
    rand_labels(&r, lc, nc, 3, 0);
    if (same) {
        memcpy(cf, af, sizeof(float) * (size_t)(na * d));
        memcpy(lc, la, sizeof(int64_t) * (size_t)na);
    }
    for (int64_t i = 0; i < na * d; i++) a[i] = af[i];
    for (int64_t i = 0; i < nc * d; i++) c[i] = cf[i];
    double loss = loss_ref_pair(rc, a, la, na, c, lc, nc, d, same, ga, gc);
    assert_true(isfinite(loss));
    const double h = 1e-6;
    double num = 0, den = 0;
    /* anchors (for same: the one tensor, moved in both roles at once) */
    for (int64_t i = 0; i < na * d; i++) {
        double ka = a[i], kc = same ? c[i] : 0;
        a[i] = ka + h;
        if (same) c[i] = kc + h;
        double lp = loss_ref_pair(rc, a, la, na, c, lc, nc, d, same, NULL, NULL);
        a[i] = ka - h;
        if (same) c[i] = kc - h;
        double lm = loss_ref_pair(rc, a, la, na, c, lc, nc, d, same, NULL, NULL);
        a[i] = ka;
        if (same) c[i] = kc;
        double fd = (lp - lm) / (2 * h);
        num += (fd - ga[i]) * (fd - ga[i]);
        den += fd * fd;
        if (same) assert_true(ga[i] == gc[i]);
    }
    if (!same)
        for (int64_t i = 0; i < nc * d; i++) {
            double k = c[i];
            c[i] = k + h;
            double lp = loss_ref_pair(rc, a, la, na, c, lc, nc, d, 0, NULL, NULL);
            c[i] = k - h;
            double lm = loss_ref_pair(rc, a, la, na, c, lc, nc, d, 0, NULL, NULL);
            c[i] = k;
            double fd = (lp - lm) / (2 * h);
            num += (fd - gc[i]) * (fd - gc[i]);
            den += fd * fd;
        }
    assert_true(den > 1e-8);
    double e = sqrt(num) / sqrt(den);
    if (!(e <= 1e-6))
        fail_msg("reference pair vs FD: NA=%lld NC=%lld same=%d den=%s agg=%s: rel err %.3g",
                 (long long)na, (long long)nc, same, DEN_NAME[rc->denominator],
                 AGG_NAME[rc->aggregation], e);
    free(af), free(cf), free(a), free(c), free(ga), free(gc), free(la), free(lc);
}

static void test_ref_fd_pair(void **state) {
    (void)state;
    uint64_t seed = 500;
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++) {
            loss_ref_config rc = {0.07, 0.07, REF_MODE_ALL, den, agg};
            fd_check_pair(&rc, 5, 9, 4, 0, seed++);
            fd_check_pair(&rc, 6, 6, 4, 1, seed++);
        }
}

/* The reference itself against a hand-computed value: B = 2, V = 2, D = 1, SimCLR, with
 * features +1, -1 (sample 0) and +1, +1 (sample 1): rows (view-major) x = [1, 1, -1, 1]. */
static void test_ref_hand_value(void **state) {
    (void)state;
    const double f[4] = {1, -1, 1, 1}; /* [B=2, V=2, D=1] */
    loss_ref_config rc = {1.0, 1.0, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT};
    double got = loss_ref_batch(&rc, f, 2, 2, 1, NULL, NULL, NULL);
    /* contrast rows: c0 = s0v0 = 1, c1 = s1v0 = 1, c2 = s0v1 = -1, c3 = s1v1 = 1
     * anchor c0: others z = {1, -1, 1}, positive c2 (z=-1): lp = -1 - log(2e + 1/e)
     * anchor c1: others {1, -1, 1}, positive c3 (z=1): lp = 1 - log(2e + 1/e)
     * anchor c2: others {-1, -1, -1}, positive c0: lp = -1 - log(3/e) = -log 3
     * anchor c3: others {1, 1, -1}, positive c1: lp = 1 - log(2e + 1/e) */
    double ls = log(2 * exp(1.0) + exp(-1.0));
    double want = -((-1 - ls) + (1 - ls) + (-log(3.0)) + (1 - ls)) / 4.0;
    assert_true(fabs(got - want) < 1e-12);
}

/* ---- (b) library vs reference --------------------------------------------------------- */

typedef struct lib_case {
    int64_t b, v, d;
    int pos;
    int mode, den, agg;
    double tau, tau_b;
    int four_d;      /* pass features as [B, V, 2, D/2] */
    int label_int32; /* labels as int32 instead of int64 */
    double scale;    /* row norms (1 = unit vectors; <0: random spread around |scale|) */
    uint64_t seed;
} lib_case;

/* Floor under the norm of a reference gradient when measuring relative error: 1 % of the
 * gradient's natural size, sqrt(rows) / (tau_b N_A) (each row gathers dL/dz terms of size
 * (tau/tau_b)/N_A over 1/tau). Only degenerate inputs, whose true gradient cancels to almost
 * nothing (e.g. one saturated positive), get near it; float32 cannot resolve those. */
static double grad_floor(int64_t rows, int64_t n_anchor, double tau_b) {
    return 1e-2 * sqrt((double)rows) / (tau_b * (double)n_anchor);
}

static supcon_tensor *up(supcon_dtype dt, int ndim, const int64_t *shape, const void *data) {
    supcon_tensor *t = NULL;
    if (supcon_tensor_create(g_ctx, dt, ndim, shape, &t) != SUPCON_OK)
        fail_msg("tensor_create: %s", supcon_context_last_error(g_ctx));
    if (data && supcon_tensor_upload(t, data, supcon_tensor_bytes(t)) != SUPCON_OK)
        fail_msg("tensor_upload: %s", supcon_context_last_error(g_ctx));
    return t;
}

static supcon_loss *make_loss(double tau, double tau_b, int mode, int den, int agg) {
    supcon_loss_config cfg = supcon_loss_config_default();
    cfg.temperature = (float)tau;
    cfg.base_temperature = (float)tau_b;
    cfg.contrast_mode = (supcon_contrast_mode)mode;
    cfg.denominator = (supcon_loss_denominator)den;
    cfg.aggregation = (supcon_loss_aggregation)agg;
    supcon_loss *l = NULL;
    if (supcon_loss_create(g_ctx, &cfg, &l) != SUPCON_OK)
        fail_msg("loss_create: %s", supcon_context_last_error(g_ctx));
    return l;
}

/* Runs the case through the library and the reference; returns 0 when within tolerance,
 * else prints why and returns 1. *finite is set when the library output is all finite. */
static int run_lib_case(const lib_case *c, double tol_loss, double tol_grad, int *finite) {
    tu_rng r = tu_rng_seed(c->seed);
    const int64_t b = c->b, v = c->v, d = c->d, n = b * v * d;
    float *x = malloc(sizeof(float) * (size_t)n), *gl = malloc(sizeof(float) * (size_t)n);
    double *xd = malloc(sizeof(double) * (size_t)n), *gr = malloc(sizeof(double) * (size_t)n);
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)b);
    int32_t *lab32 = malloc(sizeof(int32_t) * (size_t)b);
    float *mask = malloc(sizeof(float) * (size_t)(b * b));
    double *maskd = malloc(sizeof(double) * (size_t)(b * b));
    assert_true(x && gl && xd && gr && lab && lab32 && mask && maskd);
    tu_fill_rows(&r, x, b * v, d, 1);
    if (c->scale != 1.0)
        for (int64_t i = 0; i < b * v; i++) {
            float s = (float)(c->scale > 0 ? c->scale : -c->scale * (0.5 + tu_uniform(&r)));
            for (int64_t j = 0; j < d; j++) x[i * d + j] *= s;
        }
    for (int64_t i = 0; i < n; i++) xd[i] = x[i];
    int64_t nclass = b / 4 > 2 ? b / 4 : 2;
    rand_labels(&r, lab, b, nclass, v == 1);
    for (int64_t i = 0; i < b; i++) lab32[i] = (int32_t)lab[i];
    rand_mask(&r, mask, b);
    for (int64_t i = 0; i < b * b; i++) maskd[i] = mask[i];

    loss_ref_config rc = {c->tau, c->tau_b, c->mode, c->den, c->agg};
    double want = loss_ref_batch(&rc, xd, b, v, d, c->pos == POS_LABELS ? lab : NULL,
                                 c->pos == POS_MASK ? maskd : NULL, gr);

    supcon_loss *loss = make_loss(c->tau, c->tau_b, c->mode, c->den, c->agg);
    int64_t shape3[3] = {b, v, d}, shape4[4] = {b, v, 2, d / 2};
    const int ndim = c->four_d ? 4 : 3;
    const int64_t *shape = c->four_d ? shape4 : shape3;
    if (c->four_d) assert_int_equal(d % 2, 0);
    supcon_tensor *tf = up(SUPCON_FLOAT32, ndim, shape, x);
    supcon_tensor *tg = up(SUPCON_FLOAT32, ndim, shape, NULL);
    int64_t lshape[1] = {b}, mshape[2] = {b, b};
    supcon_tensor *tl = NULL, *tm = NULL;
    if (c->pos == POS_LABELS)
        tl = c->label_int32 ? up(SUPCON_INT32, 1, lshape, lab32) : up(SUPCON_INT64, 1, lshape, lab);
    if (c->pos == POS_MASK) tm = up(SUPCON_FLOAT32, 2, mshape, mask);

    float got = NAN;
    supcon_status s = supcon_loss_forward(loss, tf, tl, tm, &got);
    if (s != SUPCON_OK) fail_msg("forward: %s", supcon_context_last_error(g_ctx));
    s = supcon_loss_backward(loss, tg);
    if (s != SUPCON_OK) fail_msg("backward: %s", supcon_context_last_error(g_ctx));
    assert_int_equal(supcon_tensor_download(tg, gl, sizeof(float) * (size_t)n), SUPCON_OK);

    *finite = isfinite(got) && tu_all_finite_f(gl, n);
    double el = tu_rel_err(got, want, 1e-6);
    const int64_t n_anchor = c->mode == REF_MODE_ONE ? b : b * v;
    double eg = tu_rel_norm_err_fd(gl, gr, n, grad_floor(b * v, n_anchor, c->tau_b));
    int bad = !(el <= tol_loss) || !(eg <= tol_grad);
    if (bad)
        print_error("library vs reference: B=%lld V=%lld D=%lld%s pos=%s%s mode=%s den=%s "
                    "agg=%s tau=%g tau_b=%g scale=%g: loss %.9g vs %.9g (rel %.3g), "
                    "grad rel norm err %.3g\n",
                    (long long)b, (long long)v, (long long)d, c->four_d ? " (4-D)" : "",
                    POS_NAME[c->pos], c->pos == POS_LABELS ? (c->label_int32 ? " int32" : " int64") : "",
                    MODE_NAME[c->mode], DEN_NAME[c->den], AGG_NAME[c->agg], c->tau, c->tau_b,
                    c->scale, (double)got, want, el, eg);
    supcon_tensor_free(tf);
    supcon_tensor_free(tg);
    supcon_tensor_free(tl);
    supcon_tensor_free(tm);
    supcon_loss_free(loss);
    free(x), free(gl), free(xd), free(gr), free(lab), free(lab32), free(mask), free(maskd);
    return bad;
}

/* Every variant on small and medium shapes, every kind of positives. */
static void test_lib_vs_ref_variants(void **state) {
    (void)state;
    static const int64_t shapes[][3] = {{4, 1, 3}, {16, 2, 32}, {24, 3, 17}, {64, 2, 64}};
    int failures = 0, count = 0, finite;
    uint64_t seed = 1000;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int mode = 0; mode < 2; mode++)
            for (int den = 0; den < 3; den++)
                for (int agg = 0; agg < 2; agg++)
                    for (int pos = 0; pos < 3; pos++) {
                        lib_case c = {shapes[si][0], shapes[si][1], shapes[si][2], pos, mode, den,
                                      agg, 0.07, 0.07, 0, (int)(seed & 1), 1.0, seed};
                        seed++;
                        failures += run_lib_case(&c, 1e-5, 1e-5, &finite);
                        count++;
                    }
    if (failures) fail_msg("%d of %d library/reference comparisons failed", failures, count);
}

/* N = 600 (B = 300, V = 2) and an odd large shape, so that tiles and their edges are used. */
static void test_lib_vs_ref_large(void **state) {
    (void)state;
    int failures = 0, count = 0, finite;
    uint64_t seed = 5000;
    for (int mode = 0; mode < 2; mode++)
        for (int den = 0; den < 3; den++)
            for (int agg = 0; agg < 2; agg++) {
                lib_case c = {300, 2, 64, POS_LABELS, mode, den, agg, 0.07, 0.07, 0, 0, 1.0, seed++};
                failures += run_lib_case(&c, 1e-5, 1e-5, &finite);
                count++;
            }
    lib_case odd = {131, 3, 37, POS_MASK, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT, 0.07, 0.07, 0, 0, 1.0, seed++};
    failures += run_lib_case(&odd, 1e-5, 1e-5, &finite), count++;
    lib_case simclr = {257, 2, 20, POS_NONE, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT, 0.07, 0.07, 0, 0, 1.0, seed++};
    failures += run_lib_case(&simclr, 1e-5, 1e-5, &finite), count++;
    /* N_A x N_C = 9e6 logits: more than one block of the CPU backend (8 Mi floats today), so
     * anchors past the first block, and their self entries, are checked too */
    lib_case blocks = {1500, 2, 8, POS_LABELS, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT, 0.07, 0.07, 0, 1, 1.0, seed++};
    failures += run_lib_case(&blocks, 1e-5, 1e-5, &finite), count++;
    if (failures) fail_msg("%d of %d large comparisons failed", failures, count);
}

/* Temperatures, base temperature scaling, 4-D features, int32 labels, un-normalised rows. */
static void test_lib_vs_ref_settings(void **state) {
    (void)state;
    int failures = 0, count = 0, finite;
    uint64_t seed = 7000;
    const double taus[][2] = {{0.1, 0.07}, {0.5, 0.07}, {0.07, 0.5}, {1.0, 1.0}};
    for (size_t i = 0; i < sizeof taus / sizeof taus[0]; i++)
        for (int pos = 0; pos < 3; pos++) {
            lib_case c = {32, 2, 16, pos, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT, taus[i][0], taus[i][1], 0, 1, 1.0, seed++};
            failures += run_lib_case(&c, 1e-5, 1e-5, &finite), count++;
        }
    for (int den = 0; den < 3; den++) {
        lib_case c4 = {12, 2, 16, POS_LABELS, REF_MODE_ALL, den, REF_AGG_IN, 0.07, 0.07, 1, 1, 1.0, seed++};
        failures += run_lib_case(&c4, 1e-5, 1e-5, &finite), count++;
        lib_case cu = {20, 2, 24, POS_LABELS, REF_MODE_ONE, den, REF_AGG_OUT, 0.07, 0.07, 0, 0, -1.0, seed++};
        failures += run_lib_case(&cu, 1e-5, 1e-5, &finite), count++;
    }
    /* tau = 0.01 on unit vectors: logits up to 100 */
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++) {
            lib_case c = {48, 2, 32, POS_LABELS, REF_MODE_ALL, den, agg, 0.01, 0.07, 0, 0, 1.0, seed++};
            failures += run_lib_case(&c, 1e-5, 1e-4, &finite), count++;
        }
    if (failures) fail_msg("%d of %d comparisons failed", failures, count);
}

static int run_pair_case(int64_t na, int64_t nc, int64_t d, int same, int den, int agg,
                         double tau, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    if (same) nc = na;
    float *a = malloc(sizeof(float) * (size_t)(na * d)), *c = malloc(sizeof(float) * (size_t)(nc * d));
    float *ga = malloc(sizeof(float) * (size_t)(na * d)), *gc = malloc(sizeof(float) * (size_t)(nc * d));
    double *ad = malloc(sizeof(double) * (size_t)(na * d)), *cd = malloc(sizeof(double) * (size_t)(nc * d));
    double *rga = malloc(sizeof(double) * (size_t)(na * d)), *rgc = malloc(sizeof(double) * (size_t)(nc * d));
    int64_t *la = malloc(sizeof(int64_t) * (size_t)na), *lc = malloc(sizeof(int64_t) * (size_t)nc);
    assert_true(a && c && ga && gc && ad && cd && rga && rgc && la && lc);
    tu_fill_rows(&r, a, na, d, 1);
    tu_fill_rows(&r, c, nc, d, 1);
    rand_labels(&r, la, na, 10, 0);
    rand_labels(&r, lc, nc, 10, 0);
    if (same) {
        memcpy(c, a, sizeof(float) * (size_t)(na * d));
        memcpy(lc, la, sizeof(int64_t) * (size_t)na);
    }
    for (int64_t i = 0; i < na * d; i++) ad[i] = a[i];
    for (int64_t i = 0; i < nc * d; i++) cd[i] = c[i];
    loss_ref_config rc = {tau, 0.07, REF_MODE_ALL, den, agg};
    double want = loss_ref_pair(&rc, ad, la, na, cd, lc, nc, d, same, rga, rgc);

    supcon_loss *loss = make_loss(tau, 0.07, REF_MODE_ALL, den, agg);
    int64_t sa[2] = {na, d}, sc[2] = {nc, d}, sla[1] = {na}, slc[1] = {nc};
    supcon_tensor *ta = up(SUPCON_FLOAT32, 2, sa, a), *tla = up(SUPCON_INT64, 1, sla, la);
    supcon_tensor *tc = same ? ta : up(SUPCON_FLOAT32, 2, sc, c);
    supcon_tensor *tlc = same ? tla : up(SUPCON_INT64, 1, slc, lc);
    supcon_tensor *tga = up(SUPCON_FLOAT32, 2, sa, NULL), *tgc = up(SUPCON_FLOAT32, 2, sc, NULL);
    float got = NAN;
    if (supcon_loss_forward_pair(loss, ta, tla, tc, tlc, &got) != SUPCON_OK)
        fail_msg("forward_pair: %s", supcon_context_last_error(g_ctx));
    if (supcon_loss_backward_pair(loss, tga, tgc) != SUPCON_OK)
        fail_msg("backward_pair: %s", supcon_context_last_error(g_ctx));
    assert_int_equal(supcon_tensor_download(tga, ga, sizeof(float) * (size_t)(na * d)), SUPCON_OK);
    assert_int_equal(supcon_tensor_download(tgc, gc, sizeof(float) * (size_t)(nc * d)), SUPCON_OK);
    double el = tu_rel_err(got, want, 1e-6);
    double ea = tu_rel_norm_err_fd(ga, rga, na * d, grad_floor(na, na, 0.07));
    double ec = tu_rel_norm_err_fd(gc, rgc, nc * d, grad_floor(nc, na, 0.07));
    double tg = tau <= 0.01 ? 1e-4 : 1e-5;
    int bad = !(el <= 1e-5) || !(ea <= tg) || !(ec <= tg);
    if (bad)
        print_error("pair: NA=%lld NC=%lld D=%lld same=%d den=%s agg=%s tau=%g: loss %.9g vs %.9g "
                    "(rel %.3g), grad anchors %.3g, grad contrast %.3g\n",
                    (long long)na, (long long)nc, (long long)d, same, DEN_NAME[den], AGG_NAME[agg],
                    tau, (double)got, want, el, ea, ec);
    if (!same) {
        supcon_tensor_free(tc);
        supcon_tensor_free(tlc);
    }
    supcon_tensor_free(ta);
    supcon_tensor_free(tla);
    supcon_tensor_free(tga);
    supcon_tensor_free(tgc);
    supcon_loss_free(loss);
    free(a), free(c), free(ga), free(gc), free(ad), free(cd), free(rga), free(rgc), free(la), free(lc);
    return bad;
}

static void test_lib_vs_ref_pair(void **state) {
    (void)state;
    int failures = 0, count = 0;
    uint64_t seed = 9000;
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++) {
            failures += run_pair_case(64, 500, 32, 0, den, agg, 0.07, seed++), count++;
            failures += run_pair_case(200, 0, 24, 1, den, agg, 0.07, seed++), count++;
            failures += run_pair_case(7, 3, 5, 0, den, agg, 0.1, seed++), count++;
        }
    failures += run_pair_case(40, 300, 16, 0, REF_DEN_ALL, REF_AGG_OUT, 0.01, seed++), count++;
    /* a long queue: 200 x 45000 logits, more than one block of anchor rows */
    failures += run_pair_case(200, 45000, 4, 0, REF_DEN_NEGATIVES, REF_AGG_IN, 0.1, seed++), count++;
    if (failures) fail_msg("%d of %d pair comparisons failed", failures, count);
}

/* ---- (c) stability --------------------------------------------------------------------- */

static void test_stability(void **state) {
    (void)state;
    int finite = 0, failures = 0;
    uint64_t seed = 12000;
    /* tau = 0.01 on unit vectors, every variant: finite and still accurate */
    for (int mode = 0; mode < 2; mode++)
        for (int den = 0; den < 3; den++)
            for (int agg = 0; agg < 2; agg++) {
                lib_case c = {64, 2, 16, POS_LABELS, mode, den, agg, 0.01, 0.01, 0, 0, 1.0, seed++};
                failures += run_lib_case(&c, 1e-5, 1e-4, &finite);
                if (!finite) fail_msg("non-finite output at tau = 0.01 (mode %s den %s agg %s)",
                                      MODE_NAME[mode], DEN_NAME[den], AGG_NAME[agg]);
            }
    /* rows of norm 4 at tau = 0.05: logits up to 320, far outside exp's float range unless
     * the row max is subtracted; only finiteness and a loose agreement are asked for */
    for (int den = 0; den < 3; den++) {
        lib_case c = {32, 2, 16, POS_LABELS, REF_MODE_ALL, den, REF_AGG_OUT, 0.05, 0.07, 0, 0, 4.0, seed++};
        failures += run_lib_case(&c, 1e-3, 1e-3, &finite);
        if (!finite) fail_msg("non-finite output with logits of 320 (den %s)", DEN_NAME[den]);
    }
    if (failures) fail_msg("%d stability comparisons out of tolerance", failures);
}

/* Logits 190 apart at tau = 0.01: anchor 0 = (1, 0) has positives at cos 0.9 (z = 90) and
 * cos -1 (z = -100) and a negative at cos -1. Relative to the row max, e^(z - max) of the far
 * entries is 1e-83: zero in float32. A correct implementation still finds every variant's
 * exact value (here lp of the far positive under the 'positive' denominator is -log 2, and
 * the 'in' sums are dominated by the near positive); it must not return Inf/NaN, nor treat
 * the anchor as one without negatives. */
static void test_far_apart_logits(void **state) {
    (void)state;
    const int64_t b = 4, v = 1, d = 2, n = b * v * d;
    const float x[8] = {1.0f, 0.0f, 0.9f, 0.43588989f, -1.0f, 0.0f, -1.0f, 0.0f};
    const int64_t lab[4] = {0, 0, 0, 1};
    double xd[8], gr[8];
    for (int i = 0; i < 8; i++) xd[i] = x[i];
    int64_t shape[3] = {b, v, d}, lshape[1] = {b};
    supcon_tensor *tf = up(SUPCON_FLOAT32, 3, shape, x), *tg = up(SUPCON_FLOAT32, 3, shape, NULL);
    supcon_tensor *tl = up(SUPCON_INT64, 1, lshape, lab);
    int failures = 0;
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++) {
            loss_ref_config rc = {0.01, 0.07, REF_MODE_ALL, den, agg};
            double want = loss_ref_batch(&rc, xd, b, v, d, lab, NULL, gr);
            supcon_loss *loss = make_loss(0.01, 0.07, REF_MODE_ALL, den, agg);
            float got = NAN, g[8];
            assert_int_equal(supcon_loss_forward(loss, tf, tl, NULL, &got), SUPCON_OK);
            assert_int_equal(supcon_loss_backward(loss, tg), SUPCON_OK);
            assert_int_equal(supcon_tensor_download(tg, g, sizeof g), SUPCON_OK);
            double el = tu_rel_err(got, want, 1e-6);
            double eg = tu_rel_norm_err_fd(g, gr, n, grad_floor(b * v, b * v, 0.07));
            if (!isfinite(got) || !tu_all_finite_f(g, n) || !(el <= 1e-5) || !(eg <= 1e-4)) {
                print_error("far-apart logits, den=%s agg=%s: loss %.9g vs reference %.9g (rel %.3g), "
                            "grad rel err %.3g\n", DEN_NAME[den], AGG_NAME[agg], (double)got, want, el, eg);
                failures++;
            }
            supcon_loss_free(loss);
        }
    supcon_tensor_free(tf);
    supcon_tensor_free(tg);
    supcon_tensor_free(tl);
    if (failures) fail_msg("%d of 6 variants wrong with logits 190 apart", failures);
}

/* Every feature identical at tau = 0.01: all logits equal 100; the loss is log(N - 1) times
 * tau/tau_b exactly, and the gradient is finite. */
static void test_identical_features(void **state) {
    (void)state;
    const int64_t b = 16, v = 2, d = 8, n = b * v * d;
    float *x = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    assert_true(x && g);
    for (int64_t i = 0; i < b * v; i++)
        for (int64_t j = 0; j < d; j++) x[i * d + j] = j == 0 ? 1.0f : 0.0f;
    supcon_loss *loss = make_loss(0.01, 0.01, REF_MODE_ALL, REF_DEN_ALL, REF_AGG_OUT);
    int64_t shape[3] = {b, v, d};
    supcon_tensor *tf = up(SUPCON_FLOAT32, 3, shape, x), *tg = up(SUPCON_FLOAT32, 3, shape, NULL);
    float got = NAN;
    assert_int_equal(supcon_loss_forward(loss, tf, NULL, NULL, &got), SUPCON_OK);
    assert_int_equal(supcon_loss_backward(loss, tg), SUPCON_OK);
    assert_int_equal(supcon_tensor_download(tg, g, sizeof(float) * (size_t)n), SUPCON_OK);
    double want = log((double)(b * v - 1));
    if (!(tu_rel_err(got, want, 1e-6) <= 1e-5)) fail_msg("identical features: loss %.9g, want %.9g", (double)got, want);
    assert_true(tu_all_finite_f(g, n));
    supcon_tensor_free(tf);
    supcon_tensor_free(tg);
    supcon_loss_free(loss);
    free(x), free(g);
}

static int setup(void **state) {
    (void)state;
    return tu_open_cpu_context(2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_hand_value),
        cmocka_unit_test(test_ref_fd_batch),
        cmocka_unit_test(test_ref_fd_pair),
        cmocka_unit_test(test_lib_vs_ref_variants),
        cmocka_unit_test(test_lib_vs_ref_large),
        cmocka_unit_test(test_lib_vs_ref_settings),
        cmocka_unit_test(test_lib_vs_ref_pair),
        cmocka_unit_test(test_stability),
        cmocka_unit_test(test_identical_features),
        cmocka_unit_test(test_far_apart_logits),
    };
    return cmocka_run_group_tests(tests, setup, teardown) ? 1 : 0;
}
