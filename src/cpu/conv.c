/* Conv2d on the CPU (NCHW, no bias) as GEMMs on gemm.c's driver, whose packing routines
 * read the images themselves (implicit im2col) for the forward and the data gradient; the
 * filter gradient of the common 3x3 case has its own kernel (conv_avx512.c). Leaves out
 * groups, dilation and bias (the reference uses none).
 *
 * With K = c_in kh kw and P = n oh ow (the pixels of all images, image by image), and
 * col (K, P) the im2col matrix:
 *   forward          y (c_out, P) = W (c_out, K) col (K, P): col exists one packed panel
 *                    at a time, or not at all (read in place, sc_direct_view); C columns
 *                    in runs of oh ow land in each image's planes (sc_gemm_out segments)
 *   backward data    by phases: dx's pixels (iy, ix) of one (iy mod sh, ix mod sw) at a
 *                    time, each a stride-1 convolution of dy with the kernel taps that
 *                    reach them (no multiply by an inserted zero, no col2im); stride 1 is
 *                    one phase, the forward convolution of dy with W turned and transposed,
 *                    straight into dx; with stride, a chunk of images goes into phase
 *                    planes that one pass interleaves into dx
 *   backward filter  3x3, padding 1, stride 1 over rows of 32, 16, 8 or 4 pixels, or stride
 *                    2 over rows of 32 or 16: conv_avx512.c;
 *                    otherwise im2col per slice of channels into the workspace, then
 *                    dW^T (K, c_out) = col dy^T, added into dW at the end
 * Every element is computed by one worker in a fixed order (the GEMM's, the interleaving's per
 * plane, the filter kernel's per block), so results are identical for any number of
 * threads. */
#include <string.h>

#include "conv_bf16.h"
#include "conv_kernels.h"
#include "cpu_backend.h"
#include "gemm_kernels.h"
#include "ops.h"

/* The filter gradient's column matrix aims at this many pixels (GEMM depth) per chunk ... */
#define SC_CONV_COLS 1024
/* ... and the strided backward data's phases at this many (GEMM columns). */
#define SC_CONV_PHASE_COLS 2048
/* ... within this many floats of phase planes (4 MB: fewer chunks, fewer packings of A). */
#define SC_CONV_PHASE_CAP ((int64_t)1 << 20)
/* The filter gradient's column matrix is the GEMM's row operand, packed once per row block:
 * larger slices keep the GEMM from splitting columns (and packing a slice twice), while a
 * slice stays under SC_CONV_COL_CAP floats (4 MB). */
#define SC_CONV_SLICE_ROWS_DW 1024
#define SC_CONV_COL_CAP ((int64_t)1 << 20)

/* ---- the im2col matrix of an image batch, as a view -------------------------------------- */

/* col (c kh kw, n oh ow) of x (n, c, h, w): row (ci, ki, kj), column (img, oy, ox) holds
 * x[img, ci, oy sh - ph + ki, ox sw - pw + kj], 0 outside. */
typedef struct sc_view {
    const float *x;
    int64_t c, h, w, hw, kh, kw, kk, sh, sw, ph, pw, oh, ow, ohw;
    int direct; /* 1x1, stride 1, no padding: row ci of image img is x's plane */
} sc_view;

static sc_view sc_view_of(const float *x, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
                          int64_t sw, int64_t ph, int64_t pw) {
    sc_view v = {.x = x, .c = c, .h = h, .w = w, .hw = h * w, .kh = kh, .kw = kw, .kk = kh * kw, .sh = sh,
                 .sw = sw, .ph = ph, .pw = pw};
    v.oh = (h + 2 * ph - kh) / sh + 1;
    v.ow = (w + 2 * pw - kw) / sw + 1;
    v.ohw = v.oh * v.ow;
    v.direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    return v;
}

/* A run of columns within one output row (one image when direct): columns [at, at + len)
 * of a panel start at pixel (oy, ox) of image img (pix = oy ow + ox). */
typedef struct sc_seg {
    int64_t at, len, img, oy, ox, pix;
} sc_seg;

/* Columns [j0, j0 + len) cut into runs; returns their number (at most len). */
static int64_t sc_segments(const sc_view *v, int64_t j0, int64_t len, sc_seg *out) {
    int64_t n = 0;
    for (int64_t at = 0; at < len;) {
        const int64_t j = j0 + at, img = j / v->ohw, pix = j % v->ohw;
        const int64_t oy = pix / v->ow, ox = pix % v->ow;
        int64_t run = v->direct ? v->ohw - pix : v->ow - ox;
        if (run > len - at) run = len - at;
        out[n++] = (sc_seg){at, run, img, oy, ox, pix};
        at += run;
    }
    return n;
}

/* Row `row` of the view as (ci, ki, kj); sc_next steps to the following row. */
typedef struct sc_rowpos {
    int64_t ci, ki, kj;
} sc_rowpos;

static sc_rowpos sc_rowpos_of(const sc_view *v, int64_t row) {
    const int64_t r = row % v->kk;
    return (sc_rowpos){row / v->kk, r / v->kw, r % v->kw};
}

static inline void sc_next(const sc_view *v, sc_rowpos *q) {
    if (++q->kj < v->kw) return;
    q->kj = 0;
    if (++q->ki < v->kh) return;
    q->ki = 0;
    q->ci++;
}

/* The 3x3, stride-2, padding-1 convolution over rows of 32 pixels (h even) or 16 (h a multiple
 * of 4): its panels are packed per channel and kernel row from two row loads (conv_pack.h). */
static int sc_view_conv3s2(const sc_view *v) {
    return v->kh == 3 && v->kw == 3 && v->sh == 2 && v->sw == 2 && v->ph == 1 && v->pw == 1 &&
           (v->w == 32 ? v->h % 2 == 0 : v->w == 16 && v->h % 4 == 0);
}

/* B panels that sc_direct_view_rows can describe are packed from that description (below). */
static int sc_direct_view_rows(const sc_view *v, int64_t j0, int64_t p0, int64_t kc, sc_bdirect *out);

#define SC_SFX(name) name##_generic
#define SC_TARGET
#include "conv_pack.h"
#undef SC_SFX
#undef SC_TARGET
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SC_SFX(name) name##_avx512
#define SC_TARGET __attribute__((target("avx512f")))
#define SC_PACK_AVX512 1
#include "conv_pack.h"
#undef SC_SFX
#undef SC_TARGET
#undef SC_PACK_AVX512
#define SC_HAVE_AVX512_PACK 1
#endif

/* The packers for this CPU (the AVX-512 ones copy runs with masked loads). */
typedef struct sc_packers {
    sc_gemm_pack_fn b_view, bt_view;
    void (*fill)(const sc_view *v, int64_t ci, int64_t ki, int64_t kj, const sc_seg *segs, int64_t nseg, float *out);
} sc_packers;

static sc_packers sc_packers_pick(void) {
#ifdef SC_HAVE_AVX512_PACK
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return (sc_packers){sc_pack_b_view_avx512, sc_pack_bt_view_avx512, sc_view_fill_avx512};
#endif
    return (sc_packers){sc_pack_b_view_generic, sc_pack_bt_view_generic, sc_view_fill_generic};
}

/* B = the view read in place (sc_bdirect): the panel [j0, j0 + 32) as two halves of 16
 * columns, each within one output row (one image when direct), stride 1. Row p of the
 * panel is base[h] + off[p], with the lanes that fall into the padding masked off. */
#define SC_DIRECT_K 16 /* largest kernel side read in place */

/* The 3x3 stride-1 same-size convolution over rows of 32, 16, 8 or 4 (the kernel's conv3
 * form); with rows of 8 or 4, a plane of a whole number of 16-pixel halves, so that no half
 * spans two images. */
static int sc_view_conv3(const sc_view *v) {
    return v->kh == 3 && v->kw == 3 && v->sh == 1 && v->sw == 1 && v->ph == 1 && v->pw == 1 && v->ow == v->w &&
           (v->w == 16 || v->w == 32 || ((v->w == 8 || v->w == 4) && v->hw % 16 == 0));
}

/* The general form: off and mask per depth row, for any stride-1 view whose 16-column halves
 * each lie in one output row, or in one image when rows are shorter than 16 pixels and
 * divide it (same-size views: then a half is 16 / w whole rows, and a lane's row and column
 * come from its position). */
static int sc_direct_view_rows(const sc_view *v, int64_t j0, int64_t p0, int64_t kc, sc_bdirect *out) {
    if (v->sh != 1 || v->sw != 1 || v->kh > SC_DIRECT_K || v->kw > SC_DIRECT_K) return 0;
    uint16_t cols[2][SC_DIRECT_K], rows[2][SC_DIRECT_K]; /* lane masks per kj and per ki */
    out->conv3 = 0;
    for (int h = 0; h < 2; h++) {
        const int64_t j = j0 + 16 * h, img = j / v->ohw, pix = j % v->ohw;
        const int64_t oy = v->direct ? 0 : pix / v->ow, ox = v->direct ? pix : pix % v->ow;
        const int short_rows = !v->direct && v->ow < 16 && 16 % v->ow == 0 && v->ow == v->w && ox == 0;
        if (v->direct || short_rows ? pix + 16 > v->ohw : ox + 16 > v->ow) return 0;
        out->base[h] = v->x + img * v->c * v->hw + (v->direct ? pix : oy * v->w + ox);
        for (int64_t ki = 0; ki < v->kh; ki++) { /* lanes t whose input row oy + t / ow - ph + ki exists */
            unsigned m = 0;
            for (int t = 0; t < 16; t++) {
                const int64_t iy = oy + (short_rows ? t / v->ow : 0) - v->ph + ki;
                m |= (v->direct || (iy >= 0 && iy < v->h) ? 1u : 0u) << t;
            }
            rows[h][ki] = (uint16_t)m;
        }
        for (int64_t kj = 0; kj < v->kw; kj++) { /* lanes t with 0 <= (ox + t) mod ow - pw + kj < w */
            unsigned m = 0;
            for (int t = 0; t < 16; t++) {
                const int64_t ix = (short_rows ? t % v->ow : ox + t) - v->pw + kj;
                m |= (v->direct || (ix >= 0 && ix < v->w) ? 1u : 0u) << t;
            }
            cols[h][kj] = (uint16_t)m;
        }
    }
    sc_rowpos q = sc_rowpos_of(v, p0);
    int64_t *off = (int64_t *)out->off;
    uint16_t *m0 = (uint16_t *)out->mask[0], *m1 = (uint16_t *)out->mask[1];
    for (int64_t p = 0; p < kc; p++, sc_next(v, &q)) {
        off[p] = q.ci * v->hw + (q.ki - v->ph) * v->w + (q.kj - v->pw);
        m0[p] = rows[0][q.ki] & cols[0][q.kj];
        m1[p] = rows[1][q.ki] & cols[1][q.kj];
    }
    return 1;
}

static int sc_direct_view(const void *ctx, int64_t j0, int64_t p0, int64_t kc, sc_bdirect *out) {
    const sc_view *v = ctx;
    if (sc_view_conv3(v) && p0 % 9 == 0 && kc % 9 == 0) {
        out->conv3 = (int)v->w;
        out->w = v->w;
        out->hw = v->hw;
        const float *first = v->x + (p0 / 9) * v->hw;
        for (int h = 0; h < 2; h++) {
            const int64_t j = j0 + 16 * h, img = j / v->ohw, pix = j % v->ohw, oy = pix / v->w;
            out->base[h] = first + img * v->c * v->hw + pix;
            unsigned bits = 0;
            for (int ki = 0; ki < 3; ki++) {
                bits |= (oy - 1 + ki >= 0 && oy - 1 + ki < v->h ? 1u : 0u) << ki;
                out->vmask[h][ki] = v->w < 16 ? (uint16_t)sc_conv3_rows_in(pix, v->w, v->h, ki) : 0;
            }
            out->row[h] = bits;
        }
        return 1;
    }
    return sc_direct_view_rows(v, j0, p0, kc, out);
}

/* ---- workspace ----------------------------------------------------------------------- */

static size_t sc_round16(size_t f) { return (f + 15) & ~(size_t)15; }

/* Backward data by phases: images per chunk, so that a phase's GEMM has about
 * SC_CONV_PHASE_COLS columns and the chunk's phase planes (its dx) stay within
 * SC_CONV_PHASE_CAP floats. */
static int64_t sc_phase_chunk(const supcon_conv_desc *d) {
    const int64_t hw = d->h * d->w, cols = (d->h / d->stride_h) * (d->w / d->stride_w);
    int64_t b = (SC_CONV_PHASE_COLS + (cols > 0 ? cols : 1) - 1) / (cols > 0 ? cols : 1);
    if (b > d->n) b = d->n;
    while (b > 1 && b * d->c_in * hw > SC_CONV_PHASE_CAP) b--;
    return b < 1 ? 1 : b;
}

/* The filter gradient: images per chunk and channels per slice of its column matrix. */
static void sc_dw_chunks(const supcon_conv_desc *d, int64_t ohw, int64_t *nb, int64_t *cs) {
    const int64_t kk = d->kh * d->kw;
    int64_t c = SC_CONV_SLICE_ROWS_DW / kk;
    *cs = c < 1 ? 1 : c > d->c_in ? d->c_in : c;
    int64_t b = (SC_CONV_COLS + ohw - 1) / ohw;
    if (b > d->n) b = d->n;
    while (b > 1 && *cs * kk * b * ohw > SC_CONV_COL_CAP) b--;
    *nb = b < 1 ? 1 : b;
}

/* Images per chunk: the block's dy planes of a chunk fit SC_DW3_PACK floats (L1), and the
 * chunk's packed x (three copies) SC_DW3S_CAP floats (8 MB: 64 images of 512 channels of 4x4
 * in one chunk; each chunk ends in a tree of lane sums per channel and kernel row). */
#define SC_DW3S_CAP ((int64_t)1 << 21)
static int64_t sc_dw3s_chunk(const supcon_conv_desc *d) {
    const int64_t hw = d->h * d->w;
    int64_t b = SC_DW3_PACK / hw;
    while (b > 1 && 3 * d->c_in * b * hw > SC_DW3S_CAP) b--;
    return b > d->n ? (d->n > 0 ? d->n : 1) : b;
}

static int sc_dw3_fits(const supcon_conv_desc *d);

/* Floats of the column buffer (strided backward data, filter gradient) and of dW^T. */
static void sc_ws_parts(const supcon_conv_desc *d, size_t *col, size_t *dwt) {
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d), kk = d->kh * d->kw;
    int64_t nb, cs;
    sc_dw_chunks(d, oh * ow, &nb, &cs);
    *col = sc_round16((size_t)(cs * kk * nb * oh * ow));
    if (d->stride_h > 1 || d->stride_w > 1) { /* the phase planes of a chunk */
        const size_t c2 = sc_round16((size_t)(sc_phase_chunk(d) * d->c_in * d->h * d->w));
        if (c2 > *col) *col = c2;
    }
    if (sc_dw3_fits(d) && d->stride_h == 1 && d->w < 16) { /* rows of 8 or 4: a chunk's packed x */
        const size_t c3 = sc_round16((size_t)(3 * d->c_in * sc_dw3s_chunk(d) * d->h * d->w));
        if (c3 > *col) *col = c3;
    }
    *dwt = sc_round16((size_t)(d->c_in * kk * d->c_out));
}

size_t sc_conv_f32_workspace_bytes(const supcon_conv_desc *d) {
    size_t col, dwt;
    sc_ws_parts(d, &col, &dwt);
    return (col + dwt + 16) * sizeof(float);
}

/* The workspace as its column buffer and dW^T, 64-byte aligned. */
static supcon_status sc_conv_ws(sc_cpu *st, const supcon_conv_desc *d, void *ws, size_t ws_bytes, float **col,
                                float **dwt) {
    const size_t need = sc_conv_f32_workspace_bytes(d);
    if (!ws || ws_bytes < need)
        return sc_cpu_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "conv2d workspace of %zu bytes, %zu needed",
                           ws ? ws_bytes : 0, need);
    size_t ncol, ndwt;
    sc_ws_parts(d, &ncol, &ndwt);
    *col = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    *dwt = *col + ncol;
    return SUPCON_OK;
}

/* ---- im2col for the filter gradient, one (image, input channel) plane per item ---------- */

typedef struct sc_col_job {
    const supcon_conv_desc *d;
    int64_t oh, ow, ohw, hw, kk;
    const float *x; /* (cnt, c_in, h, w): im2col source */
    float *col;     /* (cn kk, cnt ohw): the rows of channels [c0, c0 + cn) */
    int64_t cols, c0, cn;
} sc_col_job;

/* Items per pool chunk so that one chunk moves at least ~16K floats. */
static int64_t sc_grain(int64_t floats_per_item) {
    const int64_t g = ((int64_t)16 << 10) / (floats_per_item > 0 ? floats_per_item : 1);
    return g < 1 ? 1 : g;
}

/* One (image, channel) of the chunk per item: its kk rows of col, a run of output rows at a
 * time, filled as the packers fill their panels (masked loads; permutes for stride 2). */
#define SC_IM2COL_ROWS 64 /* output rows per run */
static void sc_im2col_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_col_job *j = arg;
    const supcon_conv_desc *d = j->d;
    const sc_view v = sc_view_of(j->x, d->c_in, d->h, d->w, d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h,
                                 d->pad_w);
    const sc_packers pk = sc_packers_pick();
    sc_seg segs[SC_IM2COL_ROWS];
    for (int64_t t = begin; t < end; t++) {
        const int64_t img = t / j->cn, c = t % j->cn;
        for (int64_t oy0 = 0; oy0 < j->oh; oy0 += SC_IM2COL_ROWS) {
            const int64_t rows = j->oh - oy0 < SC_IM2COL_ROWS ? j->oh - oy0 : SC_IM2COL_ROWS;
            const int64_t j0 = img * j->ohw + oy0 * j->ow, nseg = sc_segments(&v, j0, rows * j->ow, segs);
            for (int64_t ki = 0; ki < d->kh; ki++)
                for (int64_t kj = 0; kj < d->kw; kj++)
                    pk.fill(&v, j->c0 + c, ki, kj, segs, nseg,
                            j->col + (c * j->kk + ki * d->kw + kj) * j->cols + j0);
        }
    }
}

/* Rows [c0 kk, (c0 + cn) kk) of the column matrix of the cnt images at x into col, whose rows
 * are cnt oh ow long. */
static void sc_im2col(sc_cpu *st, const supcon_conv_desc *d, const float *x, int64_t cnt, int64_t c0, int64_t cn,
                      float *col) {
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d), kk = d->kh * d->kw;
    sc_col_job j = {.d = d, .oh = oh, .ow = ow, .ohw = oh * ow, .hw = d->h * d->w, .kk = kk, .x = x, .col = col,
                    .cols = cnt * oh * ow, .c0 = c0, .cn = cn};
    sc_pool_run(st->pool, cnt * cn, sc_grain(kk * oh * ow), sc_im2col_task, &j);
}


/* ---- the three passes ------------------------------------------------------------------ */

/* B = the view, for a GEMM of m rows: read in place by the 3x3 kernel, or in place through
 * masked loads when the rows are few (then packing, done once per panel and used by only m
 * rows, costs more than the slower loads), else packed. */
#define SC_DIRECT_ROWS 144

static sc_gemm_opnd sc_b_of(const sc_view *v, int64_t m) {
    const int conv3 = sc_view_conv3(v), unshifted = v->kh == 1 && v->kw == 1;
    return (sc_gemm_opnd){.pack = sc_packers_pick().b_view, .ctx = v,
                          .direct = conv3 || (unshifted && m <= SC_DIRECT_ROWS) ? sc_direct_view : NULL,
                          .kc_unit = conv3 || sc_view_conv3s2(v) ? 9 : 0};
}

supcon_status sc_conv_f32_forward(sc_cpu *st, const supcon_conv_desc *d, float *y, const float *x,
                                  const float *weight, void *ws, size_t ws_bytes) {
    float *col = NULL, *dwt = NULL;
    supcon_status s = sc_conv_ws(st, d, ws, ws_bytes, &col, &dwt);
    if (s != SUPCON_OK) return s;
    const sc_view v = sc_view_of(x, d->c_in, d->h, d->w, d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w);
    const int64_t k = d->c_in * v.kk;
    const sc_gemm_opnd a = {.p = weight, .ld = k};
    const sc_gemm_opnd b = sc_b_of(&v, d->c_out);
    const sc_gemm_out c = {.c = y, .ldc = v.ohw, .seg = v.ohw, .seg_stride = d->c_out * v.ohw};
    sc_sgemm_ex(st->pool, &st->gemm, d->c_out, d->n * v.ohw, k, 1.0f, &a, &b, 0.0f, &c);
    return SUPCON_OK;
}

/* ---- backward data by phases ------------------------------------------------------------ */

/* Along one axis (size, kernel k, stride s, padding pad), the positions i = s a + r of phase r
 * get dy[a - t] W[s t + r + pad] for the taps t in [lo, hi] (those with 0 <= s t + r + pad <
 * k); len is the number of such positions a. */
typedef struct sc_phase_axis {
    int64_t lo, hi, len;
} sc_phase_axis;

static int64_t sc_floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static sc_phase_axis sc_phase_axis_of(int64_t size, int64_t k, int64_t s, int64_t pad, int64_t r) {
    return (sc_phase_axis){.lo = -sc_floor_div(r + pad, s), .hi = sc_floor_div(k - 1 - r - pad, s),
                           .len = size / s + (r < size % s ? 1 : 0)};
}

/* The positions of the phases before r along an axis: where phase r starts. */
static int64_t sc_phase_start(int64_t size, int64_t s, int64_t r) {
    return r * (size / s) + (r < size % s ? r : size % s);
}

/* A of one phase, packed by each worker per depth block: row ci, depth q = co taps + ti tx + tj
 * holds W[co, ci, ky, kx] with ky = sy (hi_y - ti) + ry + pad_h, kx = sx (hi_x - tj) + rx +
 * pad_w (tap ti reads dy row a - hi_y + ti), that is tap index first - step_y ti - step_x tj.
 * With stride 1 this is W turned by 180 degrees and transposed. (Writing every phase's A out
 * once per call instead moves all of W through memory once more, which cost more.) */
typedef struct sc_phase_w {
    const float *w; /* (c_out, c_in, kh, kw) */
    int64_t c_in, kk, taps, tx, first, step_y, step_x;
} sc_phase_w;

static void sc_pack_a_phase(const void *ctx, float *dst, int64_t i0, int64_t nrows, int64_t p0, int64_t kc, int mr,
                            void (*rows)(float *, const float *, int64_t, int64_t, int64_t)) {
    const sc_phase_w *f = ctx;
    for (int64_t p = 0; p < kc; p++) {
        const int64_t q = p0 + p, co = q / f->taps, r = q % f->taps;
        const int64_t tap = f->first - f->step_y * (r / f->tx) - f->step_x * (r % f->tx);
        const float *src = f->w + (co * f->c_in + i0) * f->kk + tap;
        float *d = dst + p * mr;
        int64_t i = 0;
        for (; i < nrows; i++) d[i] = src[i * f->kk];
        for (; i < mr; i++) d[i] = 0.0f;
    }
}

/* A chunk's phase planes back into dx: per (image, channel) of the chunk, tmp holds the
 * planes of the phases (ry, rx) one after the other (ry major); a phase that no tap reaches
 * is zero and not stored. */
typedef struct sc_phase_job {
    const supcon_conv_desc *d;
    const float *tmp;
    float *dx;
    int accumulate;
    int64_t plane2[2][2]; /* stride 2 both ways: sc_phase_plane of the four phases */
} sc_phase_job;

/* Where phase (ry, rx)'s plane starts in a (image, channel) block of tmp, or -1 when it has
 * no taps. */
static int64_t sc_phase_plane(const supcon_conv_desc *d, int64_t ry, int64_t rx) {
    const sc_phase_axis py = sc_phase_axis_of(d->h, d->kh, d->stride_h, d->pad_h, ry);
    const sc_phase_axis px = sc_phase_axis_of(d->w, d->kw, d->stride_w, d->pad_w, rx);
    if (py.hi < py.lo || px.hi < px.lo) return -1;
    return sc_phase_start(d->h, d->stride_h, ry) * d->w + py.len * sc_phase_start(d->w, d->stride_w, rx);
}

/* out[2 b] = e[b], out[2 b + 1] = o[b], b < half (added to out with accumulate). */
static void sc_interleave2_generic(float *out, const float *e, const float *o, int64_t half, int accumulate) {
    for (int64_t b = 0; b < half; b++) {
        const float ve = e ? e[b] : 0.0f, vo = o ? o[b] : 0.0f;
        out[2 * b] = accumulate ? out[2 * b] + ve : ve;
        out[2 * b + 1] = accumulate ? out[2 * b + 1] + vo : vo;
    }
}

#ifdef SC_HAVE_AVX512_PACK
__attribute__((target("avx512f"))) static void sc_interleave2_avx512(float *out, const float *e, const float *o,
                                                                    int64_t half, int accumulate) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    for (int64_t b = 0; b < half; b += 16) {
        const int64_t n = half - b < 16 ? half - b : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        const __mmask16 m0 = (__mmask16)(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1u);
        const __mmask16 m1 = (__mmask16)(n <= 8 ? 0u : (1u << (2 * (n - 8))) - 1u);
        const __m512 ve = e ? _mm512_maskz_loadu_ps(m, e + b) : _mm512_setzero_ps();
        const __m512 vo = o ? _mm512_maskz_loadu_ps(m, o + b) : _mm512_setzero_ps();
        __m512 r0 = _mm512_permutex2var_ps(ve, lo, vo), r1 = _mm512_permutex2var_ps(ve, hi, vo);
        if (accumulate) {
            r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, out + 2 * b));
            r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, out + 2 * b + 16));
        }
        _mm512_mask_storeu_ps(out + 2 * b, m0, r0);
        _mm512_mask_storeu_ps(out + 2 * b + 16, m1, r1);
    }
}
#endif

static void sc_phase_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_phase_job *j = arg;
    const supcon_conv_desc *d = j->d;
    const int64_t hw = d->h * d->w, sy = d->stride_h, sx = d->stride_w;
    void (*pairs)(float *, const float *, const float *, int64_t, int) = sc_interleave2_generic;
#ifdef SC_HAVE_AVX512_PACK
    if (__builtin_cpu_supports("avx512f")) pairs = sc_interleave2_avx512;
#endif
    for (int64_t t = begin; t < end; t++) {
        const float *src = j->tmp + t * hw;
        float *dxp = j->dx + t * hw;
        for (int64_t iy = 0; iy < d->h; iy++) {
            const int64_t ry = iy % sy, a = iy / sy;
            float *out = dxp + iy * d->w;
            if (sy == 2 && sx == 2 && d->w % 2 == 0) { /* the shortcut's and the strided 3x3's case */
                const int64_t p0 = j->plane2[ry][0], p1 = j->plane2[ry][1], half = d->w / 2;
                pairs(out, p0 < 0 ? NULL : src + p0 + a * half, p1 < 0 ? NULL : src + p1 + a * half, half,
                      j->accumulate);
                continue;
            }
            for (int64_t ix = 0; ix < d->w; ix++) {
                const int64_t rx = ix % sx, p = sc_phase_plane(d, ry, rx);
                const int64_t len_x = d->w / sx + (rx < d->w % sx ? 1 : 0);
                const float v = p < 0 ? 0.0f : src[p + a * len_x + ix / sx];
                out[ix] = j->accumulate ? out[ix] + v : v;
            }
        }
    }
}

/* dx (+)= the transposed convolution of dy, chunk by chunk of images: each phase (ry, rx) with
 * taps is one GEMM, c_in x (chunk pixels of the phase) x c_out taps, its B dy read as a
 * stride-1 view (rows a - t), its C the phase's planes in tmp; then tmp is interleaved. */
static void sc_bwd_data_phases(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                               const float *weight, int accumulate, float *tmp) {
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d), hw = d->h * d->w;
    const int64_t sy = d->stride_h, sx = d->stride_w;
    const int one = sy == 1 && sx == 1; /* one phase: its planes are dx's, no interleaving */
    const int64_t nb = one ? d->n : sc_phase_chunk(d);
    sc_phase_job job = {.d = d, .tmp = tmp, .accumulate = accumulate};
    if (sy == 2 && sx == 2)
        for (int r = 0; r < 4; r++) job.plane2[r / 2][r % 2] = sc_phase_plane(d, r / 2, r % 2);
    for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
        const int64_t cnt = d->n - i0 < nb ? d->n - i0 : nb;
        for (int64_t ry = 0; ry < sy; ry++)
            for (int64_t rx = 0; rx < sx; rx++) {
                const sc_phase_axis py = sc_phase_axis_of(d->h, d->kh, sy, d->pad_h, ry);
                const sc_phase_axis px = sc_phase_axis_of(d->w, d->kw, sx, d->pad_w, rx);
                const int64_t plane = sc_phase_plane(d, ry, rx);
                if (plane < 0 || py.len == 0 || px.len == 0) continue; /* no taps: zeros */
                const int64_t ty = py.hi - py.lo + 1, tx = px.hi - px.lo + 1;
                /* view row (co, ti, tj), column (img, a, b): dy[img, co, a - hi + ti, b - hi + tj] */
                sc_view v = sc_view_of(dy + i0 * d->c_out * oh * ow, d->c_out, oh, ow, ty, tx, 1, 1, py.hi, px.hi);
                v.oh = py.len;
                v.ow = px.len;
                v.ohw = py.len * px.len;
                v.direct = v.direct && v.oh == oh && v.ow == ow;
                const int64_t first = (sy * py.hi + ry + d->pad_h) * d->kw + sx * px.hi + rx + d->pad_w;
                const sc_phase_w f = {weight, d->c_in, d->kh * d->kw, ty * tx, tx, first, sy * d->kw, sx};
                const sc_gemm_opnd a = {.pack = sc_pack_a_phase, .ctx = &f};
                const sc_gemm_opnd b = sc_b_of(&v, d->c_in);
                const sc_gemm_out c = {.c = one ? dx : tmp + plane, .ldc = hw, .seg = v.ohw,
                                       .seg_stride = d->c_in * hw};
                sc_sgemm_ex(st->pool, &st->gemm, d->c_in, cnt * v.ohw, d->c_out * ty * tx, 1.0f, &a, &b,
                            one && accumulate ? 1.0f : 0.0f, &c);
            }
        if (one) break;
        job.dx = dx + i0 * d->c_in * hw;
        sc_pool_run(st->pool, cnt * d->c_in, sc_grain(hw), sc_phase_task, &job);
    }
}

supcon_status sc_conv_f32_backward_data(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                                        const float *weight, int accumulate, void *ws, size_t ws_bytes) {
    float *col = NULL, *dwt = NULL;
    supcon_status s = sc_conv_ws(st, d, ws, ws_bytes, &col, &dwt);
    if (s != SUPCON_OK) return s;
    sc_bwd_data_phases(st, d, dx, dy, weight, accumulate, col);
    return SUPCON_OK;
}

typedef struct sc_dw_job {
    float *dw;        /* (c_out, K) */
    const float *dwt; /* (K, c_out) */
    int64_t k, c_out;
} sc_dw_job;

/* Items are blocks of SC_DW_OB output channels; within one, runs of SC_DW_RB rows of dW^T
 * (each read as one short run of a cache line) serve all of the block's channels. */
#define SC_DW_OB 16
#define SC_DW_RB 64

static void sc_dw_add_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dw_job *j = arg;
    for (int64_t b = begin; b < end; b++) {
        const int64_t o0 = b * SC_DW_OB, o1 = o0 + SC_DW_OB < j->c_out ? o0 + SC_DW_OB : j->c_out;
        for (int64_t r0 = 0; r0 < j->k; r0 += SC_DW_RB) {
            const int64_t r1 = r0 + SC_DW_RB < j->k ? r0 + SC_DW_RB : j->k;
            for (int64_t o = o0; o < o1; o++) {
                float *dw = j->dw + o * j->k;
                const float *src = j->dwt + o;
                for (int64_t r = r0; r < r1; r++) dw[r] += src[r * j->c_out];
            }
        }
    }
}

typedef struct sc_dw3_job {
    const supcon_conv_desc *d;
    float *dw;
    const float *x, *dy;
    int64_t cblocks;
} sc_dw3_job;

/* One item: SC_DW3_OB output channels times SC_DW3_CB input channels, over all images. */
static void sc_dw3_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dw3_job *j = arg;
    const supcon_conv_desc *d = j->d;
    for (int64_t t = begin; t < end; t++) {
        /* stride 2: input-channel blocks outermost, so that neighbouring items share x's planes
         * (four times the size of dy's) */
        const int64_t oblocks = d->c_out / SC_DW3_OB;
        const int64_t o0 = d->stride_h == 2 ? t % oblocks * SC_DW3_OB : t / j->cblocks * SC_DW3_OB;
        const int64_t c0 = d->stride_h == 2 ? t / oblocks * SC_DW3_CB : t % j->cblocks * SC_DW3_CB;
        const int64_t nc = d->c_in - c0 < SC_DW3_CB ? d->c_in - c0 : SC_DW3_CB;
        if (d->stride_h == 2)
            sc_dw3s2_block_avx512(j->dw, j->x, j->dy, d->n, d->c_in, d->c_out, d->h, d->w, o0, c0, nc);
        else
            sc_dw3_block_avx512(j->dw, j->x, j->dy, d->n, d->c_in, d->c_out, d->h, d->w, o0, c0, nc);
    }
}

/* Rows of 8 or 4, a chunk of images: items of SC_DW3_CB input channels copy their planes
 * into xpk (sc_dw3_short_pack_avx512), then items of SC_DW3_OB output channels run over all
 * of them. */
typedef struct sc_dw3s_job {
    const supcon_conv_desc *d;
    float *dw, *xpk;
    const float *x, *dy; /* the chunk's first image */
    int64_t cnt;
} sc_dw3s_job;

static void sc_dw3s_pack_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dw3s_job *j = arg;
    const int64_t c1 = end * SC_DW3_CB < j->d->c_in ? end * SC_DW3_CB : j->d->c_in;
    sc_dw3_short_pack_avx512(j->xpk, j->x, j->cnt, j->d->c_in, j->d->h, j->d->w, begin * SC_DW3_CB, c1);
}

static void sc_dw3s_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dw3s_job *j = arg;
    const supcon_conv_desc *d = j->d;
    for (int64_t t = begin; t < end; t++)
        sc_dw3_short_avx512(j->dw, j->xpk, j->dy, j->cnt, d->c_in, d->c_out, d->h, d->w, t * SC_DW3_OB);
}

static void sc_dw3_short(sc_cpu *st, const supcon_conv_desc *d, float *dw, const float *dy, const float *x,
                         float *xpk) {
    const int64_t hw = d->h * d->w, nb = sc_dw3s_chunk(d);
    for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
        sc_dw3s_job j = {d, dw, xpk, x + i0 * d->c_in * hw, dy + i0 * d->c_out * hw, d->n - i0 < nb ? d->n - i0 : nb};
        sc_pool_run(st->pool, (d->c_in + SC_DW3_CB - 1) / SC_DW3_CB, 1, sc_dw3s_pack_task, &j);
        sc_pool_run(st->pool, d->c_out / SC_DW3_OB, 1, sc_dw3s_task, &j);
    }
}

/* The 3x3 stride-1 same-size convolutions over rows of 32 or 16 pixels, or of 8 or 4 in
 * planes of 1 to 4 whole vectors of 16 (8x8 at most): conv_avx512.c. */
static int sc_dw3_fits(const supcon_conv_desc *d) {
    const int64_t hw = d->h * d->w;
    const int short_rows = (d->w == 8 || d->w == 4) && hw % 16 == 0 && hw <= 64;
    const int k3p1 = d->kh == 3 && d->kw == 3 && d->pad_h == 1 && d->pad_w == 1 && d->c_out % SC_DW3_OB == 0;
    const int s1 = d->stride_h == 1 && d->stride_w == 1 && (d->w == 16 || d->w == 32 || short_rows);
    /* stride 2 over rows of 32 (h even) or 16 (h a multiple of 4: two output rows a vector) */
    const int s2 = d->stride_h == 2 && d->stride_w == 2 && (d->w == 32 ? d->h % 2 == 0 : d->w == 16 && d->h % 4 == 0);
    return k3p1 && (s1 || s2) && sc_dw3_available();
}

/* Other filter gradients with planes of whole vectors: the lane kernel (conv_avx512.c) over
 * the column matrix, chunk by chunk and slice by slice as the GEMM route, or over the images
 * themselves for a 1x1 stride-1 convolution; dW is added to in place, not through dW^T. */
#define SC_DWL_ROWS 96 /* column-matrix rows per item */

typedef struct sc_dwl_job {
    sc_dwl_args a;
    int64_t oblocks, rows;
} sc_dwl_job;

static void sc_dwl_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dwl_job *j = arg;
    for (int64_t t = begin; t < end; t++) {
        const int64_t r0 = t / j->oblocks * SC_DWL_ROWS, nr = j->rows - r0 < SC_DWL_ROWS ? j->rows - r0 : SC_DWL_ROWS;
        sc_dwl_block_avx512(&j->a, t % j->oblocks * SC_DW3_OB, r0, nr);
    }
}

/* With fewer pixels than SC_DWL_MIN_PIXELS in all, each tree of lane sums serves too few
 * vectors, and the GEMM route (its depth the pixels) is faster. */
#define SC_DWL_MIN_PIXELS 512
static int sc_dwl_fits(const supcon_conv_desc *d) {
    const int64_t ohw = supcon_conv_out_h(d) * supcon_conv_out_w(d);
    return ohw % 16 == 0 && d->n * ohw >= SC_DWL_MIN_PIXELS && d->c_out % SC_DW3_OB == 0 && sc_dw3_available();
}

static void sc_dwl_run(sc_cpu *st, sc_dwl_job *j) {
    sc_pool_run(st->pool, j->oblocks * ((j->rows + SC_DWL_ROWS - 1) / SC_DWL_ROWS), 1, sc_dwl_task, j);
}

static void sc_dw_lanes(sc_cpu *st, const supcon_conv_desc *d, float *dw, const float *dy, const float *x,
                        float *col) {
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d), ohw = oh * ow, hw = d->h * d->w;
    const int64_t kk = d->kh * d->kw, k = d->c_in * kk;
    sc_dwl_job j = {.a = {.dw = dw, .ldw = k, .dy_img = d->c_out * ohw, .ohw = ohw}, .oblocks = d->c_out / SC_DW3_OB};
    if (kk == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0) {
        /* the images are the column matrix; chunks of a window, whose planes the items share */
        const int64_t nb = ohw < SC_DWL_WINDOW ? SC_DWL_WINDOW / ohw : 1;
        for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
            j.a.dy = dy + i0 * d->c_out * ohw;
            j.a.col = x + i0 * d->c_in * hw;
            j.a.col_img = d->c_in * hw;
            j.a.col_row = hw;
            j.a.n_img = d->n - i0 < nb ? d->n - i0 : nb;
            j.rows = d->c_in;
            sc_dwl_run(st, &j);
        }
        return;
    }
    int64_t nb, cs;
    sc_dw_chunks(d, ohw, &nb, &cs);
    for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
        const int64_t cnt = d->n - i0 < nb ? d->n - i0 : nb, cols = cnt * ohw;
        for (int64_t c0 = 0; c0 < d->c_in; c0 += cs) {
            const int64_t cn = d->c_in - c0 < cs ? d->c_in - c0 : cs;
            sc_im2col(st, d, x + i0 * d->c_in * hw, cnt, c0, cn, col);
            j.a.dw = dw + c0 * kk;
            j.a.dy = dy + i0 * d->c_out * ohw;
            j.a.col = col;
            j.a.col_img = ohw;
            j.a.col_row = cols;
            j.a.n_img = cnt;
            j.rows = cn * kk;
            sc_dwl_run(st, &j);
        }
    }
}

supcon_status sc_conv_f32_backward_filter(sc_cpu *st, const supcon_conv_desc *d, float *dweight,
                                          const float *dy, const float *x, void *ws, size_t ws_bytes) {
    float *col = NULL, *dwt = NULL;
    supcon_status s = sc_conv_ws(st, d, ws, ws_bytes, &col, &dwt);
    if (s != SUPCON_OK) return s;
    if (d->n <= 0) return SUPCON_OK;
    if (sc_dw3_fits(d)) {
        if (d->stride_h == 1 && d->w < 16) {
            sc_dw3_short(st, d, dweight, dy, x, col);
            return SUPCON_OK;
        }
        sc_dw3_job j = {d, dweight, x, dy, (d->c_in + SC_DW3_CB - 1) / SC_DW3_CB};
        sc_pool_run(st->pool, d->c_out / SC_DW3_OB * j.cblocks, 1, sc_dw3_task, &j);
        return SUPCON_OK;
    }
    if (sc_dwl_fits(d)) {
        sc_dw_lanes(st, d, dweight, dy, x, col);
        return SUPCON_OK;
    }
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d), ohw = oh * ow, kk = d->kh * d->kw;
    const int64_t k = d->c_in * kk;
    int64_t nb, cs;
    sc_dw_chunks(d, ohw, &nb, &cs);
    const sc_packers pk = sc_packers_pick();
    for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
        const int64_t cnt = d->n - i0 < nb ? d->n - i0 : nb, cols = cnt * ohw;
        const float *xi = x + i0 * d->c_in * d->h * d->w;
        /* dy of the chunk as (c_out, cols), read transposed: op(B) = dy^T (cols, c_out) */
        const sc_view vdy = sc_view_of(dy + i0 * d->c_out * ohw, d->c_out, oh, ow, 1, 1, 1, 1, 0, 0);
        const sc_gemm_opnd b = {.pack = pk.bt_view, .ctx = &vdy};
        const int direct = kk == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0;
        for (int64_t c0 = 0; c0 < d->c_in; c0 += cs) {
            const int64_t cn = d->c_in - c0 < cs ? d->c_in - c0 : cs;
            const float *rows = col;
            if (direct && cnt == 1) { /* 1x1 over one image: its planes are the column matrix */
                rows = xi + c0 * ohw;
            } else {
                sc_im2col(st, d, xi, cnt, c0, cn, col);
            }
            /* dW^T rows of the slice (+)= col dy^T */
            const sc_gemm_opnd a = {.p = rows, .ld = cols};
            const sc_gemm_out c = {.c = dwt + c0 * kk * d->c_out, .ldc = d->c_out};
            sc_sgemm_ex(st->pool, &st->gemm, cn * kk, d->c_out, cols, 1.0f, &a, &b, i0 == 0 ? 0.0f : 1.0f, &c);
        }
    }
    sc_dw_job j = {dweight, dwt, k, d->c_out};
    sc_pool_run(st->pool, (d->c_out + SC_DW_OB - 1) / SC_DW_OB, sc_grain(SC_DW_OB * k), sc_dw_add_task, &j);
    return SUPCON_OK;
}

/* ---- the backend's slots: float32, or SUPCON_PRECISION_BF16's rounding around it ----------- */

size_t sc_cpu_conv2d_workspace_bytes(void *state, const supcon_conv_desc *d) {
    const sc_cpu *st = state;
    return st->bf16_convs ? sc_conv_bf16_workspace_bytes(d) : sc_conv_f32_workspace_bytes(d);
}

supcon_status sc_cpu_conv2d_forward(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                     const float *weight, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    return st->bf16_convs ? sc_conv_bf16_forward(st, d, y, x, weight, ws, ws_bytes)
                          : sc_conv_f32_forward(st, d, y, x, weight, ws, ws_bytes);
}

supcon_status sc_cpu_conv2d_backward_data(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                          const float *weight, int accumulate, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    return st->bf16_convs ? sc_conv_bf16_backward_data(st, d, dx, dy, weight, accumulate, ws, ws_bytes)
                          : sc_conv_f32_backward_data(st, d, dx, dy, weight, accumulate, ws, ws_bytes);
}

supcon_status sc_cpu_conv2d_backward_filter(void *state, const supcon_conv_desc *d, float *dweight,
                                            const float *dy, const float *x, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    return st->bf16_convs ? sc_conv_bf16_backward_filter(st, d, dweight, dy, x, ws, ws_bytes)
                          : sc_conv_f32_backward_filter(st, d, dweight, dy, x, ws, ws_bytes);
}
