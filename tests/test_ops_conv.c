/* Conv2d on the CPU against a plain double-precision reference (awkward shapes: odd sizes,
 * strides 1-3, padding 0-3, 1x1/3x3/5x5/non-square kernels, batch 1, partial image chunks,
 * images read in place or packed, blocks of rows and columns, many channels),
 * the reference's gradients against central differences, PyTorch's own numbers, identical
 * results for 1 and 3 threads, and the workspace check. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "gemm.h"
#include "test_conv_ref.h"
#include "test_ops_util.h"

/* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w */
static const supcon_conv_desc shapes[] = {
    {1, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1},    /* batch 1, odd sizes */
    {3, 5, 9, 9, 7, 3, 3, 2, 2, 1, 1},    /* stride 2 */
    {2, 4, 6, 7, 5, 3, 3, 2, 2, 0, 0},    /* stride 2, no padding */
    {4, 6, 5, 5, 3, 1, 1, 1, 1, 0, 0},    /* 1x1, several images per chunk */
    {2, 6, 40, 33, 5, 1, 1, 1, 1, 0, 0},  /* 1x1 on the input itself (one image per chunk) */
    {2, 4, 9, 9, 8, 1, 1, 2, 2, 0, 0},    /* 1x1 stride 2: the shortcut */
    {3, 3, 34, 33, 4, 3, 3, 1, 1, 1, 1},  /* one image per chunk, im2col */
    {5, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1},  /* chunks of 3 then 2 images */
    {2, 2, 6, 8, 3, 2, 3, 1, 2, 1, 0},    /* non-square kernel, mixed strides */
    {1, 2, 4, 4, 3, 5, 5, 1, 1, 2, 2},    /* 5x5 over a 4x4 map */
    {5, 3, 3, 3, 4, 3, 3, 3, 3, 1, 1},    /* 1x1 output */
    {2, 1, 8, 8, 6, 3, 3, 1, 1, 1, 1},    /* one input channel (grey stem) */
    {2, 30, 5, 4, 3, 3, 3, 1, 1, 1, 1},   /* channel slices of 28 + 2 */
    {3, 23, 6, 5, 3, 5, 5, 2, 1, 2, 2},   /* 5x5: slices of 10 + 10 + 3, chunks of 3 images */
    {2, 260, 3, 3, 2, 1, 1, 2, 2, 0, 0},  /* 1x1 stride 2: slices of 256 + 4 */
    {3, 300, 2, 2, 4, 1, 1, 1, 1, 0, 0},  /* 1x1 direct over a chunk of images, 256 + 44 */
    {2, 120, 3, 3, 2, 3, 3, 1, 1, 1, 1},  /* filter-gradient slices of 113 + 7 channels */
    /* the GEMM reading the images in place (rows of 16 pixels) and its packed fallbacks */
    {3, 30, 16, 16, 13, 3, 3, 1, 1, 1, 1}, /* 16-wide rows, 13 output rows: a 12 + 1 edge */
    {5, 40, 9, 32, 20, 3, 3, 1, 1, 1, 1},  /* 32-wide rows, depth 360 = 256 + 104 */
    {5, 8, 33, 32, 7, 3, 3, 1, 1, 1, 1},   /* 5280 columns: two column blocks, the second mid-image */
    {2, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1}, /* many channels, as resnet's second stage */
    {2, 4, 12, 12, 600, 1, 1, 1, 1, 0, 0}, /* 600 output rows: blocks of 576 + 24 */
    {2, 8, 4, 4, 600, 3, 3, 1, 1, 1, 1},   /* narrow C: blocks of 144 rows */
    {3, 300, 4, 8, 20, 1, 1, 1, 1, 0, 0},  /* 1x1 on 32-pixel planes, depth 300 */
    {4, 7, 4, 4, 9, 3, 3, 1, 1, 1, 1},     /* 4x4 planes: panels across images */
    {3, 40, 8, 8, 32, 3, 3, 1, 1, 1, 1},   /* 8-wide rows read in place: two rows per half */
    {2, 300, 4, 4, 24, 3, 3, 1, 1, 1, 1},  /* 4-wide rows in place, depth 2700 in blocks */
    {2, 5, 6, 8, 8, 3, 3, 1, 1, 1, 1},     /* 8-wide, 6 rows: halves end mid-plane */
    {3, 6, 12, 4, 16, 3, 3, 1, 1, 1, 1},   /* 4-wide, 12 rows */
    {2, 6, 3, 8, 5, 3, 3, 1, 1, 1, 1},     /* 8-wide, 24-pixel planes: packed, not in place */
    {2, 5, 9, 8, 6, 3, 3, 1, 1, 0, 0},     /* backward data as a convolution with padding 2 */
    {2, 3, 10, 9, 4, 5, 5, 1, 1, 1, 1},    /* ... with a 5x5 kernel, padding 3 */
    {2, 3, 6, 6, 4, 3, 3, 1, 1, 3, 3},     /* padding beyond the kernel: the column path */
    {2, 64, 16, 16, 24, 3, 3, 2, 2, 1, 1}, /* stride 2 with many channels */
    {3, 10, 7, 32, 16, 3, 3, 1, 1, 1, 1},  /* filter gradient in place: 32-wide rows, 8 + 2 channels */
    {2, 5, 16, 16, 8, 3, 3, 1, 1, 1, 1},   /* ... 16-wide rows */
    {6, 10, 6, 32, 16, 3, 3, 2, 2, 1, 1},  /* filter gradient, stride 2, 32-wide rows: chunks of 4 + 2 images */
    {3, 9, 12, 16, 8, 3, 3, 2, 2, 1, 1},   /* ... 16-wide rows, two output rows a vector */
    {2, 4, 6, 16, 8, 3, 3, 2, 2, 1, 1},    /* ... 16-wide, 6 rows: the GEMM route */
    {2, 3, 13, 12, 4, 9, 9, 2, 3, 4, 2},   /* 9x9 kernel: backward data's weights without the tap table */
    {3, 6, 8, 8, 16, 3, 3, 2, 2, 1, 1},    /* stride 2 over 8x8: phases of 4-pixel rows read in place */
    {2, 200, 8, 8, 8, 1, 1, 2, 2, 0, 0},   /* 1x1 stride 2, 200 channels: phases packed from 4-pixel rows */
    /* the filter gradient's lane kernel (planes of whole vectors, 512 pixels or more) */
    {3, 20, 32, 32, 16, 1, 1, 1, 1, 0, 0},  /* 1x1 on the images themselves, a window per image, 6 x 3 + 2 rows */
    {2, 5, 48, 32, 8, 1, 1, 1, 1, 0, 0},    /* planes longer than a window */
    {8, 10, 16, 16, 16, 1, 1, 2, 2, 0, 0},  /* 1x1 stride 2 through the column matrix */
    {32, 120, 8, 8, 8, 3, 3, 2, 2, 1, 1},   /* 3x3 stride 2 over 8x8: column slices of 113 + 7 channels */
    {2, 3, 16, 16, 8, 5, 5, 1, 1, 2, 2},    /* 5x5 */
    {65, 3, 4, 4, 256, 3, 3, 1, 1, 1, 1},   /* short-row filter gradient, 32 blocks: chunks of 64 + 1 images */
    {17, 2, 8, 8, 256, 3, 3, 1, 1, 1, 1},   /* ... 8-wide rows: chunks of 16 + 1 */
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

/* One shape through the three passes; returns the worst relative error. Gradients are
 * checked with accumulate/+= on top of non-zero starting values. */
static double check_shape(void *st, const supcon_conv_desc *d, uint64_t seed) {
    conv_io io = conv_io_make(d, seed);
    const int64_t nx = io.nx, nw = io.nw, ny = io.ny;
    float *x = io.x, *w = io.w, *y = io.y, *dy = io.dy, *dx = io.dx, *dw = io.dw, *dx0 = io.dx0, *dw0 = io.dw0;
    double *xd = to_widen(x, nx), *wd = to_widen(w, nw), *dyd = to_widen(dy, ny);
    double *yr = to_doubles(ny), *dxr = to_doubles(nx), *dwr = to_doubles(nw);
    ref_forward(d, yr, xd, wd);
    ref_backward(d, dxr, dwr, dyd, xd, wd);

    /* a workspace that is not 64-byte aligned: the op aligns inside the bytes it asked for */
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, d);
    char *ws_mem = malloc(wsb + 4);
    void *ws = ws_mem + 4;
    assert_int_equal(sc_cpu_conv2d_forward(st, d, y, x, w, ws, wsb), SUPCON_OK);
    double worst = to_err(y, yr, ny);

    /* overwrite: start from garbage */
    for (int64_t i = 0; i < nx; i++) dx[i] = NAN;
    assert_int_equal(sc_cpu_conv2d_backward_data(st, d, dx, dy, w, 0, ws, wsb), SUPCON_OK);
    double e = to_err(dx, dxr, nx);
    worst = e > worst ? e : worst;

    /* accumulate: dx0 + dL/dx */
    memcpy(dx, dx0, sizeof(float) * (size_t)nx);
    assert_int_equal(sc_cpu_conv2d_backward_data(st, d, dx, dy, w, 1, ws, wsb), SUPCON_OK);
    for (int64_t i = 0; i < nx; i++) dxr[i] += dx0[i];
    e = to_err(dx, dxr, nx);
    worst = e > worst ? e : worst;

    memcpy(dw, dw0, sizeof(float) * (size_t)nw);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, d, dw, dy, x, ws, wsb), SUPCON_OK);
    for (int64_t i = 0; i < nw; i++) dwr[i] += dw0[i];
    e = to_err(dw, dwr, nw);
    worst = e > worst ? e : worst;

    free(ws_mem);
    conv_io_free(&io);
    free(xd), free(wd), free(dyd), free(yr), free(dxr), free(dwr);
    return worst;
}

static void test_matches_reference(void **unused) {
    void *st = to_state(2);
    assert_non_null(st);
    for (size_t s = 0; s < N_SHAPES; s++) {
        const supcon_conv_desc *d = &shapes[s];
        const double e = check_shape(st, d, 100 + s);
        if (!(e < 2e-6))
            fail_msg("shape %zu (n %lld, %lld->%lld, %lldx%lld, k %lldx%lld, s %lld/%lld, p %lld/%lld): error %g",
                     s, (long long)d->n, (long long)d->c_in, (long long)d->c_out, (long long)d->h,
                     (long long)d->w, (long long)d->kh, (long long)d->kw, (long long)d->stride_h,
                     (long long)d->stride_w, (long long)d->pad_h, (long long)d->pad_w, e);
    }
    to_close(st);
}

/* Without a vector kernel (SUPCON_CPU_GEMM=blas) the convolutions run the GEMM's portable
 * kernel on packed panels: the same shapes must still match. */
static void test_matches_reference_portable_kernel(void **unused) {
    setenv("SUPCON_CPU_GEMM", "blas", 1);
    void *st = to_state(3);
    assert_non_null(st);
    for (size_t s = 0; s < N_SHAPES; s++) {
        const double e = check_shape(st, &shapes[s], 300 + s);
        if (!(e < 2e-6)) fail_msg("shape %zu: error %g", s, e);
    }
    to_close(st);
    unsetenv("SUPCON_CPU_GEMM");
}

/* CPUs with AVX2 but not AVX-512 run the GEMM's 6 x 16 kernel on packed panels (16-column
 * tiles, halves of 8): forced here where the CPU has it. */
static void test_matches_reference_avx2_kernel(void **unused) {
    setenv("SUPCON_CPU_GEMM", "avx2", 1);
    void *st = to_state(2);
    assert_non_null(st);
    const int have = strcmp(sc_gemm_kernel_name(), "avx2") == 0;
    for (size_t s = 0; have && s < N_SHAPES; s++) {
        const double e = check_shape(st, &shapes[s], 500 + s);
        if (!(e < 2e-6)) fail_msg("shape %zu: error %g", s, e);
    }
    to_close(st);
    unsetenv("SUPCON_CPU_GEMM");
    if (!have) skip(); /* no AVX2 on this CPU: reported as skipped, not passed */
}

/* L = sum y . proj, so dL/dy = proj. */
static double ref_objective(const supcon_conv_desc *d, const double *x, const double *w, const double *proj,
                            double *ybuf) {
    ref_forward(d, ybuf, x, w);
    double s = 0.0;
    for (int64_t i = 0; i < y_size(d); i++) s += ybuf[i] * proj[i];
    return s;
}

static void test_reference_gradients_finite_differences(void **unused) {
    static const supcon_conv_desc fd_shapes[] = {
        {2, 3, 5, 6, 2, 3, 3, 2, 2, 1, 1},
        {1, 2, 4, 5, 3, 2, 3, 1, 2, 1, 0},
        {2, 3, 3, 4, 2, 1, 1, 1, 1, 0, 0},
    };
    for (size_t s = 0; s < sizeof fd_shapes / sizeof fd_shapes[0]; s++) {
        const supcon_conv_desc *d = &fd_shapes[s];
        tu_rng r = tu_rng_seed(7 + s);
        const int64_t nx = x_size(d), nw = w_size(d), ny = y_size(d);
        double *x = to_doubles(nx), *w = to_doubles(nw), *proj = to_doubles(ny), *ybuf = to_doubles(ny);
        double *dx = to_doubles(nx), *dw = to_doubles(nw), *fx = to_doubles(nx), *fw = to_doubles(nw);
        for (int64_t i = 0; i < nx; i++) x[i] = tu_normal(&r);
        for (int64_t i = 0; i < nw; i++) w[i] = tu_normal(&r);
        for (int64_t i = 0; i < ny; i++) proj[i] = tu_normal(&r);
        ref_backward(d, dx, dw, proj, x, w);
        for (int64_t i = 0; i < nx; i++) TO_CENTRAL(ref_objective(d, x, w, proj, ybuf), x, i, 1e-5, fx[i]);
        for (int64_t i = 0; i < nw; i++) TO_CENTRAL(ref_objective(d, x, w, proj, ybuf), w, i, 1e-5, fw[i]);
        assert_true(to_err_dd(dx, fx, nx) < 1e-8);
        assert_true(to_err_dd(dw, fw, nw) < 1e-8);
        free(x), free(w), free(proj), free(ybuf), free(dx), free(dw), free(fx), free(fw);
    }
}

static void test_matches_pytorch(void **unused) {
    tu_fixture f;
    assert_int_equal(tu_fixture_load(&f, SUPCON_TEST_FIXTURES "/ops_conv.txt"), 0);
    void *st = to_state(2);
    assert_non_null(st);
    for (int c = 0; c < 2; c++) {
        char key[32];
        int64_t dv[11];
        snprintf(key, sizeof key, "c%d_desc", c);
        assert_int_equal(tu_fixture_ints(&f, key, dv, 11), 11);
        const supcon_conv_desc d = {dv[0], dv[1], dv[2], dv[3], dv[4], dv[5], dv[6], dv[7], dv[8], dv[9], dv[10]};
        const int64_t nx = x_size(&d), nw = w_size(&d), ny = y_size(&d);
        float *x = to_floats(nx), *w = to_floats(nw), *dy = to_floats(ny), *y = to_floats(ny);
        float *dx = to_floats(nx), *dw = to_floats(nw);
        double *yt = to_doubles(ny), *dxt = to_doubles(nx), *dwt = to_doubles(nw);
#define LOAD(fn, name, buf, count)                                                                 \
    snprintf(key, sizeof key, "c%d_" name, c);                                                     \
    assert_int_equal(fn(&f, key, buf, count), count)
        LOAD(tu_fixture_floats, "x", x, nx);
        LOAD(tu_fixture_floats, "w", w, nw);
        LOAD(tu_fixture_floats, "dy", dy, ny);
        LOAD(tu_fixture_doubles, "y", yt, ny);
        LOAD(tu_fixture_doubles, "dx", dxt, nx);
        LOAD(tu_fixture_doubles, "dw", dwt, nw);
#undef LOAD
        const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, &d);
        void *ws = malloc(wsb);
        assert_int_equal(sc_cpu_conv2d_forward(st, &d, y, x, w, ws, wsb), SUPCON_OK);
        assert_int_equal(sc_cpu_conv2d_backward_data(st, &d, dx, dy, w, 0, ws, wsb), SUPCON_OK);
        assert_int_equal(sc_cpu_conv2d_backward_filter(st, &d, dw, dy, x, ws, wsb), SUPCON_OK);
        assert_true(to_err(y, yt, ny) < 1e-6);
        assert_true(to_err(dx, dxt, nx) < 1e-6);
        assert_true(to_err(dw, dwt, nw) < 1e-6);
        free(ws);
        free(x), free(w), free(dy), free(y), free(dx), free(dw), free(yt), free(dxt), free(dwt);
    }
    to_close(st);
    tu_fixture_free(&f);
}

/* The same bits for 1 and 3 worker threads, every pass. */
static void test_thread_count_does_not_change_results(void **unused) {
    void *st1 = to_state(1), *st3 = to_state(3);
    assert_non_null(st1);
    assert_non_null(st3);
    for (size_t s = 0; s < N_SHAPES; s++) {
        const supcon_conv_desc *d = &shapes[s];
        tu_rng r = tu_rng_seed(900 + s);
        const int64_t nx = x_size(d), nw = w_size(d), ny = y_size(d);
        float *x = to_floats(nx), *w = to_floats(nw), *dy = to_floats(ny);
        float *out[2][3];
        to_fill(&r, x, nx, 1.0);
        to_fill(&r, w, nw, 1.0);
        to_fill(&r, dy, ny, 1.0);
        const size_t wsb = sc_cpu_conv2d_workspace_bytes(st1, d);
        void *ws = malloc(wsb);
        for (int t = 0; t < 2; t++) {
            void *st = t ? st3 : st1;
            out[t][0] = to_floats(ny), out[t][1] = to_floats(nx), out[t][2] = to_floats(nw);
            assert_int_equal(sc_cpu_conv2d_forward(st, d, out[t][0], x, w, ws, wsb), SUPCON_OK);
            assert_int_equal(sc_cpu_conv2d_backward_data(st, d, out[t][1], dy, w, 0, ws, wsb), SUPCON_OK);
            assert_int_equal(sc_cpu_conv2d_backward_filter(st, d, out[t][2], dy, x, ws, wsb), SUPCON_OK);
        }
        assert_memory_equal(out[0][0], out[1][0], sizeof(float) * (size_t)ny);
        assert_memory_equal(out[0][1], out[1][1], sizeof(float) * (size_t)nx);
        assert_memory_equal(out[0][2], out[1][2], sizeof(float) * (size_t)nw);
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 3; k++) free(out[t][k]);
        free(ws), free(x), free(w), free(dy);
    }
    to_close(st1);
    to_close(st3);
}

static void test_workspace_too_small_is_an_error(void **unused) {
    void *st = to_state(1);
    const supcon_conv_desc d = {2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1};
    const size_t wsb = sc_cpu_conv2d_workspace_bytes(st, &d);
    float *x = to_floats(x_size(&d)), *w = to_floats(w_size(&d)), *y = to_floats(y_size(&d));
    void *ws = malloc(wsb);
    assert_int_equal(sc_cpu_conv2d_forward(st, &d, y, x, w, ws, wsb - 1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(to_msg(st), "workspace"));
    assert_int_equal(sc_cpu_conv2d_backward_data(st, &d, x, y, w, 0, NULL, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(sc_cpu_conv2d_backward_filter(st, &d, w, y, x, ws, 16), SUPCON_ERR_INVALID_ARGUMENT);
    /* the table carries the same functions */
    assert_ptr_equal(sc_cpu_backend()->conv2d_forward, sc_cpu_conv2d_forward);
    assert_int_equal(sc_cpu_backend()->abi, SUPCON_BACKEND_ABI);
    free(ws), free(x), free(w), free(y);
    to_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_matches_reference_portable_kernel),
        cmocka_unit_test(test_matches_reference_avx2_kernel),
        cmocka_unit_test(test_reference_gradients_finite_differences),
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_workspace_too_small_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
