/* The smaller CPU layers: ReLU, residual add (+ReLU), accumulation, global average pool,
 * Linear, L2 normalisation and softmax cross-entropy with top-1/top-5. Each against a double
 * reference, its gradients against central differences, PyTorch where it has numbers of its
 * own (ops_head.txt), 1 vs 3 threads, and the label range check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_ops_util.h"

static void *st2; /* two workers, shared by the tests of this file */

static int setup(void **unused) {
    st2 = to_state(2);
    return st2 ? 0 : -1;
}

static int teardown(void **unused) {
    to_close(st2);
    return 0;
}

/* ---- element-wise --------------------------------------------------------------------- */

static void test_eltwise(void **unused) {
    const int64_t n = 100003; /* several pool chunks and an odd tail */
    tu_rng r = tu_rng_seed(1);
    float *a = to_floats(n), *b = to_floats(n), *y = to_floats(n), *t = to_floats(n), *y3 = to_floats(n);
    to_fill(&r, a, n, 1.0);
    to_fill(&r, b, n, 1.0);
    a[5] = 0.0f; /* ReLU at exactly zero: output 0, no gradient */
    a[6] = NAN;  /* ReLU passes NaN on, as PyTorch's (so the loss's check finds it) */
    void *st3 = to_state(3);

    assert_int_equal(sc_cpu_relu_forward(st2, y, a, n), SUPCON_OK);
    assert_true(isnan(y[6]));
    for (int64_t i = 0; i < n; i++) assert_true(i == 6 || y[i] == (a[i] > 0 ? a[i] : 0.0f));
    /* backward: dy = b, gradient where the output is positive */
    assert_int_equal(sc_cpu_relu_backward(st2, t, b, y, n), SUPCON_OK);
    /* as PyTorch's threshold_backward (y <= 0 ? 0 : dy): the gradient passes a NaN output */
    for (int64_t i = 0; i < n; i++) assert_true(t[i] == (a[i] > 0 || i == 6 ? b[i] : 0.0f));
    assert_int_equal(sc_cpu_relu_backward(st3, y3, b, y, n), SUPCON_OK);
    assert_memory_equal(t, y3, sizeof(float) * (size_t)n);
    /* in place */
    memcpy(t, a, sizeof(float) * (size_t)n);
    assert_int_equal(sc_cpu_relu_forward(st2, t, t, n), SUPCON_OK);
    assert_memory_equal(t, y, sizeof(float) * (size_t)n);

    assert_int_equal(sc_cpu_add_forward(st2, y, a, b, n), SUPCON_OK);
    for (int64_t i = 0; i < n; i++) assert_true(i == 6 || y[i] == (float)((double)a[i] + b[i]));
    assert_int_equal(sc_cpu_add_relu_forward(st3, y3, a, b, n), SUPCON_OK);
    assert_true(isnan(y3[6]));
    for (int64_t i = 0; i < n; i++) assert_true(i == 6 || y3[i] == (y[i] > 0 ? y[i] : 0.0f));
    memcpy(t, a, sizeof(float) * (size_t)n);
    assert_int_equal(sc_cpu_add_relu_forward(st2, t, t, b, n), SUPCON_OK); /* y == a */
    assert_memory_equal(t, y3, sizeof(float) * (size_t)n);

    /* the add's backward: both branches get dy; where they meet again, accumulate */
    memcpy(t, a, sizeof(float) * (size_t)n);
    assert_int_equal(sc_cpu_accumulate(st2, t, b, n), SUPCON_OK);
    assert_memory_equal(t, y, sizeof(float) * (size_t)n);
    assert_int_equal(sc_cpu_relu_forward(st2, y, a, 0), SUPCON_OK); /* empty is fine */
    to_close(st3);
    free(a), free(b), free(y), free(t), free(y3);
}

static double relu_obj(const double *x, const double *proj, int64_t n) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += (x[k] > 0 ? x[k] : 0) * proj[k];
    return s;
}

/* ReLU's gradient against differences of max(x, 0), away from the kink. */
static void test_relu_finite_differences(void **unused) {
    const int64_t n = 64;
    tu_rng r = tu_rng_seed(2);
    double x[64], proj[64], fd[64];
    for (int64_t i = 0; i < n; i++) {
        x[i] = tu_normal(&r);
        if (fabs(x[i]) < 1e-3) x[i] = 0.5;
        proj[i] = tu_normal(&r);
    }
    for (int64_t i = 0; i < n; i++) TO_CENTRAL(relu_obj(x, proj, n), x, i, 1e-6, fd[i]);
    float xf[64], yf[64], pf[64], dx[64];
    for (int64_t i = 0; i < n; i++) xf[i] = (float)x[i], pf[i] = (float)proj[i];
    assert_int_equal(sc_cpu_relu_forward(st2, yf, xf, n), SUPCON_OK);
    assert_int_equal(sc_cpu_relu_backward(st2, dx, pf, yf, n), SUPCON_OK);
    assert_true(to_err(dx, fd, n) < 1e-6);
}

/* ---- global average pool ----------------------------------------------------------------- */

/* 3 planes of 4 values, each mean times its projection */
static double gap_obj(const double *x, const double *proj) {
    double s = 0;
    for (int p = 0; p < 3; p++) {
        double m = 0;
        for (int i = 0; i < 4; i++) m += x[p * 4 + i];
        s += m / 4 * proj[p];
    }
    return s;
}

static void test_avgpool(void **unused) {
    static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 16}, {5, 7, 9}, {3, 70, 1024}};
    void *st3 = to_state(3);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2], nx = n * c * hw;
        tu_rng r = tu_rng_seed(10 + s);
        float *x = to_floats(nx), *y = to_floats(n * c), *dy = to_floats(n * c), *dx = to_floats(nx);
        float *dx3 = to_floats(nx), *y3 = to_floats(n * c);
        double *yr = to_doubles(n * c), *dxr = to_doubles(nx);
        to_fill(&r, x, nx, 1.0);
        to_fill(&r, dy, n * c, 1.0);
        for (int64_t p = 0; p < n * c; p++) {
            double acc = 0;
            for (int64_t i = 0; i < hw; i++) acc += x[p * hw + i];
            yr[p] = acc / (double)hw;
            for (int64_t i = 0; i < hw; i++) dxr[p * hw + i] = (double)dy[p] / (double)hw;
        }
        assert_int_equal(sc_cpu_avgpool_forward(st2, y, x, n, c, hw), SUPCON_OK);
        assert_true(to_err(y, yr, n * c) < 1e-6);
        assert_int_equal(sc_cpu_avgpool_backward(st2, dx, dy, n, c, hw, 0), SUPCON_OK);
        assert_true(to_err(dx, dxr, nx) < 1e-6);
        /* threads */
        assert_int_equal(sc_cpu_avgpool_forward(st3, y3, x, n, c, hw), SUPCON_OK);
        assert_memory_equal(y, y3, sizeof(float) * (size_t)(n * c));
        /* accumulate: dx3 = x + dy/hw */
        memcpy(dx3, x, sizeof(float) * (size_t)nx);
        assert_int_equal(sc_cpu_avgpool_backward(st3, dx3, dy, n, c, hw, 1), SUPCON_OK);
        for (int64_t i = 0; i < nx; i++) dxr[i] += x[i];
        assert_true(to_err(dx3, dxr, nx) < 1e-6);
        free(x), free(y), free(dy), free(dx), free(dx3), free(y3), free(yr), free(dxr);
    }
    /* the reference's gradient by differences: the mean is linear, one shape suffices */
    double xd[12], proj[3], fd[12];
    tu_rng r = tu_rng_seed(3);
    for (int i = 0; i < 12; i++) xd[i] = tu_normal(&r);
    for (int i = 0; i < 3; i++) proj[i] = tu_normal(&r);
    for (int i = 0; i < 12; i++) TO_CENTRAL(gap_obj(xd, proj), xd, i, 1e-6, fd[i]);
    for (int i = 0; i < 12; i++) assert_true(fabs(fd[i] - proj[i / 4] / 4) < 1e-8);
    to_close(st3);
}

/* ---- Linear --------------------------------------------------------------------------- */

static void ref_linear(double *y, const double *x, const double *w, const double *b, int64_t n, int64_t in,
                       int64_t out) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t k = 0; k < in; k++) acc += x[i * in + k] * w[o * in + k];
            y[i * out + o] = acc;
        }
}

/* overwrite dx, dw, db */
static void ref_linear_backward(double *dx, double *dw, double *db, const double *dy, const double *x,
                                const double *w, int64_t n, int64_t in, int64_t out) {
    memset(dx, 0, sizeof(double) * (size_t)(n * in));
    memset(dw, 0, sizeof(double) * (size_t)(out * in));
    memset(db, 0, sizeof(double) * (size_t)out);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            const double g = dy[i * out + o];
            db[o] += g;
            for (int64_t k = 0; k < in; k++) {
                dx[i * in + k] += g * w[o * in + k];
                dw[o * in + k] += g * x[i * in + k];
            }
        }
}

static void test_linear(void **unused) {
    static const int64_t shapes[][3] = {{1, 3, 2}, {7, 13, 5}, {33, 70, 129}, {64, 512, 10}, {5, 1, 1}};
    void *st1 = to_state(1), *st3 = to_state(3);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        tu_rng r = tu_rng_seed(20 + s);
        float *x = to_floats(n * in), *w = to_floats(out * in), *b = to_floats(out), *dy = to_floats(n * out);
        float *y = to_floats(n * out), *dx = to_floats(n * in), *dw = to_floats(out * in), *db = to_floats(out);
        float *dw0 = to_floats(out * in), *db0 = to_floats(out);
        to_fill(&r, x, n * in, 1.0);
        to_fill(&r, w, out * in, 0.3);
        to_fill(&r, b, out, 1.0);
        to_fill(&r, dy, n * out, 1.0);
        to_fill(&r, dw0, out * in, 1.0);
        to_fill(&r, db0, out, 1.0);
        double *xd = to_widen(x, n * in), *wd = to_widen(w, out * in), *bd = to_widen(b, out);
        double *dyd = to_widen(dy, n * out), *yr = to_doubles(n * out), *dxr = to_doubles(n * in);
        double *dwr = to_doubles(out * in), *dbr = to_doubles(out);
        ref_linear(yr, xd, wd, bd, n, in, out);
        ref_linear_backward(dxr, dwr, dbr, dyd, xd, wd, n, in, out);
        for (int64_t i = 0; i < out * in; i++) dwr[i] += dw0[i];
        for (int64_t i = 0; i < out; i++) dbr[i] += db0[i];
        for (int t = 0; t < 3; t++) {
            void *st = t == 0 ? st1 : t == 1 ? st2 : st3;
            memcpy(dw, dw0, sizeof(float) * (size_t)(out * in));
            memcpy(db, db0, sizeof(float) * (size_t)out);
            for (int64_t i = 0; i < n * out; i++) y[i] = NAN; /* overwritten, never read */
            assert_int_equal(sc_cpu_linear_forward(st, y, x, w, b, n, in, out), SUPCON_OK);
            assert_int_equal(sc_cpu_linear_backward(st, dx, dw, db, dy, x, w, n, in, out), SUPCON_OK);
            assert_true(to_err(y, yr, n * out) < 2e-6);
            assert_true(to_err(dx, dxr, n * in) < 2e-6);
            assert_true(to_err(dw, dwr, out * in) < 2e-6);
            assert_true(to_err(db, dbr, out) < 2e-6);
            static float y_first[64 * 512], dx_first[64 * 512], dw_first[512 * 129];
            if (t == 0) {
                memcpy(y_first, y, sizeof(float) * (size_t)(n * out));
                memcpy(dx_first, dx, sizeof(float) * (size_t)(n * in));
                memcpy(dw_first, dw, sizeof(float) * (size_t)(out * in));
            } else {
                assert_memory_equal(y_first, y, sizeof(float) * (size_t)(n * out));
                assert_memory_equal(dx_first, dx, sizeof(float) * (size_t)(n * in));
                assert_memory_equal(dw_first, dw, sizeof(float) * (size_t)(out * in));
            }
        }
        /* no bias, and each gradient alone */
        ref_linear(yr, xd, wd, NULL, n, in, out);
        assert_int_equal(sc_cpu_linear_forward(st2, y, x, w, NULL, n, in, out), SUPCON_OK);
        assert_true(to_err(y, yr, n * out) < 2e-6);
        memcpy(db, db0, sizeof(float) * (size_t)out);
        assert_int_equal(sc_cpu_linear_backward(st2, NULL, NULL, db, dy, x, w, n, in, out), SUPCON_OK);
        assert_true(to_err(db, dbr, out) < 2e-6);
        assert_int_equal(sc_cpu_linear_backward(st2, dx, NULL, NULL, dy, x, w, n, in, out), SUPCON_OK);
        assert_true(to_err(dx, dxr, n * in) < 2e-6);
        free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(dw0), free(db0);
        free(xd), free(wd), free(bd), free(dyd), free(yr), free(dxr), free(dwr), free(dbr);
    }
    to_close(st1);
    to_close(st3);
}

static double linear_obj(double *y, const double *x, const double *w, const double *b, const double *proj, int64_t n,
                         int64_t in, int64_t out) {
    ref_linear(y, x, w, b, n, in, out);
    double s = 0;
    for (int64_t i = 0; i < n * out; i++) s += y[i] * proj[i];
    return s;
}

static void test_linear_reference_finite_differences(void **unused) {
    enum { N = 3, IN = 5, OUT = 4 };
    tu_rng r = tu_rng_seed(4);
    double x[N * IN], w[OUT * IN], b[OUT], proj[N * OUT], y[N * OUT];
    double dx[N * IN], dw[OUT * IN], db[OUT], fx[N * IN], fw[OUT * IN], fb[OUT];
    for (int i = 0; i < N * IN; i++) x[i] = tu_normal(&r);
    for (int i = 0; i < OUT * IN; i++) w[i] = tu_normal(&r);
    for (int i = 0; i < OUT; i++) b[i] = tu_normal(&r);
    for (int i = 0; i < N * OUT; i++) proj[i] = tu_normal(&r);
    ref_linear_backward(dx, dw, db, proj, x, w, N, IN, OUT);
    for (int i = 0; i < N * IN; i++) TO_CENTRAL(linear_obj(y, x, w, b, proj, N, IN, OUT), x, i, 1e-6, fx[i]);
    for (int i = 0; i < OUT * IN; i++) TO_CENTRAL(linear_obj(y, x, w, b, proj, N, IN, OUT), w, i, 1e-6, fw[i]);
    for (int i = 0; i < OUT; i++) TO_CENTRAL(linear_obj(y, x, w, b, proj, N, IN, OUT), b, i, 1e-6, fb[i]);
    assert_true(to_err_dd(dx, fx, N * IN) < 1e-8);
    assert_true(to_err_dd(dw, fw, OUT * IN) < 1e-8);
    assert_true(to_err_dd(db, fb, OUT) < 1e-8);
}

/* ---- L2 normalisation ------------------------------------------------------------------- */

static void ref_l2(double *y, const double *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t k = 0; k < d; k++) ss += x[i * d + k] * x[i * d + k];
        const double den = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
        for (int64_t k = 0; k < d; k++) y[i * d + k] = x[i * d + k] / den;
    }
}

static double l2_obj(double *y, const double *x, const double *proj, int64_t n, int64_t d) {
    ref_l2(y, x, n, d);
    double s = 0;
    for (int64_t i = 0; i < n * d; i++) s += y[i] * proj[i];
    return s;
}

static void test_l2norm(void **unused) {
    enum { N = 6, D = 17 };
    tu_rng r = tu_rng_seed(5);
    double x[N * D], proj[N * D], y[N * D], fd[N * D];
    float xf[N * D], pf[N * D], yf[N * D], norms[N], dx[N * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)(tu_normal(&r) * (1 + i / D)), proj[i] = (float)tu_normal(&r);
    for (int k = 0; k < D; k++) x[3 * D + k] = 0.0; /* a zero row: y = 0, dx = dy / 1e-12 */
    for (int i = 0; i < N * D; i++) xf[i] = (float)x[i], pf[i] = (float)proj[i];
    for (int i = 0; i < N * D; i++)
        if (i / D != 3) TO_CENTRAL(l2_obj(y, x, proj, N, D), x, i, 1e-6, fd[i]);
    for (int k = 0; k < D; k++) fd[3 * D + k] = proj[3 * D + k] / 1e-12;
    ref_l2(y, x, N, D);
    assert_int_equal(sc_cpu_l2norm_forward(st2, yf, norms, xf, N, D), SUPCON_OK);
    assert_true(to_err(yf, y, N * D) < 1e-6);
    assert_true(norms[3] == 0.0f);
    assert_int_equal(sc_cpu_l2norm_backward(st2, dx, pf, xf, norms, N, D), SUPCON_OK);
    /* row by row: the zero row's gradient is 1e12 times larger than the rest */
    for (int i = 0; i < N; i++) assert_true(to_err(dx + i * D, fd + i * D, D) < 1e-6);
}

static void test_linear_l2norm_match_pytorch(void **unused) {
    tu_fixture f;
    assert_int_equal(tu_fixture_load(&f, SUPCON_TEST_FIXTURES "/ops_head.txt"), 0);
    int64_t dims[3] = {0, 0, 0};
    assert_int_equal(tu_fixture_ints(&f, "linear_dims", dims, 3), 3);
    const int64_t n = dims[0], in = dims[1], out = dims[2];
    float *x = to_floats(n * in), *w = to_floats(out * in), *b = to_floats(out), *dz = to_floats(n * out);
    float *y = to_floats(n * out), *z = to_floats(n * out), *norms = to_floats(n), *dy = to_floats(n * out);
    float *dx = to_floats(n * in), *dw = to_floats(out * in), *db = to_floats(out);
    double *want = to_doubles(n * in > out * in ? n * in : out * in);
    assert_int_equal(tu_fixture_floats(&f, "x", x, n * in), n * in);
    assert_int_equal(tu_fixture_floats(&f, "w", w, out * in), out * in);
    assert_int_equal(tu_fixture_floats(&f, "b", b, out), out);
    assert_int_equal(tu_fixture_floats(&f, "dz", dz, n * out), n * out);
    assert_int_equal(sc_cpu_linear_forward(st2, y, x, w, b, n, in, out), SUPCON_OK);
    assert_int_equal(tu_fixture_doubles(&f, "y", want, n * out), n * out);
    assert_true(to_err(y, want, n * out) < 1e-6);
    assert_int_equal(sc_cpu_l2norm_forward(st2, z, norms, y, n, out), SUPCON_OK);
    assert_int_equal(tu_fixture_doubles(&f, "z", want, n * out), n * out);
    assert_true(to_err(z, want, n * out) < 1e-6);
    assert_int_equal(sc_cpu_l2norm_backward(st2, dy, dz, y, norms, n, out), SUPCON_OK);
    assert_int_equal(sc_cpu_linear_backward(st2, dx, dw, db, dy, x, w, n, in, out), SUPCON_OK);
    assert_int_equal(tu_fixture_doubles(&f, "dx", want, n * in), n * in);
    assert_true(to_err(dx, want, n * in) < 1e-5);
    assert_int_equal(tu_fixture_doubles(&f, "dw", want, out * in), out * in);
    assert_true(to_err(dw, want, out * in) < 1e-5);
    assert_int_equal(tu_fixture_doubles(&f, "db", want, out), out);
    assert_true(to_err(db, want, out) < 1e-5);
    free(x), free(w), free(b), free(dz), free(y), free(z), free(norms), free(dy), free(dx), free(dw), free(db),
        free(want);
    tu_fixture_free(&f);
}

/* ---- softmax cross-entropy ------------------------------------------------------------- */

static double ref_xent(const double *z, const int64_t *labels, int64_t n, int64_t k, double *dz) {
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = z[i * k], s = 0;
        for (int64_t c = 0; c < k; c++) m = z[i * k + c] > m ? z[i * k + c] : m;
        for (int64_t c = 0; c < k; c++) s += exp(z[i * k + c] - m);
        total += m + log(s) - z[i * k + labels[i]];
        if (dz)
            for (int64_t c = 0; c < k; c++) dz[i * k + c] = (exp(z[i * k + c] - m) / s - (c == labels[i])) / (double)n;
    }
    return total / (double)n;
}

/* The label is in the top t when fewer than t logits are strictly larger. */
static int64_t ref_topk(const float *z, const int64_t *labels, int64_t n, int64_t k, int64_t t) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t above = 0;
        for (int64_t c = 0; c < k; c++) above += z[i * k + c] > z[i * k + labels[i]];
        count += above < t;
    }
    return count;
}

static void test_xent(void **unused) {
    static const int64_t shapes[][2] = {{1, 1}, {1, 3}, {9, 10}, {33, 100}, {4, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n = shapes[s][0], k = shapes[s][1];
        tu_rng r = tu_rng_seed(50 + s);
        float *z = to_floats(n * k), *p = to_floats(n * k), *dz = to_floats(n * k);
        int64_t *labels = calloc((size_t)n, sizeof *labels);
        to_fill(&r, z, n * k, 3.0);
        for (int64_t i = 0; i < n; i++) labels[i] = tu_randint(&r, k);
        if (k >= 5) z[1] = z[labels[0]]; /* a tie with the label */
        double *zd = to_widen(z, n * k), *dzr = to_doubles(n * k);
        const double want = ref_xent(zd, labels, n, k, dzr);
        double loss = -1;
        int64_t t1 = -1, t5 = -1;
        assert_int_equal(sc_cpu_xent_forward(st2, &loss, &t1, &t5, p, z, labels, n, k), SUPCON_OK);
        assert_true(tu_rel_err(loss, want, 1e-12) < 1e-12);
        assert_int_equal(t1, ref_topk(z, labels, n, k, 1));
        assert_int_equal(t5, ref_topk(z, labels, n, k, 5));
        assert_int_equal(sc_cpu_xent_backward(st2, dz, p, labels, n, k, 1.0f), SUPCON_OK);
        assert_true(n * k == 1 ? fabs(dz[0]) < 1e-7 : to_err(dz, dzr, n * k) < 1e-6);
        /* in place, scaled by dloss */
        assert_int_equal(sc_cpu_xent_backward(st2, p, p, labels, n, k, 0.5f), SUPCON_OK);
        for (int64_t i = 0; i < n * k; i++) assert_true(fabs(p[i] - 0.5 * dz[i]) <= 1e-7);
        /* no outputs wanted but the loss */
        assert_int_equal(sc_cpu_xent_forward(st2, &loss, NULL, NULL, NULL, z, labels, n, k), SUPCON_OK);
        free(z), free(p), free(dz), free(labels), free(zd), free(dzr);
    }
}

static void test_xent_reference_finite_differences(void **unused) {
    enum { N = 4, K = 6 };
    tu_rng r = tu_rng_seed(6);
    double z[N * K], dz[N * K], fd[N * K];
    int64_t labels[N] = {0, 5, 2, 2};
    for (int i = 0; i < N * K; i++) z[i] = 2 * tu_normal(&r);
    ref_xent(z, labels, N, K, dz);
    for (int i = 0; i < N * K; i++) TO_CENTRAL(ref_xent(z, labels, N, K, NULL), z, i, 1e-6, fd[i]);
    assert_true(to_err_dd(dz, fd, N * K) < 1e-8);
}

static void test_xent_matches_pytorch(void **unused) {
    tu_fixture f;
    assert_int_equal(tu_fixture_load(&f, SUPCON_TEST_FIXTURES "/ops_head.txt"), 0);
    int64_t dims[2] = {0, 0};
    assert_int_equal(tu_fixture_ints(&f, "xent_dims", dims, 2), 2);
    const int64_t n = dims[0], k = dims[1];
    float *z = to_floats(n * k), *p = to_floats(n * k);
    double *want = to_doubles(n * k);
    int64_t *labels = calloc((size_t)n, sizeof *labels);
    assert_int_equal(tu_fixture_floats(&f, "logits", z, n * k), n * k);
    assert_int_equal(tu_fixture_ints(&f, "labels", labels, n), n);
    double loss;
    int64_t t1, t5;
    assert_int_equal(sc_cpu_xent_forward(st2, &loss, &t1, &t5, p, z, labels, n, k), SUPCON_OK);
    assert_true(tu_rel_err(loss, tu_fixture_double(&f, "loss", NAN), 1e-12) < 1e-7);
    assert_int_equal(t1, tu_fixture_int(&f, "top1", -1));
    assert_int_equal(t5, tu_fixture_int(&f, "top5", -1));
    assert_int_equal(sc_cpu_xent_backward(st2, p, p, labels, n, k, 1.0f), SUPCON_OK);
    assert_int_equal(tu_fixture_doubles(&f, "dlogits", want, n * k), n * k);
    assert_true(to_err(p, want, n * k) < 1e-6);
    free(z), free(p), free(want), free(labels);
    tu_fixture_free(&f);
}

static void test_xent_label_out_of_range(void **unused) {
    float z[3 * 4] = {0}, p[3 * 4];
    int64_t bad_high[3] = {0, 3, 4}, bad_low[3] = {-1, 0, 0};
    double loss = 123.0;
    int64_t t1 = 7, t5 = 7;
    assert_int_equal(sc_cpu_xent_forward(st2, &loss, &t1, &t5, p, z, bad_high, 3, 4), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(to_msg(st2), "label 4 of row 2"));
    assert_true(loss == 123.0 && t1 == 7 && t5 == 7); /* nothing written */
    assert_int_equal(sc_cpu_xent_forward(st2, &loss, NULL, NULL, NULL, z, bad_low, 3, 4), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(to_msg(st2), "row 0"));
    assert_int_equal(sc_cpu_xent_backward(st2, p, z, bad_high, 3, 4, 1.0f), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(to_msg(st2), "[0, 4)"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eltwise),
        cmocka_unit_test(test_relu_finite_differences),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_reference_finite_differences),
        cmocka_unit_test(test_l2norm),
        cmocka_unit_test(test_linear_l2norm_match_pytorch),
        cmocka_unit_test(test_xent),
        cmocka_unit_test(test_xent_reference_finite_differences),
        cmocka_unit_test(test_xent_matches_pytorch),
        cmocka_unit_test(test_xent_label_out_of_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
