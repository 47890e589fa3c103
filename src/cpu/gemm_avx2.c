/* AVX2 + FMA micro-kernel, 6 x 16: 12 accumulators, two B vectors and one broadcast. */
#include "gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define MR 6

__attribute__((target("avx2,fma")))
static void sc_ukernel_6x16(int64_t kc, const float *a, const float *b, float *c, float *c_hi, int64_t ldc,
                            float alpha, float beta) {
    __m256 acc0[MR], acc1[MR];
    for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(b + p * 16), b1 = _mm256_loadu_ps(b + p * 16 + 8);
        const float *ap = a + p * MR;
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(ap + i);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc, *hi = c_hi + i * ldc;
        __m256 r0 = _mm256_mul_ps(va, acc0[i]), r1 = _mm256_mul_ps(va, acc1[i]);
        if (beta != 0.0f) {
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(hi), r1);
        }
        _mm256_storeu_ps(ci, r0);
        _mm256_storeu_ps(hi, r1);
    }
}

const sc_ukernel_desc sc_ukernel_avx2 = {MR, 16, sc_ukernel_6x16, "avx2", 0, 0, 0, 0, 0};
#else
const sc_ukernel_desc sc_ukernel_avx2 = {0, 0, 0, "none", 0, 0, 0, 0, 0};
#endif
