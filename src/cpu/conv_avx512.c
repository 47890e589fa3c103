/* The filter gradient of the 3x3, stride-1, padding-1 convolution over rows of 16 or 32
 * pixels, with AVX-512 and the images read in place: pixels along the vector lanes, so
 * neither operand is transposed, copied or packed (the GEMM route needs both im2col and a
 * transpose). The column shifts kj come from lane rotations of aligned row loads, as in
 * the forward's kernel (gemm_avx512.c). Other shapes take conv.c's GEMM route. */
#include "conv_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define OB SC_DW3_OB

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
#pragma GCC unroll 8
            for (int u = 0; u < OB; u++) {
                __m512 dv = _mm512_loadu_ps(dr + u * hw + 16 * g);
                __asm__("" : "+v"(dv)); /* one load for the three FMAs, not one each */
                a[u][0] = _mm512_fmadd_ps(dv, l, a[u][0]);
                a[u][1] = _mm512_fmadd_ps(dv, c, a[u][1]);
                a[u][2] = _mm512_fmadd_ps(dv, r, a[u][2]);
            }
        }
    }
    for (int u = 0; u < OB; u++)
        for (int kj = 0; kj < 3; kj++) _mm512_storeu_ps(acc + (u * 3 + kj) * 16, a[u][kj]);
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
    /* dw[o][ci][ki][kj] += the lanes' sum, in lane order */
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

int sc_dw3_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#else
void sc_dw3_block_avx512(float *dw, const float *x, const float *dy, int64_t n, int64_t c_in, int64_t c_out,
                         int64_t h, int64_t w, int64_t o0, int64_t c0, int64_t nc) {}
int sc_dw3_available(void) { return 0; }
#endif
