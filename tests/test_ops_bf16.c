/* The CPU's conv2d under SUPCON_PRECISION_BF16 (src/cpu/conv_bf16.c): the rounding itself,
 * a one-product convolution whose every bit is known, and the three passes over shapes that
 * take each of conv.c's kernels against a double reference computed from the rounded
 * operands, within half a bfloat16 step of it, with every stored result a bfloat16 value.
 * Also: a two-channel, two-pixel case whose every bit is known, results independent of the
 * thread count, a float32-sized workspace refused, NaN carried through. */
#include <float.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bf16.h"
#include "test_bf16_case.h"
#include "test_conv_ref.h"
#include "test_ops_util.h"

static uint32_t bits_of(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---- the rounding ----------------------------------------------------------------------- */

static void test_rounding(void **unused) {
    /* bfloat16 keeps 8 significant bits: the step above 1 is 2^-7 */
    assert_true(sc_bf16_round(1.0f) == 1.0f);
    assert_true(sc_bf16_round(1.0f + 0x1p-8f) == 1.0f);                   /* tie: to the even 1 */
    assert_true(sc_bf16_round(1.0f + 0x1p-7f + 0x1p-8f) == 1.0f + 0x1p-6f); /* tie: to the even side */
    assert_true(sc_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f); /* past the tie: up */
    assert_true(sc_bf16_round(1.0f + 0x1p-9f) == 1.0f);
    assert_true(sc_bf16_round(-(1.0f + 0x1p-8f + 0x1p-20f)) == -(1.0f + 0x1p-7f));
    assert_true(sc_bf16_round(3.14159265f) == 3.140625f);
    assert_true(sc_bf16_round(0.0f) == 0.0f);
    assert_int_equal(bits_of(sc_bf16_round(-0.0f)), 0x80000000u);
    assert_true(sc_bf16_round(INFINITY) == INFINITY);
    assert_true(sc_bf16_round(-INFINITY) == -INFINITY);
    assert_true(sc_bf16_round(FLT_MAX) == INFINITY);           /* past bfloat16's largest */
    assert_true(sc_bf16_round(float_of(0x7f7f0000u)) == float_of(0x7f7f0000u)); /* its largest */
    assert_true(isnan(sc_bf16_round(NAN)));
    assert_true(isnan(sc_bf16_round(float_of(0x7f800001u)))); /* a NaN that rounding would make infinite */
    assert_true(isnan(sc_bf16_round(float_of(0xffffffffu))));  /* one that would carry into the sign */
    assert_true(sc_bf16_round(float_of(0x00008000u)) == 0.0f); /* subnormal tie: to the even 0 */
    assert_int_equal(bits_of(sc_bf16_round(float_of(0x00018000u))), 0x00020000u);
    /* every result is a bfloat16 value and rounding it again changes nothing */
    tu_rng r = tu_rng_seed(7);
    for (int i = 0; i < 100000; i++) {
        const float v = (float)(tu_normal(&r) * pow(2.0, (double)(i % 60) - 30.0));
        const float b = sc_bf16_round(v);
        assert_int_equal(bits_of(b) & 0xffffu, 0u);
        assert_true(sc_bf16_round(b) == b);
        assert_true(fabs((double)b - v) <= 0x1p-8 * fabs((double)v));
    }
}

/* ---- one product, every bit known ------------------------------------------------------- */

/* x = 1 + 2^-8 + 2^-12 rounds up to 1 + 2^-7 and w = 1 - 2^-10 rounds up to 1, so the
 * convolution is 1 + 2^-7 exactly; in float32 it is about 1.00317, which would round to 1. */
static void test_one_product(void **unused) {
    void *bf = to_state_prec(1, SUPCON_PRECISION_BF16), *fp = to_state(1);
    assert_non_null(bf);
    assert_non_null(fp);
    const supcon_conv_desc d = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const float a = 1.0f + 0x1p-8f + 0x1p-12f, b = 1.0f - 0x1p-10f, want = 1.0f + 0x1p-7f;
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(bf, &d);
    void *ws = malloc(wsb);
    float y = NAN, dx = NAN, dw = 0.5f;
    assert_int_equal(sc_cpu_conv2d_forward(bf, &d, &y, &a, &b, ws, wsb), SUPCON_OK);
    assert_true(y == want);
    assert_int_equal(sc_cpu_conv2d_backward_data(bf, &d, &dx, &a, &b, 0, ws, wsb), SUPCON_OK);
    assert_true(dx == want);
    dx = 0.25f; /* accumulate: the rounded gradient is what is added */
    assert_int_equal(sc_cpu_conv2d_backward_data(bf, &d, &dx, &a, &b, 1, ws, wsb), SUPCON_OK);
    assert_true(dx == 0.25f + want);
    assert_int_equal(sc_cpu_conv2d_backward_filter(bf, &d, &dw, &a, &b, ws, wsb), SUPCON_OK);
    assert_true(dw == 0.5f + want);
    free(ws);
    /* the float32 state does not round */
    const size_t fwsb = sc_cpu_conv2d_workspace_bytes(fp, &d);
    ws = malloc(fwsb);
    assert_int_equal(sc_cpu_conv2d_forward(fp, &d, &y, &a, &b, ws, fwsb), SUPCON_OK);
    assert_true(y == a * b);
    free(ws);
    to_close(bf);
    to_close(fp);
}

/* The shared two-by-two case (test_bf16_case.h); tests/test_cuda_ops.c runs it through the
 * GPU's transposing casts. */
static void test_two_by_two(void **unused) {
    void *st = to_state_prec(2, SUPCON_PRECISION_BF16);
    assert_non_null(st);
    const bf16_case c = bf16_two_by_two_case();
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, &c.d);
    void *ws = malloc(wsb);
    float y[4], dx[4], dw[4] = {0, 0, 0, 0};
    assert_int_equal(sc_cpu_conv2d_forward(st, &c.d, y, c.x, c.w, ws, wsb), SUPCON_OK);
    assert_int_equal(sc_cpu_conv2d_backward_data(st, &c.d, dx, c.dy, c.w, 0, ws, wsb), SUPCON_OK);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, &c.d, dw, c.dy, c.x, ws, wsb), SUPCON_OK);
    for (int i = 0; i < 4; i++) {
        assert_true(y[i] == c.want_y[i]);
        assert_true(dx[i] == c.want_dx[i]);
        assert_true(dw[i] == c.want_dw[i]);
    }
    free(ws);
    to_close(st);
}

/* ---- the three passes against the reference ----------------------------------------------- */

/* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w: one per kernel of conv.c */
static const supcon_conv_desc shapes[] = {
    {1, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1},     /* odd sizes: im2col filter gradient */
    {3, 5, 9, 9, 7, 3, 3, 2, 2, 1, 1},     /* stride 2: backward data by phases */
    {2, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1}, /* 3x3 over rows of 32: the AVX-512 filter gradient */
    {4, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1},   /* rows of 8: the short-row filter gradient */
    {2, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1}, /* 3x3 stride 2 over rows of 32 */
    {3, 20, 32, 32, 16, 1, 1, 1, 1, 0, 0}, /* 1x1 on whole planes: the lane kernel */
    {8, 10, 16, 16, 16, 1, 1, 2, 2, 0, 0}, /* 1x1 stride 2 */
    {2, 3, 16, 16, 8, 5, 5, 1, 1, 2, 2},   /* 5x5 */
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static float *rounded_copy(const float *x, int64_t n) {
    float *r = to_floats(n);
    for (int64_t i = 0; i < n; i++) r[i] = sc_bf16_round(x[i]);
    return r;
}

static double *abs_widen(const float *x, int64_t n) {
    double *d = to_widen(x, n);
    for (int64_t i = 0; i < n; i++) d[i] = fabs(d[i]);
    return d;
}

/* got[i] = base[i] + round(sum) where the sum of the rounded products is ref[i] with absolute
 * terms summing to mag[i]: half a bfloat16 step of |ref| from rounding the result, plus
 * float32 summation (mag 2^-20 is far above it for these depths) and the float32 addition
 * of base. With base NULL the result must also be a bfloat16 value. */
static void check_close(const char *what, size_t shape, const float *got, const double *ref, const double *mag,
                        const float *base, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const double b = base ? base[i] : 0.0, want = b + ref[i];
        const double bound = 0x1p-8 * fabs(ref[i]) + 0x1p-20 * mag[i] + 0x1p-23 * (fabs(b) + fabs(ref[i]));
        if (!(fabs((double)got[i] - want) <= bound))
            fail_msg("shape %zu %s[%lld]: %.9g, the rounded reference %.9g (bound %.3g)", shape, what, (long long)i,
                     (double)got[i], want, bound);
        if (!base && (bits_of(got[i]) & 0xffffu))
            fail_msg("shape %zu %s[%lld]: %.9g is not a bfloat16 value", shape, what, (long long)i, (double)got[i]);
    }
}

static void check_shape(void *st, size_t s, uint64_t seed) {
    const supcon_conv_desc *d = &shapes[s];
    conv_io io = conv_io_make(d, seed);
    const int64_t nx = io.nx, nw = io.nw, ny = io.ny;
    float *x = io.x, *w = io.w, *y = io.y, *dy = io.dy, *dx = io.dx, *dw = io.dw, *dx0 = io.dx0, *dw0 = io.dw0;
    float *x0 = to_floats(nx), *w0 = to_floats(nw), *dy0 = to_floats(ny);
    memcpy(x0, x, sizeof(float) * (size_t)nx), memcpy(w0, w, sizeof(float) * (size_t)nw);
    memcpy(dy0, dy, sizeof(float) * (size_t)ny);
    /* the reference from the rounded operands, and from their magnitudes */
    float *xr = rounded_copy(x, nx), *wr = rounded_copy(w, nw), *dyr = rounded_copy(dy, ny);
    double *xd = to_widen(xr, nx), *wd = to_widen(wr, nw), *dyd = to_widen(dyr, ny);
    double *xa = abs_widen(xr, nx), *wa = abs_widen(wr, nw), *dya = abs_widen(dyr, ny);
    double *yref = to_doubles(ny), *dxref = to_doubles(nx), *dwref = to_doubles(nw);
    double *ymag = to_doubles(ny), *dxmag = to_doubles(nx), *dwmag = to_doubles(nw);
    ref_forward(d, yref, xd, wd);
    ref_backward(d, dxref, dwref, dyd, xd, wd);
    ref_forward(d, ymag, xa, wa);
    ref_backward(d, dxmag, dwmag, dya, xa, wa);

    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, d);
    char *ws_mem = malloc(wsb + 4);
    void *ws = ws_mem + 4; /* not 64-byte aligned: the op aligns inside what it asked for */
    assert_int_equal(sc_cpu_conv2d_forward(st, d, y, x, w, ws, wsb), SUPCON_OK);
    check_close("y", s, y, yref, ymag, NULL, ny);
    for (int64_t i = 0; i < nx; i++) dx[i] = NAN; /* overwritten, not read */
    assert_int_equal(sc_cpu_conv2d_backward_data(st, d, dx, dy, w, 0, ws, wsb), SUPCON_OK);
    check_close("dx", s, dx, dxref, dxmag, NULL, nx);
    memcpy(dx, dx0, sizeof(float) * (size_t)nx);
    assert_int_equal(sc_cpu_conv2d_backward_data(st, d, dx, dy, w, 1, ws, wsb), SUPCON_OK);
    check_close("dx +=", s, dx, dxref, dxmag, dx0, nx);
    memcpy(dw, dw0, sizeof(float) * (size_t)nw);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, d, dw, dy, x, ws, wsb), SUPCON_OK);
    check_close("dw +=", s, dw, dwref, dwmag, dw0, nw);
    /* the caller's operands are left as they were (rounded copies were used) */
    assert_memory_equal(x, x0, sizeof(float) * (size_t)nx);
    assert_memory_equal(w, w0, sizeof(float) * (size_t)nw);
    assert_memory_equal(dy, dy0, sizeof(float) * (size_t)ny);

    free(ws_mem);
    conv_io_free(&io);
    free(x0), free(w0), free(dy0), free(xr), free(wr), free(dyr);
    free(xd), free(wd), free(dyd), free(xa), free(wa), free(dya);
    free(yref), free(dxref), free(dwref), free(ymag), free(dxmag), free(dwmag);
}

static void test_matches_rounded_reference(void **unused) {
    void *st = to_state_prec(2, SUPCON_PRECISION_BF16);
    assert_non_null(st);
    for (size_t s = 0; s < N_SHAPES; s++) check_shape(st, s, 700 + s);
    to_close(st);
}

/* ---- threads, workspace, NaN ------------------------------------------------------------- */

static void run_passes(void *st, const supcon_conv_desc *d, float *y, float *dx, float *dw, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    const int64_t nx = x_size(d), nw = w_size(d), ny = y_size(d);
    float *x = to_floats(nx), *w = to_floats(nw), *dy = to_floats(ny);
    to_fill(&r, x, nx, 1.0), to_fill(&r, w, nw, 0.5), to_fill(&r, dy, ny, 1.0);
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, d);
    void *ws = malloc(wsb);
    memset(dw, 0, sizeof(float) * (size_t)nw);
    assert_int_equal(sc_cpu_conv2d_forward(st, d, y, x, w, ws, wsb), SUPCON_OK);
    assert_int_equal(sc_cpu_conv2d_backward_data(st, d, dx, dy, w, 0, ws, wsb), SUPCON_OK);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, d, dw, dy, x, ws, wsb), SUPCON_OK);
    free(ws), free(x), free(w), free(dy);
}

static void test_thread_count_does_not_change_results(void **unused) {
    void *one = to_state_prec(1, SUPCON_PRECISION_BF16), *three = to_state_prec(3, SUPCON_PRECISION_BF16);
    assert_non_null(one);
    assert_non_null(three);
    const supcon_conv_desc d = {5, 24, 40, 40, 24, 3, 3, 1, 1, 1, 1}; /* 192 000 floats: rounded in 12 tasks */
    const int64_t nx = x_size(&d), nw = w_size(&d), ny = y_size(&d);
    float *y1 = to_floats(ny), *dx1 = to_floats(nx), *dw1 = to_floats(nw);
    float *y3 = to_floats(ny), *dx3 = to_floats(nx), *dw3 = to_floats(nw);
    run_passes(one, &d, y1, dx1, dw1, 11);
    run_passes(three, &d, y3, dx3, dw3, 11);
    assert_memory_equal(y1, y3, sizeof(float) * (size_t)ny);
    assert_memory_equal(dx1, dx3, sizeof(float) * (size_t)nx);
    assert_memory_equal(dw1, dw3, sizeof(float) * (size_t)nw);
    free(y1), free(dx1), free(dw1), free(y3), free(dx3), free(dw3);
    to_close(one);
    to_close(three);
}

/* The rounded copies need room past float32's workspace: a float32-sized one is an error that
 * names the precision, and nothing is written. */
static void test_float32_workspace_is_too_small(void **unused) {
    void *st = to_state_prec(1, SUPCON_PRECISION_BF16), *fp = to_state(1);
    assert_non_null(st);
    assert_non_null(fp);
    const supcon_conv_desc d = {1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1}; /* x, y and w: 144 floats each */
    const size_t small = sc_cpu_conv2d_workspace_bytes(fp, &d), need = sc_cpu_conv2d_workspace_bytes(st, &d);
    assert_true(need > small);
    void *ws = malloc(need);
    float x[144] = {0}, w[144] = {0}, y[144], dx[144], dw[144];
    for (int i = 0; i < 144; i++) y[i] = dx[i] = dw[i] = 7.0f;
    assert_int_equal(sc_cpu_conv2d_forward(st, &d, y, x, w, ws, small), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(to_msg(st), "bfloat16"));
    assert_int_equal(sc_cpu_conv2d_backward_data(st, &d, dx, y, w, 0, ws, need - 1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, &d, dw, y, x, NULL, need), SUPCON_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 144; i++) assert_true(y[i] == 7.0f && dx[i] == 7.0f && dw[i] == 7.0f);
    free(ws);
    to_close(st);
    to_close(fp);
}

/* A NaN in x reaches the outputs it touches as NaN (the core's checks then find it), and no
 * other output. */
static void test_nan_is_carried(void **unused) {
    void *st = to_state_prec(1, SUPCON_PRECISION_BF16);
    assert_non_null(st);
    const supcon_conv_desc d = {1, 1, 4, 4, 1, 1, 1, 1, 1, 0, 0};
    float x[16], w = 2.0f, y[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    x[5] = NAN;
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, &d);
    void *ws = malloc(wsb);
    assert_int_equal(sc_cpu_conv2d_forward(st, &d, y, x, &w, ws, wsb), SUPCON_OK);
    for (int i = 0; i < 16; i++) {
        if (i == 5)
            assert_true(isnan(y[i]));
        else
            assert_true(y[i] == 2.0f * (float)i);
    }
    free(ws);
    to_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_one_product),
        cmocka_unit_test(test_two_by_two),
        cmocka_unit_test(test_matches_rounded_reference),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_float32_workspace_is_too_small),
        cmocka_unit_test(test_nan_is_carried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
