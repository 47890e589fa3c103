/* sc_sgemm against a plain double-precision product: every transpose, edge sizes that do not
 * fill a micro-tile or a cache block, alpha/beta, beta = 0 over NaN, and the BLAS path. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gemm.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* Relative error in norm of sc_sgemm against the double reference for one case. */
static double run_case(sc_pool *pool, const sc_gemm_ws *ws, int ta, int tb, int64_t m, int64_t n, int64_t k,
                       float alpha, float beta, unsigned seed) {
    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 5; /* padded strides */
    float *a = malloc(sizeof(float) * (size_t)((ta ? k : m) * lda));
    float *b = malloc(sizeof(float) * (size_t)((tb ? n : k) * ldb));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc));
    double *ref = malloc(sizeof(double) * (size_t)(m * n));
    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = frand(&seed);
    for (int64_t i = 0; i < (tb ? n : k) * ldb; i++) b[i] = frand(&seed);
    for (int64_t i = 0; i < m * ldc; i++) c[i] = beta == 0.0f ? NAN : frand(&seed);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            ref[i * n + j] = alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j]);
        }
    const float pad = c[ldc - 1]; /* a column past n must stay untouched */
    sc_sgemm(pool, ws, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double err = 0, norm = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double d = c[i * ldc + j] - ref[i * n + j];
            err += d * d;
            norm += ref[i * n + j] * ref[i * n + j];
        }
    int pad_ok = isnan(pad) ? isnan(c[ldc - 1]) : c[ldc - 1] == pad;
    free(a);
    free(b);
    free(c);
    free(ref);
    if (!pad_ok) return INFINITY;
    return norm > 0 ? sqrt(err / norm) : sqrt(err);
}

static void check_all_shapes(int threads) {
    sc_pool *pool = sc_pool_create(threads);
    assert_non_null(pool);
    sc_gemm_ws ws = {NULL, sc_gemm_ws_floats(sc_pool_size(pool))};
    ws.mem = malloc(ws.floats * sizeof(float));
    assert_non_null(ws.mem);
    static const int64_t shapes[][3] = {{1, 1, 1},   {5, 7, 3},    {12, 32, 256}, {13, 33, 257},
                                        {37, 53, 19}, {145, 70, 300}, {300, 129, 64}, {6, 4100, 9}};
    unsigned seed = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const float beta = (s % 2) ? 0.0f : 0.5f;
                double e = run_case(pool, &ws, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.75f, beta, seed++);
                if (!(e < 1e-5))
                    fail_msg("m=%lld n=%lld k=%lld ta=%d tb=%d beta=%g: relative error %g",
                             (long long)shapes[s][0], (long long)shapes[s][1], (long long)shapes[s][2], ta, tb,
                             (double)beta, e);
            }
    free(ws.mem);
    sc_pool_destroy(pool);
}

static void test_vector_kernel_one_thread(void **st) { check_all_shapes(1); }
static void test_vector_kernel_three_threads(void **st) { check_all_shapes(3); }

static void test_blas_path(void **st) {
    setenv("SUPCON_CPU_GEMM", "blas", 1);
    assert_string_equal(sc_gemm_kernel_name(), "blas");
    check_all_shapes(2);
    unsetenv("SUPCON_CPU_GEMM");
}

/* The AVX2 kernel (6 x 16), which CPUs without AVX-512 run: forced where it is available. */
static void test_avx2_kernel(void **st) {
    setenv("SUPCON_CPU_GEMM", "avx2", 1);
    const int have = strcmp(sc_gemm_kernel_name(), "avx2") == 0;
    if (have) check_all_shapes(2);
    unsetenv("SUPCON_CPU_GEMM");
    if (!have) skip(); /* no AVX2 on this CPU: reported as skipped, not passed */
}

static void test_k_zero_scales_c(void **st) {
    sc_pool *pool = sc_pool_create(2);
    sc_gemm_ws ws = {malloc(sc_gemm_ws_floats(2) * sizeof(float)), sc_gemm_ws_floats(2)};
    float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {0}, b[1] = {0};
    sc_sgemm(pool, &ws, 0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, c, 3);
    for (int i = 0; i < 6; i++) assert_float_equal(c[i], 0.5f * (float)(i + 1), 0.0f);
    free(ws.mem);
    sc_pool_destroy(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_kernel_one_thread),
        cmocka_unit_test(test_vector_kernel_three_threads),
        cmocka_unit_test(test_blas_path),
        cmocka_unit_test(test_avx2_kernel),
        cmocka_unit_test(test_k_zero_scales_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
