/* Single-precision GEMM of our own, threaded on the context's pool: packed panels and
 * register-blocked micro-kernels for AVX-512 and AVX2, picked at run time from the CPU's
 * features; OpenBLAS on other CPUs. We do not rely on the BLAS on x86: a generic OpenBLAS
 * build falls back to SSE3 kernels on CPUs it does not know (it did on this project's
 * Xeons), and its own threads would compete with the pool. */
#ifndef SUPCON_CPU_GEMM_H
#define SUPCON_CPU_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

/* Reusable packing buffers for one pool; sizes depend only on the blocking and the number
 * of workers, so they are allocated once. */
typedef struct sc_gemm_ws {
    float *mem;
    size_t floats;
} sc_gemm_ws;

/* Floats sc_sgemm needs in its workspace for `workers` threads. */
size_t sc_gemm_ws_floats(int workers);

/* Name of the micro-kernel this CPU gets ("avx512", "avx2", or "blas"). */
const char *sc_gemm_kernel_name(void);

/* C (m x n, row-major, ldc) = alpha * op(A) op(B) + beta * C, where op(A) is m x k and
 * op(B) is k x n; trans_a: A is stored k x m (lda), trans_b: B is stored n x k (ldb).
 * beta == 0 never reads C. ws must hold sc_gemm_ws_floats(sc_pool_size(pool)) floats. */
void sc_sgemm(sc_pool *pool, const sc_gemm_ws *ws, int trans_a, int trans_b, int64_t m, int64_t n,
              int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc);

#endif
