/* BatchNorm2d on the CPU: training and inference against a double reference (with the
 * running-statistics update), the reference's gradients against central differences,
 * PyTorch's running statistics, outputs and gradients over three steps, identical results
 * for 1 and 3 threads, and the one-value-per-channel error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_ops_util.h"

#define EPS 1e-5
#define MOMENTUM 0.1

/* ---- the reference, in double ---------------------------------------------------------- */

typedef struct bn_shape {
    int64_t n, c, hw;
} bn_shape;

#define AT(s, b, ch, i) ((((b) * (s)->c) + (ch)) * (s)->hw + (i))

static void ref_stats(const bn_shape *s, const double *x, int64_t ch, double *mean, double *var) {
    const double m = (double)(s->n * s->hw);
    double sum = 0.0, ss = 0.0;
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t i = 0; i < s->hw; i++) sum += x[AT(s, b, ch, i)];
    *mean = sum / m;
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t i = 0; i < s->hw; i++) ss += (x[AT(s, b, ch, i)] - *mean) * (x[AT(s, b, ch, i)] - *mean);
    *var = ss / m;
}

/* training: batch statistics, and the running update when rm/rv are given; inference: rm/rv */
static void ref_forward(const bn_shape *s, double *y, const double *x, const double *g, const double *bta,
                        double *rm, double *rv, int training) {
    for (int64_t ch = 0; ch < s->c; ch++) {
        double mean, var;
        if (training) {
            ref_stats(s, x, ch, &mean, &var);
            if (rm) {
                const double m = (double)(s->n * s->hw);
                rm[ch] = (1 - MOMENTUM) * rm[ch] + MOMENTUM * mean;
                rv[ch] = (1 - MOMENTUM) * rv[ch] + MOMENTUM * var * m / (m - 1);
            }
        } else {
            mean = rm[ch];
            var = rv[ch];
        }
        for (int64_t b = 0; b < s->n; b++)
            for (int64_t i = 0; i < s->hw; i++) {
                const int64_t k = AT(s, b, ch, i);
                y[k] = (x[k] - mean) / sqrt(var + EPS) * g[ch] + bta[ch];
            }
    }
}

/* dx, dg, db overwritten. */
static void ref_backward(const bn_shape *s, double *dx, double *dg, double *db, const double *dy, const double *x,
                         const double *g, const double *rm, const double *rv, int training) {
    const double m = (double)(s->n * s->hw);
    for (int64_t ch = 0; ch < s->c; ch++) {
        double mean, var;
        if (training)
            ref_stats(s, x, ch, &mean, &var);
        else
            mean = rm[ch], var = rv[ch];
        const double is = 1.0 / sqrt(var + EPS);
        double sdy = 0.0, sdyh = 0.0;
        for (int64_t b = 0; b < s->n; b++)
            for (int64_t i = 0; i < s->hw; i++) {
                const int64_t k = AT(s, b, ch, i);
                sdy += dy[k];
                sdyh += dy[k] * (x[k] - mean) * is;
            }
        db[ch] = sdy;
        dg[ch] = sdyh;
        for (int64_t b = 0; b < s->n; b++)
            for (int64_t i = 0; i < s->hw; i++) {
                const int64_t k = AT(s, b, ch, i);
                const double xh = (x[k] - mean) * is;
                dx[k] = training ? g[ch] * is * (dy[k] - sdy / m - xh * sdyh / m) : g[ch] * is * dy[k];
            }
    }
}

static const bn_shape shapes[] = {
    {1, 3, 7}, {4, 5, 9}, {3, 2, 1}, {7, 3, 1}, {2, 3, 1500}, {5, 16, 64}, {2, 1, 2},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

/* Everything the fast op writes for one shape, in one struct so that runs can be compared. */
typedef struct bn_run {
    float *y, *mean, *invstd, *rm, *rv, *dx, *dg, *db, *yi, *dxi, *dgi, *dbi;
    int64_t nbt;
} bn_run;

typedef struct bn_inputs {
    float *x, *g, *b, *dy, *rm0, *rv0, *dg0, *db0;
} bn_inputs;

static bn_inputs make_inputs(const bn_shape *s, uint64_t seed, double offset) {
    tu_rng r = tu_rng_seed(seed);
    const int64_t nx = s->n * s->c * s->hw;
    bn_inputs in = {to_floats(nx), to_floats(s->c), to_floats(s->c), to_floats(nx),
                    to_floats(s->c), to_floats(s->c), to_floats(s->c), to_floats(s->c)};
    for (int64_t k = 0; k < nx; k++) in.x[k] = (float)(offset + (1 + k % 3) * tu_normal(&r));
    to_fill(&r, in.g, s->c, 1.0);
    to_fill(&r, in.b, s->c, 1.0);
    to_fill(&r, in.dy, nx, 1.0);
    to_fill(&r, in.rm0, s->c, 1.0);
    for (int64_t ch = 0; ch < s->c; ch++) in.rv0[ch] = (float)(0.5 + tu_uniform(&r));
    to_fill(&r, in.dg0, s->c, 1.0);
    to_fill(&r, in.db0, s->c, 1.0);
    return in;
}

static void free_inputs(bn_inputs *in) {
    free(in->x), free(in->g), free(in->b), free(in->dy), free(in->rm0), free(in->rv0), free(in->dg0),
        free(in->db0);
}

static bn_run run_fast(void *st, const bn_shape *s, const bn_inputs *in) {
    const int64_t nx = s->n * s->c * s->hw, c = s->c;
    bn_run o = {to_floats(nx), to_floats(c), to_floats(c), to_floats(c), to_floats(c), to_floats(nx),
                to_floats(c), to_floats(c), to_floats(nx), to_floats(nx), to_floats(c), to_floats(c), 5};
    memcpy(o.rm, in->rm0, sizeof(float) * (size_t)c);
    memcpy(o.rv, in->rv0, sizeof(float) * (size_t)c);
    memcpy(o.dg, in->dg0, sizeof(float) * (size_t)c);
    memcpy(o.db, in->db0, sizeof(float) * (size_t)c);
    memcpy(o.dgi, in->dg0, sizeof(float) * (size_t)c);
    memcpy(o.dbi, in->db0, sizeof(float) * (size_t)c);
    assert_int_equal(sc_cpu_batchnorm_forward_train(st, o.y, o.mean, o.invstd, o.rm, o.rv, &o.nbt, in->x, in->g,
                                                    in->b, s->n, s->c, s->hw, MOMENTUM, EPS),
                     SUPCON_OK);
    assert_int_equal(sc_cpu_batchnorm_backward(st, o.dx, o.dg, o.db, in->dy, in->x, in->g, o.mean, o.invstd, s->n,
                                               s->c, s->hw, 1),
                     SUPCON_OK);
    /* inference from the starting running statistics, and its backward */
    float *mi = to_floats(c), *ii = to_floats(c);
    assert_int_equal(sc_cpu_batchnorm_forward_infer(st, o.yi, mi, ii, in->x, in->g, in->b, in->rm0, in->rv0, s->n,
                                                    s->c, s->hw, EPS),
                     SUPCON_OK);
    assert_int_equal(sc_cpu_batchnorm_backward(st, o.dxi, o.dgi, o.dbi, in->dy, in->x, in->g, mi, ii, s->n, s->c,
                                               s->hw, 0),
                     SUPCON_OK);
    free(mi), free(ii);
    return o;
}

static void free_run(bn_run *o) {
    free(o->y), free(o->mean), free(o->invstd), free(o->rm), free(o->rv), free(o->dx), free(o->dg), free(o->db);
    free(o->yi), free(o->dxi), free(o->dgi), free(o->dbi);
}

static void check_against_reference(const bn_shape *s, uint64_t seed, double offset, double tol) {
    void *st = to_state(2);
    assert_non_null(st);
    const int64_t nx = s->n * s->c * s->hw, c = s->c;
    bn_inputs in = make_inputs(s, seed, offset);
    bn_run o = run_fast(st, s, &in);
    double *x = to_widen(in.x, nx), *g = to_widen(in.g, c), *b = to_widen(in.b, c), *dy = to_widen(in.dy, nx);
    double *rm = to_widen(in.rm0, c), *rv = to_widen(in.rv0, c), *y = to_doubles(nx), *dx = to_doubles(nx);
    double *dg = to_doubles(c), *db = to_doubles(c), *mean = to_doubles(c), *invstd = to_doubles(c);
    for (int64_t ch = 0; ch < c; ch++) {
        double var;
        ref_stats(s, x, ch, &mean[ch], &var);
        invstd[ch] = 1.0 / sqrt(var + EPS);
    }
    ref_forward(s, y, x, g, b, rm, rv, 1);
    ref_backward(s, dx, dg, db, dy, x, g, NULL, NULL, 1);
    for (int64_t ch = 0; ch < c; ch++) dg[ch] += in.dg0[ch], db[ch] += in.db0[ch];
    assert_true(to_err(o.y, y, nx) < tol);
    assert_true(to_err(o.mean, mean, c) < tol);
    assert_true(to_err(o.invstd, invstd, c) < tol);
    assert_true(to_err(o.rm, rm, c) < tol);
    assert_true(to_err(o.rv, rv, c) < tol);
    assert_int_equal(o.nbt, 6);
    assert_true(to_err(o.dx, dx, nx) < tol);
    assert_true(to_err(o.dg, dg, c) < tol);
    assert_true(to_err(o.db, db, c) < tol);
    /* inference */
    double *rm0 = to_widen(in.rm0, c), *rv0 = to_widen(in.rv0, c);
    ref_forward(s, y, x, g, b, rm0, rv0, 0);
    ref_backward(s, dx, dg, db, dy, x, g, rm0, rv0, 0);
    for (int64_t ch = 0; ch < c; ch++) dg[ch] += in.dg0[ch], db[ch] += in.db0[ch];
    assert_true(to_err(o.yi, y, nx) < tol);
    assert_true(to_err(o.dxi, dx, nx) < tol);
    assert_true(to_err(o.dgi, dg, c) < tol);
    assert_true(to_err(o.dbi, db, c) < tol);
    free(x), free(g), free(b), free(dy), free(rm), free(rv), free(y), free(dx), free(dg), free(db), free(mean),
        free(invstd), free(rm0), free(rv0);
    free_run(&o);
    free_inputs(&in);
    to_close(st);
}

static void test_matches_reference(void **unused) {
    for (size_t i = 0; i < N_SHAPES; i++) check_against_reference(&shapes[i], 40 + i, 0.0, 2e-6);
}

/* Activations far from zero mean: the variance must not cancel. */
static void test_large_mean(void **unused) {
    const bn_shape s = {4, 3, 300};
    check_against_reference(&s, 77, 100.0, 2e-5);
}

typedef struct fd_ctx {
    const bn_shape *s;
    double *x, *g, *b, *proj, *y, *rm, *rv;
    int training;
} fd_ctx;

static double objective(fd_ctx *f) {
    ref_forward(f->s, f->y, f->x, f->g, f->b, f->rm, f->rv, f->training);
    double acc = 0.0;
    for (int64_t k = 0; k < f->s->n * f->s->c * f->s->hw; k++) acc += f->y[k] * f->proj[k];
    return acc;
}

static void test_reference_gradients_finite_differences(void **unused) {
    static const bn_shape fd_shapes[] = {{3, 2, 5}, {2, 3, 1}, {1, 2, 4}};
    for (size_t s = 0; s < sizeof fd_shapes / sizeof fd_shapes[0]; s++)
        for (int training = 0; training < 2; training++) {
            const bn_shape *sh = &fd_shapes[s];
            const int64_t nx = sh->n * sh->c * sh->hw, c = sh->c;
            tu_rng r = tu_rng_seed(5 + s);
            fd_ctx f = {sh, to_doubles(nx), to_doubles(c), to_doubles(c), to_doubles(nx), to_doubles(nx),
                        to_doubles(c), to_doubles(c), training};
            for (int64_t k = 0; k < nx; k++) f.x[k] = tu_normal(&r), f.proj[k] = tu_normal(&r);
            for (int64_t k = 0; k < c; k++)
                f.g[k] = tu_normal(&r), f.b[k] = tu_normal(&r), f.rm[k] = tu_normal(&r), f.rv[k] = 0.5 + tu_uniform(&r);
            double *dx = to_doubles(nx), *dg = to_doubles(c), *db = to_doubles(c);
            double *fx = to_doubles(nx), *fg = to_doubles(c), *fb = to_doubles(c);
            ref_backward(sh, dx, dg, db, f.proj, f.x, f.g, f.rm, f.rv, training);
            double *rm_keep = f.rm, *rv_keep = f.rv;
            if (training) f.rm = f.rv = NULL; /* no running update inside the differences */
            for (int64_t k = 0; k < nx; k++) TO_CENTRAL(objective(&f), f.x, k, 1e-5, fx[k]);
            for (int64_t k = 0; k < c; k++) TO_CENTRAL(objective(&f), f.g, k, 1e-5, fg[k]);
            for (int64_t k = 0; k < c; k++) TO_CENTRAL(objective(&f), f.b, k, 1e-5, fb[k]);
            assert_true(to_err_dd(dx, fx, nx) < 1e-6);
            assert_true(to_err_dd(dg, fg, c) < 1e-7);
            assert_true(to_err_dd(db, fb, c) < 1e-7);
            free(f.x), free(f.g), free(f.b), free(f.proj), free(f.y), free(rm_keep), free(rv_keep);
            free(dx), free(dg), free(db), free(fx), free(fg), free(fb);
        }
}

static void load(const tu_fixture *f, const char *key, float *out, int64_t n) {
    if (tu_fixture_floats(f, key, out, n) != n) fail_msg("fixture key %s: expected %lld values", key, (long long)n);
}

/* Relative to max(|want|, floor): outputs and gradients are O(1) sums whose small entries
 * come from cancellation, so they take floor 1; statistics floor 1e-3. */
static void expect_close(const float *got, const float *want, int64_t n, double floor_, double tol,
                         const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (!(tu_rel_err(got[i], want[i], floor_) < tol))
            fail_msg("%s[%lld] = %.9g, PyTorch %.9g", what, (long long)i, (double)got[i], (double)want[i]);
}

static void test_running_stats_match_pytorch(void **unused) {
    tu_fixture f;
    assert_int_equal(tu_fixture_load(&f, SUPCON_TEST_FIXTURES "/ops_bn.txt"), 0);
    int64_t dims[4];
    assert_int_equal(tu_fixture_ints(&f, "shape", dims, 4), 4);
    const int64_t n = dims[0], c = dims[1], hw = dims[2] * dims[3], nx = n * c * hw;
    void *st = to_state(2);
    float *g = to_floats(c), *b = to_floats(c), *rm = to_floats(c), *rv = to_floats(c), *mean = to_floats(c);
    float *invstd = to_floats(c), *x = to_floats(nx), *y = to_floats(nx), *want = to_floats(nx);
    float *dy = to_floats(nx), *dx = to_floats(nx), *dg = to_floats(c), *db = to_floats(c);
    load(&f, "gamma", g, c);
    load(&f, "beta", b, c);
    for (int64_t k = 0; k < c; k++) rm[k] = 0.0f, rv[k] = 1.0f; /* PyTorch's initial buffers */
    int64_t nbt = 0;
    char key[64];
    for (int step = 0; step < 3; step++) {
        snprintf(key, sizeof key, "x%d", step);
        load(&f, key, x, nx);
        assert_int_equal(sc_cpu_batchnorm_forward_train(st, y, mean, invstd, rm, rv, &nbt, x, g, b, n, c, hw,
                                                        MOMENTUM, EPS),
                         SUPCON_OK);
        snprintf(key, sizeof key, "running_mean%d", step);
        load(&f, key, want, c);
        expect_close(rm, want, c, 1e-3, 1e-6, key);
        snprintf(key, sizeof key, "running_var%d", step);
        load(&f, key, want, c);
        expect_close(rv, want, c, 1e-3, 1e-6, key);
        snprintf(key, sizeof key, "num_batches_tracked%d", step);
        assert_int_equal(nbt, tu_fixture_int(&f, key, -1));
    }
    load(&f, "y_last", want, nx);
    expect_close(y, want, nx, 1.0, 2e-6, "y_last");
    load(&f, "dy_last", dy, nx);
    assert_int_equal(sc_cpu_batchnorm_backward(st, dx, dg, db, dy, x, g, mean, invstd, n, c, hw, 1), SUPCON_OK);
    load(&f, "dx_last", want, nx);
    expect_close(dx, want, nx, 1.0, 2e-6, "dx_last");
    load(&f, "dgamma_last", want, c);
    expect_close(dg, want, c, 1.0, 2e-6, "dgamma_last");
    load(&f, "dbeta_last", want, c);
    expect_close(db, want, c, 1.0, 2e-6, "dbeta_last");
    load(&f, "x_eval", x, nx);
    assert_int_equal(sc_cpu_batchnorm_forward_infer(st, y, NULL, NULL, x, g, b, rm, rv, n, c, hw, EPS), SUPCON_OK);
    load(&f, "y_eval", want, nx);
    expect_close(y, want, nx, 1.0, 2e-6, "y_eval");
    free(g), free(b), free(rm), free(rv), free(mean), free(invstd), free(x), free(y), free(want), free(dy), free(dx),
        free(dg), free(db);
    to_close(st);
    tu_fixture_free(&f);
}

static int same_floats(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

static void test_thread_count_does_not_change_results(void **unused) {
    void *st1 = to_state(1), *st3 = to_state(3);
    for (size_t i = 0; i < N_SHAPES; i++) {
        const bn_shape *s = &shapes[i];
        const int64_t nx = s->n * s->c * s->hw, c = s->c;
        bn_inputs in = make_inputs(s, 300 + i, 1.0);
        bn_run a = run_fast(st1, s, &in), b = run_fast(st3, s, &in);
        assert_true(same_floats(a.y, b.y, nx) && same_floats(a.dx, b.dx, nx) && same_floats(a.yi, b.yi, nx));
        assert_true(same_floats(a.dxi, b.dxi, nx) && same_floats(a.rm, b.rm, c) && same_floats(a.rv, b.rv, c));
        assert_true(same_floats(a.dg, b.dg, c) && same_floats(a.db, b.db, c) && same_floats(a.invstd, b.invstd, c));
        free_run(&a);
        free_run(&b);
        free_inputs(&in);
    }
    to_close(st1);
    to_close(st3);
}

static void test_one_value_per_channel_is_an_error(void **unused) {
    void *st = to_state(1);
    float x[3] = {1, 2, 3}, y[3], g[3] = {1, 1, 1}, b[3] = {0}, m[3], is[3], rm[3] = {0}, rv[3] = {1, 1, 1};
    int64_t nbt = 0;
    assert_int_equal(sc_cpu_batchnorm_forward_train(st, y, m, is, rm, rv, &nbt, x, g, b, 1, 3, 1, MOMENTUM, EPS),
                     SUPCON_ERR_SHAPE);
    assert_non_null(strstr(to_msg(st), "more than 1 value"));
    assert_int_equal(nbt, 0);
    assert_true(rm[0] == 0.0f && rv[0] == 1.0f);
    /* inference is fine with one value */
    assert_int_equal(sc_cpu_batchnorm_forward_infer(st, y, NULL, NULL, x, g, b, rm, rv, 1, 3, 1, EPS), SUPCON_OK);
    to_close(st);
}

/* The fused ReLU passes NaN on, as PyTorch's relu (so the loss's check finds it): with and
 * without the residual, in inference (one element's NaN stays its own) and in training (the
 * NaN spoils its channel's statistics, so that whole channel is NaN, the other one not). */
static void test_fused_relu_passes_nan(void **unused) {
    void *st = to_state(1);
    float x[8] = {1, -2, NAN, 4, 5, -6, 7, 8}, res[8] = {0, 0, 0, 0, -9, 0, 0, 0};
    const float g[2] = {1, 1}, b[2] = {0, 0}, rm[2] = {0, 0}, rv[2] = {1, 1};
    float y[8], m[2], is[2];
    for (int with_res = 0; with_res < 2; with_res++) {
        assert_int_equal(sc_cpu_batchnorm_relu_forward_infer(st, y, NULL, NULL, x, g, b, rm, rv,
                                                             with_res ? res : NULL, 2, 2, 2, 0.0),
                         SUPCON_OK);
        for (int i = 0; i < 8; i++) {
            const float want = x[i] + (with_res ? res[i] : 0.0f);
            if (i == 2)
                assert_true(isnan(y[i]));
            else
                assert_true(y[i] == (want > 0.0f ? want : 0.0f));
        }
        assert_int_equal(sc_cpu_batchnorm_relu_forward_train(st, y, m, is, NULL, NULL, NULL, x, g, b,
                                                             with_res ? res : NULL, 2, 2, 2, MOMENTUM, EPS),
                         SUPCON_OK);
        /* (n, c, hw) = (2, 2, 2): channel 1 holds x[2..3] and x[6..7] */
        for (int i = 0; i < 8; i++) assert_true(isnan(y[i]) == ((i / 2) % 2 == 1));
    }
    to_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_large_mean),
        cmocka_unit_test(test_reference_gradients_finite_differences),
        cmocka_unit_test(test_running_stats_match_pytorch),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_one_value_per_channel_is_an_error),
        cmocka_unit_test(test_fused_relu_passes_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
