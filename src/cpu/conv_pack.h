/* The packers of conv.c that read the im2col view, as a template: included once per
 * instruction set with SC_SFX (name suffix) and SC_TARGET (function attribute) defined,
 * and SC_PACK_AVX512 for the masked-load copies. Needs conv.c's sc_view, sc_seg,
 * sc_segments, sc_rowpos. */

/* o[0, len) = src[ix0 + t] for t in [lo, hi), 0 elsewhere (stride 1). */
SC_TARGET static inline void SC_SFX(sc_run)(float *o, const float *src, int64_t ix0, int64_t lo, int64_t hi,
                                           int64_t len) {
#ifdef SC_PACK_AVX512
    for (int64_t t = 0; t < len; t += 16) {
        const int64_t n = len - t < 16 ? len - t : 16;
        const __mmask16 all = (__mmask16)((1u << n) - 1u);
        int64_t a = lo - t, b = hi - t;
        a = a < 0 ? 0 : a > 16 ? 16 : a;
        b = b < 0 ? 0 : b > 16 ? 16 : b;
        const __mmask16 valid = b > a ? (__mmask16)(((1u << b) - 1u) & ~((1u << a) - 1u)) : 0;
        const __m512 v = _mm512_maskz_loadu_ps(valid, src + ix0 + t);
        _mm512_mask_storeu_ps(o + t, all, v);
    }
#else
    for (int64_t t = 0; t < lo; t++) o[t] = 0.0f;
    if (hi > lo) memcpy(o + lo, src + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
    for (int64_t t = hi > lo ? hi : lo; t < len; t++) o[t] = 0.0f;
#endif
}

/* out[s.at .. s.at + s.len) for every run = row (ci, ki, kj) of the view over those
 * columns. */
SC_TARGET static inline void SC_SFX(sc_view_fill)(const sc_view *v, int64_t ci, int64_t ki, int64_t kj,
                                                 const sc_seg *segs, int64_t nseg, float *out) {
    for (int64_t s = 0; s < nseg; s++) {
        const sc_seg *g = &segs[s];
        float *o = out + g->at;
        const float *plane = v->x + (g->img * v->c + ci) * v->hw;
        if (v->direct) {
            SC_SFX(sc_run)(o, plane + g->pix, 0, 0, g->len, g->len);
            continue;
        }
        const int64_t iy = g->oy * v->sh - v->ph + ki;
        if (iy < 0 || iy >= v->h) {
            SC_SFX(sc_run)(o, plane, 0, 0, 0, g->len);
            continue;
        }
        const float *src = plane + iy * v->w;
        const int64_t ix0 = g->ox * v->sw - v->pw + kj; /* input column of o[0] */
        if (v->sw == 1) { /* valid t: 0 <= ix0 + t < w */
            const int64_t lo = ix0 >= 0 ? 0 : -ix0 < g->len ? -ix0 : g->len;
            const int64_t hi = v->w - ix0 < g->len ? v->w - ix0 : g->len;
            SC_SFX(sc_run)(o, src, ix0, lo, hi > lo ? hi : lo, g->len);
            continue;
        }
        /* valid t: 0 <= ix0 + t sw < w */
        int64_t lo = ix0 >= 0 ? 0 : (-ix0 + v->sw - 1) / v->sw;
        int64_t hi = v->w - ix0 <= 0 ? 0 : (v->w - ix0 + v->sw - 1) / v->sw;
        if (hi > g->len) hi = g->len;
        if (lo > hi) lo = hi;
#ifdef SC_PACK_AVX512
        if (v->sw == 2) { /* the even lanes of two masked loads */
            const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            for (int64_t t = 0; t < g->len; t += 16) {
                const int64_t n = g->len - t < 16 ? g->len - t : 16;
                int64_t a = lo - t, b = hi - t; /* valid outputs of this group: [a, b) */
                a = a < 0 ? 0 : a > 16 ? 16 : a;
                b = b < 0 ? 0 : b > 16 ? 16 : b;
                /* input lanes 2a, 2a + 2, ..., 2b - 2 of the 32 */
                const uint32_t in = b > a ? (uint32_t)(0x55555555ull & ((1ull << (2 * b)) - 1) & ~((1ull << (2 * a)) - 1))
                                          : 0u;
                const float *sp = src + ix0 + 2 * t;
                const __m512 x0 = _mm512_maskz_loadu_ps((__mmask16)(in & 0xFFFF), sp);
                const __m512 x1 = _mm512_maskz_loadu_ps((__mmask16)(in >> 16), sp + 16);
                _mm512_mask_storeu_ps(o + t, (__mmask16)((1u << n) - 1u), _mm512_permutex2var_ps(x0, even, x1));
            }
            continue;
        }
#endif
        for (int64_t t = 0; t < lo; t++) o[t] = 0.0f;
        for (int64_t t = lo; t < hi; t++) o[t] = src[ix0 + t * v->sw];
        for (int64_t t = hi; t < g->len; t++) o[t] = 0.0f;
    }
}

#ifdef SC_PACK_AVX512
/* A whole panel of the 3x3 stride-2 view (sc_view_conv3s2), depth in whole channels: per
 * channel, kernel row and half, the three kernel columns of sc_conv3s2_columns. */
SC_TARGET static void sc_pack_b_conv3s2(const sc_view *v, float *dst, int64_t j0, int64_t p0, int64_t kc) {
    for (int h = 0; h < 2; h++) {
        const int64_t j = j0 + 16 * h, img = j / v->ohw, oy = j % v->ohw / v->ow;
        const float *plane = v->x + (img * v->c + p0 / 9) * v->hw;
        for (int64_t ch = 0; ch < kc / 9; ch++, plane += v->hw)
            for (int ki = 0; ki < 3; ki++) {
                __m512 col[3];
                sc_conv3s2_columns(plane, v->w, oy, ki, col);
                float *d = dst + (ch * 9 + ki * 3) * 32 + 16 * h;
                for (int kj = 0; kj < 3; kj++) _mm512_storeu_ps(d + 32 * kj, col[kj]);
            }
    }
}
#endif

/* B = the view: panel columns [j0, j0 + cols), depth rows [p0, p0 + kc). */
SC_TARGET static void SC_SFX(sc_pack_b_view)(const void *ctx, float *dst, int64_t j0, int64_t cols, int64_t p0,
                                            int64_t kc, int nr,
                                            void (*rows)(float *, const float *, int64_t, int64_t, int64_t)) {
    const sc_view *v = ctx;
#ifdef SC_PACK_AVX512
    if (cols == 32 && nr == 32 && sc_view_conv3s2(v) && p0 % 9 == 0 && kc % 9 == 0) {
        sc_pack_b_conv3s2(v, dst, j0, p0, kc);
        return;
    }
    if (cols == 32 && nr == 32 && kc <= SC_GEMM_KC) { /* two masked loads a row, no runs to cut */
        int64_t off[SC_GEMM_KC];
        uint16_t mask[2][SC_GEMM_KC];
        sc_bdirect bd = {.off = off, .mask = {mask[0], mask[1]}};
        if (sc_direct_view_rows(v, j0, p0, kc, &bd)) {
            for (int64_t p = 0; p < kc; p++) {
                _mm512_storeu_ps(dst + p * 32, _mm512_maskz_loadu_ps((__mmask16)mask[0][p], bd.base[0] + off[p]));
                _mm512_storeu_ps(dst + p * 32 + 16, _mm512_maskz_loadu_ps((__mmask16)mask[1][p], bd.base[1] + off[p]));
            }
            return;
        }
    }
#endif
    sc_seg segs[SC_NR_MAX];
    const int64_t nseg = sc_segments(v, j0, cols, segs);
    sc_rowpos q = sc_rowpos_of(v, p0);
    for (int64_t p = 0; p < kc; p++, sc_next(v, &q)) {
        float *d = dst + p * nr;
        SC_SFX(sc_view_fill)(v, q.ci, q.ki, q.kj, segs, nseg, d);
        for (int64_t j = cols; j < nr; j++) d[j] = 0.0f;
    }
}

/* B = the view transposed: op(B)(p, j) = view(j, p); panel columns (view rows)
 * [j0, j0 + cols), depth (view columns) [p0, p0 + kc). */
SC_TARGET static void SC_SFX(sc_pack_bt_view)(const void *ctx, float *dst, int64_t j0, int64_t cols, int64_t p0,
                                             int64_t kc, int nr,
                                             void (*rows)(float *, const float *, int64_t, int64_t, int64_t)) {
    const sc_view *v = ctx;
    sc_seg segs[SC_GEMM_KC];
    float line[SC_GEMM_KC];
    const int64_t nseg = sc_segments(v, p0, kc, segs);
    sc_rowpos q = sc_rowpos_of(v, j0);
    for (int64_t j = 0; j < cols; j++, sc_next(v, &q)) {
        SC_SFX(sc_view_fill)(v, q.ci, q.ki, q.kj, segs, nseg, line);
        for (int64_t p = 0; p < kc; p++) dst[p * nr + j] = line[p];
    }
    for (int64_t p = 0; p < kc; p++)
        for (int64_t j = cols; j < nr; j++) dst[p * nr + j] = 0.0f;
}
