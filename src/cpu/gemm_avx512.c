/* AVX-512 micro-kernel, 12 x 32: 24 accumulators, two B vectors and one broadcast per step. */
#include "gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define MR 12

/* The 24 accumulators are named variables, not an array: with an array the compiler zeroed
 * a stack copy of it on every call (1.5 KB of rep stos before the loop). */
#define SC_ACC(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
#define SC_FMA(i)                                                  \
    {                                                              \
        const __m512 ai = _mm512_set1_ps(ap[i]);                   \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                \
    }
#define SC_STORE(i)                                                                 \
    {                                                                               \
        float *ci = c + (i) * ldc, *hi = c_hi + (i) * ldc;                          \
        __m512 r0 = _mm512_mul_ps(va, c##i##a), r1 = _mm512_mul_ps(va, c##i##b);    \
        if (beta != 0.0f) {                                                         \
            r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);                      \
            r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(hi), r1);                      \
        }                                                                           \
        _mm512_storeu_ps(ci, r0);                                                   \
        _mm512_storeu_ps(hi, r1);                                                   \
    }

__attribute__((target("avx512f")))
static void sc_ukernel_12x32(int64_t kc, const float *a, const float *b, float *c, float *c_hi, int64_t ldc,
                             float alpha, float beta) {
    SC_ACC(0) SC_ACC(1) SC_ACC(2) SC_ACC(3) SC_ACC(4) SC_ACC(5)
    SC_ACC(6) SC_ACC(7) SC_ACC(8) SC_ACC(9) SC_ACC(10) SC_ACC(11)
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b + p * 32), b1 = _mm512_loadu_ps(b + p * 32 + 16);
        const float *ap = a + p * MR;
        SC_FMA(0) SC_FMA(1) SC_FMA(2) SC_FMA(3) SC_FMA(4) SC_FMA(5)
        SC_FMA(6) SC_FMA(7) SC_FMA(8) SC_FMA(9) SC_FMA(10) SC_FMA(11)
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    SC_STORE(0) SC_STORE(1) SC_STORE(2) SC_STORE(3) SC_STORE(4) SC_STORE(5)
    SC_STORE(6) SC_STORE(7) SC_STORE(8) SC_STORE(9) SC_STORE(10) SC_STORE(11)
}

/* The same with B read in place (sc_bdirect): two masked loads per step instead of two
 * loads from a packed panel, so the convolutions need not copy their images. */
__attribute__((target("avx512f")))
static void sc_ukernel_12x32_direct(int64_t kc, const float *a, const sc_bdirect *bd, float *c, float *c_hi,
                                    int64_t ldc, float alpha, float beta) {
    SC_ACC(0) SC_ACC(1) SC_ACC(2) SC_ACC(3) SC_ACC(4) SC_ACC(5)
    SC_ACC(6) SC_ACC(7) SC_ACC(8) SC_ACC(9) SC_ACC(10) SC_ACC(11)
    const float *base0 = bd->base[0], *base1 = bd->base[1];
    const int64_t *off = bd->off;
    const uint16_t *m0 = bd->mask[0], *m1 = bd->mask[1];
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_maskz_loadu_ps((__mmask16)m0[p], base0 + off[p]);
        const __m512 b1 = _mm512_maskz_loadu_ps((__mmask16)m1[p], base1 + off[p]);
        const float *ap = a + p * MR;
        SC_FMA(0) SC_FMA(1) SC_FMA(2) SC_FMA(3) SC_FMA(4) SC_FMA(5)
        SC_FMA(6) SC_FMA(7) SC_FMA(8) SC_FMA(9) SC_FMA(10) SC_FMA(11)
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    SC_STORE(0) SC_STORE(1) SC_STORE(2) SC_STORE(3) SC_STORE(4) SC_STORE(5)
    SC_STORE(6) SC_STORE(7) SC_STORE(8) SC_STORE(9) SC_STORE(10) SC_STORE(11)
}

/* The 3x3 convolution read in place (sc_bdirect.conv3): per channel and kernel row, two
 * aligned loads; the three column shifts are lane rotations of them (valignd). */
static const float sc_zero_row[32] __attribute__((aligned(64)));
#define SC_AHEAD 2 /* channels ahead to prefetch */

/* SC_FMAS: the rows of C a kernel computes (all 12, or the first 4 or 8 for the last row
 * panel of 64, 128, 256 or 512 channels), defined before each kernel below. */
#define SC_STEP3(B0, B1)                                                                                  \
    {                                                                                                      \
        const __m512 b0 = (B0), b1 = (B1);                                                                 \
        SC_FMAS                                                                                            \
    }

/* One channel's kernel row: the centre step first, then each shifted pair right before its
 * step, so that no more than two B vectors besides the centre pair are live (24
 * accumulators leave room for few); the lanes shifted in past a row's end are zeroed by the
 * mask. ONE_ROW: the halves are one row (x[ox - 1] of the second half's lane 0 is the first
 * half's lane 15). */
#define SC_ROW3(ONE_ROW)                                                                                   \
    {                                                                                                      \
        const __m512 c0 = _mm512_loadu_ps(r0), c1 = _mm512_loadu_ps(r1);                                  \
        const __m512i i0 = _mm512_castps_si512(c0), i1 = _mm512_castps_si512(c1);                          \
        const float *ap = a + MR;                                                                          \
        SC_STEP3(c0, c1)                                                                                   \
        ap = a;                                                                                            \
        SC_STEP3(_mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFE, i0, i0, 15)),                       \
                 _mm512_castsi512_ps((ONE_ROW) ? _mm512_alignr_epi32(i1, i0, 15)                           \
                                               : _mm512_maskz_alignr_epi32(0xFFFE, i1, i1, 15)))           \
        ap = a + 2 * MR;                                                                                   \
        SC_STEP3(_mm512_castsi512_ps((ONE_ROW) ? _mm512_alignr_epi32(i1, i0, 1)                            \
                                               : _mm512_maskz_alignr_epi32(0x7FFF, i0, i0, 1)),            \
                 _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0x7FFF, i1, i1, 1)))                        \
        a += 3 * MR;                                                                                       \
    }

#define SC_DIRECT3_LOOP(ONE_ROW)                                                                           \
    for (int64_t ch = 0; ch < nch; ch++) {                                                                 \
        const float *p0 = bd->base[0] + ch * hw - w, *p1 = bd->base[1] + ch * hw - w;                     \
        if (ch + SC_AHEAD < nch) /* each channel is another page: the prefetcher would not */              \
            for (int ki = 0; ki < 3; ki++) {                                                               \
                _mm_prefetch((const char *)(p0 + SC_AHEAD * hw + ki * w), _MM_HINT_T0);                    \
                _mm_prefetch((const char *)(p1 + SC_AHEAD * hw + ki * w), _MM_HINT_T0);                    \
            }                                                                                              \
        for (int ki = 0; ki < 3; ki++) {                                                                   \
            const float *r0 = (bd->row[0] >> ki) & 1 ? p0 + ki * w : sc_zero_row;                          \
            const float *r1 = (bd->row[1] >> ki) & 1 ? p1 + ki * w : sc_zero_row;                          \
            SC_ROW3(ONE_ROW)                                                                               \
        }                                                                                                  \
    }

/* Halves of several short rows (w 8 or 4): the rows above and below come from one masked
 * load each, and the column shifts zero the lanes that would cross from one row into the
 * next (LEFT: a row's first lane, RIGHT: its last). */
#define SC_ROWS3(LEFT, RIGHT)                                                                              \
    {                                                                                                      \
        const __m512 c0 = _mm512_maskz_loadu_ps(vm0[ki], p0 + ki * w);                                     \
        const __m512 c1 = _mm512_maskz_loadu_ps(vm1[ki], p1 + ki * w);                                     \
        const __m512i i0 = _mm512_castps_si512(c0), i1 = _mm512_castps_si512(c1);                          \
        const float *ap = a + MR;                                                                          \
        SC_STEP3(c0, c1)                                                                                   \
        ap = a;                                                                                            \
        SC_STEP3(_mm512_castsi512_ps(_mm512_maskz_alignr_epi32((LEFT), i0, i0, 15)),                       \
                 _mm512_castsi512_ps(_mm512_maskz_alignr_epi32((LEFT), i1, i1, 15)))                       \
        ap = a + 2 * MR;                                                                                   \
        SC_STEP3(_mm512_castsi512_ps(_mm512_maskz_alignr_epi32((RIGHT), i0, i0, 1)),                       \
                 _mm512_castsi512_ps(_mm512_maskz_alignr_epi32((RIGHT), i1, i1, 1)))                       \
        a += 3 * MR;                                                                                       \
    }

#define SC_DIRECT3M_LOOP(LEFT, RIGHT)                                                                      \
    for (int64_t ch = 0; ch < nch; ch++) {                                                                 \
        const float *p0 = bd->base[0] + ch * hw - w, *p1 = bd->base[1] + ch * hw - w;                     \
        if (ch + SC_AHEAD < nch) {                                                                         \
            _mm_prefetch((const char *)(p0 + SC_AHEAD * hw + w), _MM_HINT_T0);                             \
            _mm_prefetch((const char *)(p1 + SC_AHEAD * hw + w), _MM_HINT_T0);                             \
        }                                                                                                  \
        for (int ki = 0; ki < 3; ki++)                                                                     \
            SC_ROWS3(LEFT, RIGHT)                                                                          \
    }

#define SC_DIRECT3_BODY                                                                                    \
    const int64_t w = bd->w, hw = bd->hw, nch = kc / 9;                                                    \
    const uint16_t *vm0 = bd->vmask[0], *vm1 = bd->vmask[1];                                               \
    if (bd->conv3 == 32)                                                                                   \
        SC_DIRECT3_LOOP(1)                                                                                 \
    else if (bd->conv3 == 16)                                                                              \
        SC_DIRECT3_LOOP(0)                                                                                 \
    else if (bd->conv3 == 8)                                                                               \
        SC_DIRECT3M_LOOP(0xFEFE, 0x7F7F)                                                                   \
    else                                                                                                   \
        SC_DIRECT3M_LOOP(0xEEEE, 0x7777)

#define SC_FMAS                                                                                            \
    SC_FMA(0) SC_FMA(1) SC_FMA(2) SC_FMA(3) SC_FMA(4) SC_FMA(5) SC_FMA(6) SC_FMA(7) SC_FMA(8) SC_FMA(9)     \
    SC_FMA(10) SC_FMA(11)
__attribute__((target("avx512f")))
static void sc_ukernel_12x32_direct3(int64_t kc, const float *a, const sc_bdirect *bd, float *c, float *c_hi,
                                     int64_t ldc, float alpha, float beta) {
    SC_ACC(0) SC_ACC(1) SC_ACC(2) SC_ACC(3) SC_ACC(4) SC_ACC(5)
    SC_ACC(6) SC_ACC(7) SC_ACC(8) SC_ACC(9) SC_ACC(10) SC_ACC(11)
    SC_DIRECT3_BODY
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    SC_STORE(0) SC_STORE(1) SC_STORE(2) SC_STORE(3) SC_STORE(4) SC_STORE(5)
    SC_STORE(6) SC_STORE(7) SC_STORE(8) SC_STORE(9) SC_STORE(10) SC_STORE(11)
}
#undef SC_FMAS

/* The last row panel when only its first 8 or 4 rows are C's (A's panel is still 12 rows,
 * zero-padded): a third or two thirds of the work, C written straight, no edge tile. */
#define SC_FMAS SC_FMA(0) SC_FMA(1) SC_FMA(2) SC_FMA(3) SC_FMA(4) SC_FMA(5) SC_FMA(6) SC_FMA(7)
__attribute__((target("avx512f")))
static void sc_ukernel_8x32_direct3(int64_t kc, const float *a, const sc_bdirect *bd, float *c, float *c_hi,
                                    int64_t ldc, float alpha, float beta) {
    SC_ACC(0) SC_ACC(1) SC_ACC(2) SC_ACC(3) SC_ACC(4) SC_ACC(5) SC_ACC(6) SC_ACC(7)
    SC_DIRECT3_BODY
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    SC_STORE(0) SC_STORE(1) SC_STORE(2) SC_STORE(3) SC_STORE(4) SC_STORE(5) SC_STORE(6) SC_STORE(7)
}
#undef SC_FMAS

#define SC_FMAS SC_FMA(0) SC_FMA(1) SC_FMA(2) SC_FMA(3)
__attribute__((target("avx512f")))
static void sc_ukernel_4x32_direct3(int64_t kc, const float *a, const sc_bdirect *bd, float *c, float *c_hi,
                                    int64_t ldc, float alpha, float beta) {
    SC_ACC(0) SC_ACC(1) SC_ACC(2) SC_ACC(3)
    SC_DIRECT3_BODY
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    SC_STORE(0) SC_STORE(1) SC_STORE(2) SC_STORE(3)
}
#undef SC_FMAS

/* Row-major A into a 12-row panel, 16 columns at a time: the 12 rows (4 zero rows pad it to
 * 16) are transposed in registers and each column's 12 values stored with one masked
 * store, instead of 192 scalar stores with a 48-byte stride. */
__attribute__((target("avx512f")))
static void sc_pack_a_rows_12(float *dst, const float *a, int64_t lda, int64_t rows, int64_t kc) {
    int64_t p = 0;
    for (; p + 16 <= kc; p += 16) {
        __m512 r[16], t[16], u[16], v[16], w[16];
        for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(a + i * lda + p) : _mm512_setzero_ps();
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) {
            const __m512d t0 = _mm512_castps_pd(t[i]), t1 = _mm512_castps_pd(t[i + 1]);
            const __m512d t2 = _mm512_castps_pd(t[i + 2]), t3 = _mm512_castps_pd(t[i + 3]);
            u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
            u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
            u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
            u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
        }
        for (int i = 0; i < 4; i++) {
            v[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
            v[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xdd);
            v[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
            v[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xdd);
        }
        for (int i = 0; i < 8; i++) {
            w[i] = _mm512_shuffle_f32x4(v[i], v[i + 8], 0x88);
            w[i + 8] = _mm512_shuffle_f32x4(v[i], v[i + 8], 0xdd);
        }
        for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + (p + k) * MR, 0x0FFF, w[k]); /* w[k] = column k */
    }
    for (; p < kc; p++)
        for (int64_t i = 0; i < MR; i++) dst[p * MR + i] = i < rows ? a[i * lda + p] : 0.0f;
}

const sc_ukernel_desc sc_ukernel_avx512 = {MR, 32, sc_ukernel_12x32, "avx512", sc_pack_a_rows_12,
                                           sc_ukernel_12x32_direct, sc_ukernel_12x32_direct3,
                                           sc_ukernel_4x32_direct3, sc_ukernel_8x32_direct3};
#else
const sc_ukernel_desc sc_ukernel_avx512 = {0, 0, 0, "none", 0, 0, 0, 0, 0};
#endif
