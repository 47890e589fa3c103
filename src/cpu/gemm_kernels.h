/* Micro-kernels: C (mr x nr tile, row stride ldc) = alpha * A_panel B_panel + beta * C, with
 * A packed k-major in mr-row panels and B packed k-major in nr-column panels. beta == 0
 * never reads C. Each kernel is compiled for its instruction set only (target attributes),
 * and chosen at run time. */
#ifndef SUPCON_CPU_GEMM_KERNELS_H
#define SUPCON_CPU_GEMM_KERNELS_H

#include <stdint.h>

#define SC_MR_MAX 12
#define SC_NR_MAX 32

typedef void (*sc_ukernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                              float beta);

/* Packs one panel of A stored m x k (row-major, lda): dst[p * mr + i] = a[i * lda + p] for
 * i < rows, 0 for rows <= i < mr, p < kc. NULL: the driver's scalar loop. */
typedef void (*sc_pack_a_fn)(float *dst, const float *a, int64_t lda, int64_t rows, int64_t kc);

typedef struct sc_ukernel_desc {
    int mr, nr;
    sc_ukernel_fn fn;
    const char *name;
    sc_pack_a_fn pack_a_rows;
} sc_ukernel_desc;

extern const sc_ukernel_desc sc_ukernel_avx512; /* 12 x 32 */
extern const sc_ukernel_desc sc_ukernel_avx2;   /* 6 x 16 */

#endif
