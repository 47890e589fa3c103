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

/* The depth of the driver's blocks: a packer is never asked for more than this. */
#define SC_GEMM_KC 256

/* An operand of sc_sgemm_ex: a stored matrix (pack NULL: p, ld, trans as in sc_sgemm), or a
 * packer that writes one micro-panel straight from wherever the values live (the
 * convolutions' implicit im2col). For A, a panel is rows [i0, i0 + len) of op(A), depth
 * [p0, p0 + kc), stored dst[p * r + i], rows len..r-1 zero; `rows` packs a row-major
 * block into that layout (the kernel's own transposing packer) or is NULL. For B, a panel
 * is columns [i0, i0 + len) of op(B), stored dst[p * r + j], columns len..r-1 zero. */
typedef void (*sc_gemm_pack_fn)(const void *ctx, float *dst, int64_t i0, int64_t len, int64_t p0, int64_t kc,
                                int r, void (*rows)(float *, const float *, int64_t, int64_t, int64_t));
struct sc_bdirect;
/* For B, optionally: describe the 32-column panel [j0, j0 + 32), depth [p0, p0 + kc), as
 * read in place (struct sc_bdirect, gemm_kernels.h; its off and mask arrays are the
 * caller's, SC_GEMM_KC long) and return 1, or return 0 and the panel is packed. Used where
 * the CPU's kernel reads B in place (AVX-512). */
typedef int (*sc_gemm_direct_fn)(const void *ctx, int64_t j0, int64_t p0, int64_t kc, struct sc_bdirect *out);

typedef struct sc_gemm_opnd {
    const float *p;
    int64_t ld;
    int trans;
    sc_gemm_pack_fn pack;
    const void *ctx;
    sc_gemm_direct_fn direct;
    int kc_unit; /* B: depth blocks are multiples of this (0: any) */
} sc_gemm_opnd;

/* Where C lives: element (i, j) at c + i * ldc + (j / seg) * seg_stride + j % seg, or
 * c + i * ldc + j when seg is 0. Columns in segments let a GEMM over the pixels of several
 * images write NCHW output directly. */
typedef struct sc_gemm_out {
    float *c;
    int64_t ldc, seg, seg_stride;
} sc_gemm_out;

/* C = alpha op(A) op(B) + beta C with either operand packed by a callback and C in
 * segments. Results do not depend on the number of workers. Without a vector kernel it
 * runs a portable one (a packer cannot feed the BLAS). */
void sc_sgemm_ex(sc_pool *pool, const sc_gemm_ws *ws, int64_t m, int64_t n, int64_t k, float alpha,
                 const sc_gemm_opnd *a, const sc_gemm_opnd *b, float beta, const sc_gemm_out *c);

/* C (m x n, row-major, ldc) = alpha * op(A) op(B) + beta * C, where op(A) is m x k and
 * op(B) is k x n; trans_a: A is stored k x m (lda), trans_b: B is stored n x k (ldb).
 * beta == 0 never reads C. ws must hold sc_gemm_ws_floats(sc_pool_size(pool)) floats. */
void sc_sgemm(sc_pool *pool, const sc_gemm_ws *ws, int trans_a, int trans_b, int64_t m, int64_t n,
              int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc);

#endif
