/* Micro-kernels: C (mr x nr tile, row stride ldc) = alpha * A_panel B_panel + beta * C, with
 * A packed k-major in mr-row panels and B packed k-major in nr-column panels. beta == 0
 * never reads C. Each row's first nr / 2 columns are at c + i ldc, its last nr / 2 at
 * c_hi + i ldc (c_hi = c + nr / 2 for a tile in one run; apart when the tile's halves fall
 * in two images' planes, so such tiles need no copy through a scratch tile). Each kernel is
 * compiled for its instruction set only (target attributes), and chosen at run time. */
#ifndef SUPCON_CPU_GEMM_KERNELS_H
#define SUPCON_CPU_GEMM_KERNELS_H

#include <stdint.h>

#define SC_MR_MAX 12
#define SC_NR_MAX 32

typedef void (*sc_ukernel_fn)(int64_t kc, const float *a, const float *b, float *c, float *c_hi, int64_t ldc,
                              float alpha, float beta);

/* Packs one panel of A stored m x k (row-major, lda): dst[p * mr + i] = a[i * lda + p] for
 * i < rows, 0 for rows <= i < mr, p < kc. NULL: the driver's scalar loop. */
typedef void (*sc_pack_a_fn)(float *dst, const float *a, int64_t lda, int64_t rows, int64_t kc);

/* B read in place instead of packed (a 32-column panel as two halves of 16): at step p,
 * half h is the 16 floats at base[h] + off[p], lanes outside mask[h][p] read as 0 (and not
 * read at all, so a masked lane may point anywhere). */
typedef struct sc_bdirect {
    const float *base[2];
    const int64_t *off;
    const uint16_t *mask[2];
    /* conv3 (when nonzero): a 3x3, stride 1, padding 1 convolution over planes of width w
     * (32, 16, 8 or 4) and hw floats, the depth being whole channels (9 steps each, the
     * kernel's rows in (ki, kj) order). base[h] is the half's first output pixel (channel
     * 0); kernel row ki reads the 16 floats w further on than the pixels above them, (ki - 1)
     * rows away; kj's shifts come from those in registers (lane rotations), so every value is
     * loaded once. conv3 == 32: the halves are the two halves of one row; 16: one row each,
     * zeros for a row outside the image where row[h] has no bit ki; 8 and 4: 2 and 4 rows
     * each (rows are contiguous in a plane), the lanes of rows outside the image left out of
     * the loads by vmask[h][ki], and the shifts' lanes that cross a row's end zeroed. */
    int conv3;
    int64_t w, hw;
    unsigned row[2];
    uint16_t vmask[2][3];
} sc_bdirect;

typedef void (*sc_ukernel_direct_fn)(int64_t kc, const float *a, const sc_bdirect *b, float *c, float *c_hi,
                                     int64_t ldc, float alpha, float beta);

typedef struct sc_ukernel_desc {
    int mr, nr;
    sc_ukernel_fn fn;
    const char *name;
    sc_pack_a_fn pack_a_rows;
    sc_ukernel_direct_fn direct; /* NULL: B is always packed (nr must be 32 otherwise) */
    sc_ukernel_direct_fn direct3; /* the conv3 form of sc_bdirect */
    sc_ukernel_direct_fn direct3_r4, direct3_r8; /* direct3 for a last panel of 4 or 8 rows of
                                                    C (C's other rows untouched), or NULL */
} sc_ukernel_desc;

extern const sc_ukernel_desc sc_ukernel_avx512; /* 12 x 32 */
extern const sc_ukernel_desc sc_ukernel_avx2;   /* 6 x 16 */

#endif
