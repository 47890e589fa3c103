/* The convolution's own AVX-512 kernels (conv_avx512.c), all filter gradients with the
 * pixels along the vector lanes: the 3x3, padding-1 convolution with stride 1 over rows of
 * 32 or 16 pixels (read in place) or of 8 or 4 (x packed chunk by chunk), or with stride 2
 * over rows of 32 or 16; and any shape whose planes are whole vectors, from its column
 * matrix (the lane kernel). */
#ifndef SUPCON_CPU_CONV_KERNELS_H
#define SUPCON_CPU_CONV_KERNELS_H

#include <stdint.h>

#define SC_DW3_OB 8 /* output channels per block (c_out must be a multiple) */
#define SC_DW3_CB 8 /* input channels per block, at most */

/* dw (c_out, c_in, 3, 3) += the gradient's entries for output channels [o0, o0 + SC_DW3_OB)
 * and input channels [c0, c0 + nc), nc <= SC_DW3_CB, over all n images of x (n, c_in, h, w)
 * and dy (n, c_out, h, w); w is 16 or 32 and the planes 64-byte aligned for speed (any
 * alignment works). Sums run in a fixed order: images, rows, then the 16 lanes. */
void sc_dw3_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc);
/* Rows of 8 or 4 in planes of 1 to 4 vectors of 16 (hw <= 64), a chunk of cnt <=
 * SC_DW3_PACK / hw images at a time (x and dy point at the chunk's first image): first
 * sc_dw3_short_pack_avx512 writes input channels [c0, c1) of x, shifted a row up, not and
 * down, into xpk (3 c_in cnt hw floats, 64-byte aligned, channel-major); then
 * sc_dw3_short_avx512 adds into dw the entries for output channels [o0, o0 + SC_DW3_OB)
 * and every input channel. Sums in a fixed order: lanes over the chunk's images, one tree
 * for the lanes, the chunks into dw in order. */
#define SC_DW3_PACK 1024
void sc_dw3_short_pack_avx512(float *xpk, const float *x, int64_t cnt, int64_t c_in, int64_t h, int64_t w,
                              int64_t c0, int64_t c1);
void sc_dw3_short_avx512(float *dw, const float *xpk, const float *dy, int64_t cnt, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0);
/* Stride 2, padding 1, rows of 32 or 16 input pixels (h even; with 16, h a multiple of 4):
 * dw += the entries for output channels [o0, o0 + SC_DW3_OB) and input channels
 * [c0, c0 + nc), nc <= SC_DW3_CB, over all n images; dy is (n, c_out, h / 2, w / 2). Sums in a
 * fixed order: images, output rows, then the 16 lanes. */
void sc_dw3s2_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                           int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc);
/* Any filter gradient with planes of whole vectors (ohw a multiple of 16), pixels along the
 * lanes: dw[(o0 + u) ldw + r] += sum over the n_img images and ohw pixels of dy(o0 + u) times
 * col(r), for u < SC_DW3_OB and r in [r0, r0 + nr). Image i's plane of output channel o is at
 * dy + i dy_img + o ohw; its row r of the column matrix (or its input plane r, for a 1x1
 * stride-1 convolution) at col + i col_img + r col_row. Sums in a fixed order: pixels in
 * windows of SC_DWL_WINDOW, each window's lanes by one tree, the windows into dw in order. */
#define SC_DWL_WINDOW 1024
typedef struct sc_dwl_args {
    float *dw;
    int64_t ldw;
    const float *dy, *col;
    int64_t dy_img, col_img, col_row, ohw, n_img;
} sc_dwl_args;
void sc_dwl_block_avx512(const sc_dwl_args *g, int64_t o0, int64_t r0, int64_t nr);
/* The lanes of the 16-pixel vector at pixel q of a plane of rows of w < 16 pixels (16 / w
 * rows to a vector, q a multiple of w) whose input row ki - 1 rows away lies in the image's
 * h rows: the load masks of both in-place 3x3 kernels over short rows (conv.c fills them
 * for gemm_avx512.c's forward; conv_avx512.c's filter gradient makes its own). */
static inline unsigned sc_conv3_rows_in(int64_t q, int64_t w, int64_t h, int ki) {
    unsigned m = 0;
    for (int t = 0; t < 16; t++) {
        const int64_t iy = (q + t) / w + ki - 1;
        m |= (iy >= 0 && iy < h ? 1u : 0u) << t;
    }
    return m;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The 3x3, stride-2, padding-1 convolution over rows of w = 32 or 16 input pixels: for a
 * vector of 16 output pixels (output row oy, or rows oy and oy + 1 of 8) and kernel row ki,
 * col[kj] = x[2 ox - 1 + kj] of input row 2 oy - 1 + ki (and of the row two below), zero
 * outside the image. The two loads are the row's halves, or the row and the one two below;
 * the kernel columns are their odd lanes shifted by one, even lanes and odd lanes, one
 * permute each. The forward's packer (conv_pack.h) and the filter gradient's kernel
 * (conv_avx512.c) both take their columns from here. */
__attribute__((target("avx512f"))) static inline void sc_conv3s2_columns(const float *plane, int64_t w, int64_t oy,
                                                                        int ki, __m512 col[3]) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const int64_t iy = 2 * oy - 1 + ki;
    const float *xr = plane + iy * w;
    const __m512 x0 = iy < 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(xr);
    const __m512 x1 = iy < 0 && w == 32 ? _mm512_setzero_ps() : _mm512_loadu_ps(xr + (w == 32 ? 16 : 2 * w));
    const __mmask16 left = w == 32 ? 0xFFFE : 0xFEFE; /* lanes with ox > 0 */
    col[0] = _mm512_maskz_permutex2var_ps(left, x0, _mm512_sub_epi32(even, _mm512_set1_epi32(1)), x1);
    col[1] = _mm512_permutex2var_ps(x0, even, x1);
    col[2] = _mm512_permutex2var_ps(x0, _mm512_add_epi32(even, _mm512_set1_epi32(1)), x1);
}
#endif

/* 1 when this CPU runs them. */
int sc_dw3_available(void);

#endif
