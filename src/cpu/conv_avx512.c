/* The filter gradient of the 3x3, stride-1, padding-1 convolution over rows of 32 or 16
 * pixels (or of 8 or 4, several rows to a vector), with AVX-512 and the images read in place: pixels along the vector lanes, so
 * neither operand is transposed, copied or packed (the GEMM route needs both im2col and a
 * transpose). The column shifts kj come from lane rotations of aligned row loads, as in
 * the forward's kernel (gemm_avx512.c). Other shapes take conv.c's GEMM route. */
#include "conv_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define OB SC_DW3_OB

/* a[u][kj] += dy's vector of output channel o0 + u (at DP, planes STRIDE floats apart) times
 * the input vector of kernel column kj (L, C, R). */
#define SC_DW3_FMAS(a, DP, STRIDE, L, C, R)                                                               \
    _Pragma("GCC unroll 8") for (int u = 0; u < OB; u++) {                                                 \
        __m512 dv = _mm512_loadu_ps((DP) + u * (STRIDE));                                                  \
        __asm__("" : "+v"(dv)); /* one load for the three FMAs, not one each */                           \
        a[u][0] = _mm512_fmadd_ps(dv, (L), a[u][0]);                                                       \
        a[u][1] = _mm512_fmadd_ps(dv, (C), a[u][1]);                                                       \
        a[u][2] = _mm512_fmadd_ps(dv, (R), a[u][2]);                                                       \
    }

/* sums[u * 3 + q] = the sum of a[u][q]'s 16 lanes, by two trees of 16. */
__attribute__((target("avx512f"))) static void sc_hsum16(const __m512 *v, float *out);
__attribute__((target("avx512f")))
static inline void sc_sum24(__m512 a[OB][3], float sums[32]) {
    __m512 t[32];
    for (int u = 0; u < OB; u++)
        for (int q = 0; q < 3; q++) t[u * 3 + q] = a[u][q];
    for (int q = OB * 3; q < 32; q++) t[q] = _mm512_setzero_ps();
    sc_hsum16(t, sums);
    sc_hsum16(t + 16, sums + 16);
}

/* dw[o0 + u][c][ki][kj] += the sum of a[u][kj]'s 16 lanes. */
__attribute__((target("avx512f")))
static inline void sc_dw3_add_sums(float *dw, __m512 a[OB][3], int64_t c_in, int64_t o0, int64_t c, int ki) {
    float sums[32];
    sc_sum24(a, sums);
    for (int u = 0; u < OB; u++)
        for (int kj = 0; kj < 3; kj++) dw[((o0 + u) * c_in + c) * 9 + ki * 3 + kj] += sums[u * 3 + kj];
}

/* dw[o0 + u][c0 + c][ki][kj] += the sum of acc's 16 lanes for (c, ki, u, kj), in lane order. */
static void sc_dw3_add_lanes(float *dw, const float *acc, int64_t c_in, int64_t o0, int64_t c0, int64_t nc) {
    for (int64_t c = 0; c < nc; c++)
        for (int ki = 0; ki < 3; ki++)
            for (int u = 0; u < OB; u++)
                for (int kj = 0; kj < 3; kj++) {
                    const float *v = acc + ((c * 3 + ki) * OB * 3 + u * 3 + kj) * 16;
                    float s = 0.0f;
                    for (int l = 0; l < 16; l++) s += v[l];
                    dw[((o0 + u) * c_in + c0 + c) * 9 + ki * 3 + kj] += s;
                }
}

/* acc[(u * 3 + kj) * 16 + lane] += over the rows of one image: dy[o0 + u][oy][ox] times
 * x[ci][oy + ki - 1][ox + kj - 1], for the output rows whose input row exists. */
__attribute__((target("avx512f")))
static void sc_dw3_tile(const float *xp, const float *dp, int64_t h, int64_t w, int64_t hw, int ki, float *acc) {
    __m512 a[OB][3];
    for (int u = 0; u < OB; u++)
        for (int kj = 0; kj < 3; kj++) a[u][kj] = _mm512_loadu_ps(acc + (u * 3 + kj) * 16);
    const int64_t oy0 = ki == 0 ? 1 : 0, oy1 = ki == 2 ? h - 1 : h;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        const float *xr = xp + (oy + ki - 1) * w, *dr = dp + oy * w;
        const __m512i x0 = _mm512_castps_si512(_mm512_loadu_ps(xr));
        const __m512i x1 = w == 32 ? _mm512_castps_si512(_mm512_loadu_ps(xr + 16)) : _mm512_setzero_si512();
        for (int g = 0; g < (w == 32 ? 2 : 1); g++) {
            __m512 l, c, r;
            if (w == 32 && g == 0) {
                l = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFE, x0, x0, 15));
                c = _mm512_castsi512_ps(x0);
                r = _mm512_castsi512_ps(_mm512_alignr_epi32(x1, x0, 1));
            } else if (w == 32) {
                l = _mm512_castsi512_ps(_mm512_alignr_epi32(x1, x0, 15));
                c = _mm512_castsi512_ps(x1);
                r = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0x7FFF, x1, x1, 1));
            } else {
                l = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFE, x0, x0, 15));
                c = _mm512_castsi512_ps(x0);
                r = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0x7FFF, x0, x0, 1));
            }
            SC_DW3_FMAS(a, dr + 16 * g, hw, l, c, r)
        }
    }
    for (int u = 0; u < OB; u++)
        for (int kj = 0; kj < 3; kj++) _mm512_storeu_ps(acc + (u * 3 + kj) * 16, a[u][kj]);
}

/* out[i] = the sum of v[i]'s 16 lanes, for 16 vectors at once: halves, then quarters, then
 * pairs and single lanes added across the vectors by shuffles (a fixed tree, so the same
 * bits every time), about 2.5 instructions a sum instead of 16 dependent additions. */
__attribute__((target("avx512f")))
static void sc_hsum16(const __m512 *v, float *out) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; i++) /* chunks: [a0 + a2, a1 + a3, b0 + b2, b1 + b3] */
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int j = 0; j < 4; j++) /* chunk c: 4 lanes adding up to v[4 j + c]'s sum */
        u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0xDD));
    const __m512 p0 = _mm512_add_ps(_mm512_unpacklo_ps(u[0], u[1]), _mm512_unpackhi_ps(u[0], u[1]));
    const __m512 p1 = _mm512_add_ps(_mm512_unpacklo_ps(u[2], u[3]), _mm512_unpackhi_ps(u[2], u[3]));
    const __m512d d0 = _mm512_castps_pd(p0), d1 = _mm512_castps_pd(p1);
    /* lane 4 c + j: the sum of v[4 j + c] */
    const __m512 sums = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d0, d1)),
                                      _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d1)));
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, sums));
}

/* Rows of 8 or 4, a chunk of images: every input channel's planes three times, shifted a row
 * up, not, and a row down (masked loads zero the rows outside the image), each in its own
 * aligned copy, channel-major: xpk + ((c * 3 + ki) * cnt + i) * hw. One pass for all the
 * blocks of output channels (each image's plane is another page: gathered once, they are
 * read as one run by every block). */
__attribute__((target("avx512f")))
void sc_dw3_short_pack_avx512(float *xpk, const float *x, int64_t cnt, int64_t c_in, int64_t h, int64_t w,
                              int64_t c0, int64_t c1) {
    const int64_t hw = h * w, nv = hw / 16;
    unsigned rows_in[3][4];
    for (int ki = 0; ki < 3; ki++)
        for (int64_t v = 0; v < nv; v++) rows_in[ki][v] = sc_conv3_rows_in(16 * v, w, h, ki);
    for (int64_t c = c0; c < c1; c++)
        for (int64_t i = 0; i < cnt; i++)
            for (int64_t v = 0; v < nv; v++)
                for (int ki = 0; ki < 3; ki++)
                    _mm512_store_ps(xpk + ((c * 3 + ki) * cnt + i) * hw + 16 * v,
                                    _mm512_maskz_loadu_ps((__mmask16)rows_in[ki][v],
                                                          x + (i * c_in + c) * hw + 16 * v + (ki - 1) * w));
}

/* Rows of 8 or 4 (LEFT, RIGHT: the lanes the column shifts keep, a row's first or last left
 * out), one block of output channels over the chunk's packed x: the block's dy planes of the
 * chunk are copied side by side once (in place they lie c_out planes apart, 32 KB at 4x4 x
 * 512 channels, all in one L1 set), and each (channel, kernel row) runs over the chunk with
 * its 24 accumulators in registers; their sums go into dw once per chunk. */
#define SC_DW3_SHORT(LEFT, RIGHT)                                                                         \
    {                                                                                                      \
    for (int64_t i = 0; i < cnt; i++)                                                                      \
        for (int64_t e = 0; e < OB * hw; e += 16)                                                          \
            _mm512_store_ps(dpk + i * OB * hw + e, _mm512_loadu_ps(dy + (i * c_out + o0) * hw + e));       \
    for (int64_t c = 0; c < c_in; c++)                                                                     \
        for (int ki = 0; ki < 3; ki++) {                                                                   \
            __m512 a[OB][3];                                                                               \
            for (int u = 0; u < OB; u++) a[u][0] = a[u][1] = a[u][2] = _mm512_setzero_ps();                \
            const float *xk = xpk + (c * 3 + ki) * cnt * hw;                                               \
            for (int64_t i = 0; i < cnt; i++)                                                              \
                for (int64_t v = 0; v < nv; v++) {                                                         \
                    const __m512i x0 = _mm512_castps_si512(_mm512_load_ps(xk + i * hw + 16 * v));         \
                    const __m512 l = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32((LEFT), x0, x0, 15));   \
                    const __m512 cc = _mm512_castsi512_ps(x0);                                             \
                    const __m512 r = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32((RIGHT), x0, x0, 1));   \
                    SC_DW3_FMAS(a, dpk + i * OB * hw + 16 * v, hw, l, cc, r)                               \
                }                                                                                          \
            sc_dw3_add_sums(dw, a, c_in, o0, c, ki);                                                       \
        }                                                                                                  \
    }

__attribute__((target("avx512f")))
void sc_dw3_short_avx512(float *dw, const float *xpk, const float *dy, int64_t cnt, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0) {
    const int64_t hw = h * w, nv = hw / 16;
    float dpk[OB * SC_DW3_PACK] __attribute__((aligned(64)));
    if (w == 8)
        SC_DW3_SHORT(0xFEFE, 0x7F7F)
    else
        SC_DW3_SHORT(0xEEEE, 0x7777)
}

__attribute__((target("avx512f")))
void sc_dw3_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc) {
    const int64_t hw = h * w;
    float acc[SC_DW3_CB * 3 * OB * 3 * 16] __attribute__((aligned(64)));
    for (int64_t i = 0; i < nc * 3 * OB * 3 * 16; i++) acc[i] = 0.0f;
    for (int64_t img = 0; img < n; img++) { /* one image's planes of the block stay in cache */
        const float *dp = dy + (img * c_out + o0) * hw;
        for (int64_t c = 0; c < nc; c++) {
            const float *xp = x + (img * c_in + c0 + c) * hw;
            for (int ki = 0; ki < 3; ki++) sc_dw3_tile(xp, dp, h, w, hw, ki, acc + (c * 3 + ki) * OB * 3 * 16);
        }
    }
    sc_dw3_add_lanes(dw, acc, c_in, o0, c0, nc);
}

/* Stride 2 (rows of 32 or 16 input pixels, 16 or 8 output pixels): a vector holds 16 output
 * pixels (one output row, or two of 8), and the input pixels each lane needs for kernel
 * column kj come from sc_conv3s2_columns (conv_kernels.h). Images go in chunks whose dy
 * planes of the block (about 32 KB) stay in L1 while every (input channel, kernel row) of
 * the block runs over them with its 24 accumulators in registers; the accumulators live in
 * acc between chunks. */
#define SC_DW3S2_DY_FLOATS 8192

__attribute__((target("avx512f")))
void sc_dw3s2_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                           int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc) {
    const int64_t ow = w / 2, ohw = (h / 2) * ow, hw = h * w, nv = ohw / 16;
    int64_t chunk = SC_DW3S2_DY_FLOATS / (OB * ohw);
    chunk = chunk < 1 ? 1 : chunk;
    float acc[SC_DW3_CB * 3 * OB * 3 * 16] __attribute__((aligned(64)));
    for (int64_t i = 0; i < nc * 3 * OB * 3 * 16; i++) acc[i] = 0.0f;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t i1 = n - i0 < chunk ? n : i0 + chunk;
        for (int64_t c = 0; c < nc; c++)
            for (int ki = 0; ki < 3; ki++) {
                float *at = acc + (c * 3 + ki) * OB * 3 * 16;
                __m512 a[OB][3];
                for (int u = 0; u < OB; u++)
                    for (int kj = 0; kj < 3; kj++) a[u][kj] = _mm512_load_ps(at + (u * 3 + kj) * 16);
                for (int64_t img = i0; img < i1; img++) {
                    const float *xp = x + (img * c_in + c0 + c) * hw, *dp = dy + (img * c_out + o0) * ohw;
                    for (int64_t v = 0; v < nv; v++) {
                        const int64_t oy = w == 32 ? v : 2 * v;
                        if (oy == 0 && ki == 0 && w == 32) continue; /* the padding row above the image */
                        __m512 col[3];
                        sc_conv3s2_columns(xp, w, oy, ki, col);
                        SC_DW3_FMAS(a, dp + 16 * v, ohw, col[0], col[1], col[2])
                    }
                }
                for (int u = 0; u < OB; u++)
                    for (int kj = 0; kj < 3; kj++) _mm512_store_ps(at + (u * 3 + kj) * 16, a[u][kj]);
            }
    }
    sc_dw3_add_lanes(dw, acc, c_in, o0, c0, nc);
}

/* Any other filter gradient whose planes are whole vectors (oh ow a multiple of 16), from the
 * column matrix or the images themselves: dW[o][r] += the sum over pixels of dy[o] col[r],
 * pixels along the lanes, so that neither operand is transposed (the GEMM route packs dy
 * transposed and adds dW^T back). A window of at most SC_DWL_WINDOW pixels of the block's dy
 * planes is copied side by side (it stays in L1); rows of col go three at a time with 24
 * accumulators, whose lanes one tree adds per window. */
__attribute__((target("avx512f")))
void sc_dwl_block_avx512(const sc_dwl_args *g, int64_t o0, int64_t r0, int64_t nr) {
    float dpk[OB * SC_DWL_WINDOW] __attribute__((aligned(64)));
    const int64_t ohw = g->ohw, win = SC_DWL_WINDOW;
    for (int64_t img = 0, pix = 0; img < g->n_img;) {
        /* the window: images [img, img + ni), pixels [pix, pix + np) of each */
        const int64_t ni = ohw <= win ? (win / ohw < g->n_img - img ? win / ohw : g->n_img - img) : 1;
        const int64_t np = ohw <= win ? ohw : (win < ohw - pix ? win : ohw - pix);
        for (int64_t i = 0; i < ni; i++)
            for (int u = 0; u < OB; u++)
                for (int64_t e = 0; e < np; e += 16) {
                    __m512 v = _mm512_loadu_ps(g->dy + (img + i) * g->dy_img + (o0 + u) * ohw + pix + e);
                    __asm__("" : "+v"(v)); /* vector moves: as a memcpy call per 64 bytes it cost more */
                    _mm512_store_ps(dpk + u * win + i * np + e, v);
                }
        for (int64_t r = r0; r < r0 + nr; r += 3) {
            const int64_t rb = r0 + nr - r < 3 ? r0 + nr - r : 3;
            __m512 a[OB][3];
            for (int u = 0; u < OB; u++) a[u][0] = a[u][1] = a[u][2] = _mm512_setzero_ps();
            for (int64_t i = 0; i < ni; i++) {
                const float *c0 = g->col + (img + i) * g->col_img + r * g->col_row + pix;
                const float *c1 = rb > 1 ? c0 + g->col_row : c0, *c2 = rb > 2 ? c0 + 2 * g->col_row : c0;
                const float *dp = dpk + i * np;
                for (int64_t e = 0; e < np; e += 16) {
                    const __m512 x0 = _mm512_loadu_ps(c0 + e), x1 = _mm512_loadu_ps(c1 + e);
                    const __m512 x2 = _mm512_loadu_ps(c2 + e);
                    SC_DW3_FMAS(a, dp + e, win, x0, x1, x2)
                }
            }
            float sums[32];
            sc_sum24(a, sums);
            for (int u = 0; u < OB; u++)
                for (int64_t q = 0; q < rb; q++) g->dw[(o0 + u) * g->ldw + r + q] += sums[u * 3 + q];
        }
        if (ohw <= win) {
            img += ni;
        } else if ((pix += np) == ohw) {
            pix = 0;
            img++;
        }
    }
}

int sc_dw3_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#else
void sc_dw3_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc) {}
void sc_dw3_short_pack_avx512(float *xpk, const float *x, int64_t cnt, int64_t c_in, int64_t h, int64_t w,
                              int64_t c0, int64_t c1) {}
void sc_dw3_short_avx512(float *dw, const float *xpk, const float *dy, int64_t cnt, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0) {}
void sc_dw3s2_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                           int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc) {}
void sc_dwl_block_avx512(const sc_dwl_args *g, int64_t o0, int64_t r0, int64_t nr) {}
int sc_dw3_available(void) { return 0; }
#endif
