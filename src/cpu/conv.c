/* Conv2d on the CPU (NCHW, no bias): im2col into the caller's workspace, then sc_sgemm, over
 * chunks of images so that small late-stage feature maps still give the GEMM wide matrices,
 * and slices of input channels so that each piece of the column matrix is still in cache
 * when the GEMM packs it (about one GEMM depth block). A 1x1 stride-1 unpadded conv reads
 * its input as the column matrix when a chunk is one image. Leaves out groups, dilation and
 * bias (the reference uses none).
 *
 * With K = c_in kh kw, P the pixels of a chunk (cnt images of oh ow), S a slice of input
 * channels (larger in the filter gradient, see SC_CONV_SLICE_ROWS_DW):
 *   forward          y (c_out, P)  (+)= W[:, S] (c_out, |S| kk) col_S (|S| kk, P)
 *   backward data    dcol_S        = W[:, S]^T dy (c_out, P), then col2im adds it into dx
 *   backward filter  dW^T[S] (|S| kk, c_out) (+)= col_S dy^T, added into dW at the end
 * Chunks and slices depend only on the descriptor, so results are identical for any number
 * of threads (each element is written by one worker, in a fixed order). */
#include <string.h>

#include "cpu_backend.h"
#include "ops.h"

/* A chunk aims at this many output pixels (GEMM columns) ... */
#define SC_CONV_COLS 1024
/* ... while a slice of its column matrix stays under this many floats (4 MB). */
#define SC_CONV_COL_CAP ((int64_t)1 << 20)
/* Rows of the column matrix per slice: the GEMM's depth block (gemm.c, SC_KC) where the
 * slice is the GEMM's depth (forward) or rows of a cheap operand (backward data). In the
 * filter gradient the slice is the GEMM's row operand, packed once per row block and
 * column chunk: slices of several row blocks keep the GEMM from splitting columns (and
 * packing the slice twice) on a few threads. */
#define SC_CONV_SLICE_ROWS 256
#define SC_CONV_SLICE_ROWS_DW 1024

typedef struct sc_conv_plan {
    int64_t oh, ow, ohw, hw, kk, k; /* k = c_in kh kw */
    int64_t nb;                     /* images per chunk */
    int64_t cs, cs_dw;              /* input channels per slice: forward/data, filter */
    int direct;                     /* 1x1, stride 1, no padding: col is x itself */
    size_t col_floats, ybuf_floats, dwt_floats;
} sc_conv_plan;

static size_t sc_round16(size_t f) { return (f + 15) & ~(size_t)15; }

static sc_conv_plan sc_conv_plan_of(const supcon_conv_desc *d) {
    sc_conv_plan p;
    p.oh = supcon_conv_out_h(d);
    p.ow = supcon_conv_out_w(d);
    p.ohw = p.oh * p.ow;
    p.hw = d->h * d->w;
    p.kk = d->kh * d->kw;
    p.k = d->c_in * p.kk;
    p.direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0;
    p.cs = SC_CONV_SLICE_ROWS / p.kk;
    p.cs = p.cs < 1 ? 1 : p.cs > d->c_in ? d->c_in : p.cs;
    p.cs_dw = SC_CONV_SLICE_ROWS_DW / p.kk;
    p.cs_dw = p.cs_dw < 1 ? 1 : p.cs_dw > d->c_in ? d->c_in : p.cs_dw;
    int64_t nb = (SC_CONV_COLS + p.ohw - 1) / p.ohw;
    if (nb > d->n) nb = d->n;
    while (nb > 1 && p.cs_dw * p.kk * nb * p.ohw > SC_CONV_COL_CAP) nb--;
    p.nb = nb < 1 ? 1 : nb;
    const int64_t cols = p.nb * p.ohw;
    p.col_floats = sc_round16((size_t)(p.cs_dw * p.kk * cols));
    p.ybuf_floats = p.nb > 1 ? sc_round16((size_t)(d->c_out * cols)) : 0;
    p.dwt_floats = sc_round16((size_t)(p.k * d->c_out));
    return p;
}

size_t sc_cpu_conv2d_workspace_bytes(void *state, const supcon_conv_desc *d) {
    const sc_conv_plan p = sc_conv_plan_of(d);
    return (p.col_floats + p.ybuf_floats + p.dwt_floats + 16) * sizeof(float);
}

/* The workspace carved into its parts, 64-byte aligned. */
typedef struct sc_conv_ws {
    float *col, *ybuf, *dwt;
} sc_conv_ws;

static supcon_status sc_conv_carve(sc_cpu *st, const supcon_conv_desc *d, const sc_conv_plan *p, void *ws,
                                   size_t ws_bytes, sc_conv_ws *out) {
    const size_t need = sc_cpu_conv2d_workspace_bytes(st, d);
    if (!ws || ws_bytes < need)
        return sc_cpu_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "conv2d workspace of %zu bytes, %zu needed",
                           ws ? ws_bytes : 0, need);
    float *base = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    out->col = base;
    out->ybuf = base + p->col_floats;
    out->dwt = out->ybuf + p->ybuf_floats;
    return SUPCON_OK;
}

/* ---- im2col / col2im, one (image, input channel) plane per task item --------------------- */

typedef struct sc_col_job {
    const supcon_conv_desc *d;
    const sc_conv_plan *p;
    const float *x; /* (cnt, c_in, h, w): im2col source */
    float *dx;      /* (cnt, c_in, h, w): col2im target */
    float *col;     /* (cn kk, cols): the rows of channels [c0, c0 + cn) */
    int64_t cols;   /* cnt * ohw, the row stride of col */
    int64_t c0, cn;
    int accumulate;
} sc_col_job;

/* Valid output columns [lo, hi) of a row whose input column is o * stride + off. */
static void sc_valid_range(int64_t ow, int64_t stride, int64_t off, int64_t w, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = w - off <= 0 ? 0 : (w - off + stride - 1) / stride; /* first o with o s + off >= w */
    if (b > ow) b = ow;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static void sc_im2col_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_col_job *j = arg;
    const supcon_conv_desc *d = j->d;
    const sc_conv_plan *p = j->p;
    for (int64_t t = begin; t < end; t++) {
        const int64_t img = t / j->cn, c = t % j->cn;
        const float *xp = j->x + (img * d->c_in + j->c0 + c) * p->hw; /* (h, w) */
        for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++) {
                float *row = j->col + (c * p->kk + ki * d->kw + kj) * j->cols + img * p->ohw; /* (oh, ow) */
                const int64_t off = kj - d->pad_w;
                int64_t lo, hi;
                sc_valid_range(p->ow, d->stride_w, off, d->w, &lo, &hi);
                for (int64_t oy = 0; oy < p->oh; oy++) {
                    float *dst = row + oy * p->ow;
                    const int64_t iy = oy * d->stride_h - d->pad_h + ki;
                    if (iy < 0 || iy >= d->h) {
                        memset(dst, 0, (size_t)p->ow * sizeof(float));
                        continue;
                    }
                    const float *src = xp + iy * d->w;
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                    if (d->stride_w == 1 && hi > lo)
                        memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * d->stride_w + off];
                    for (int64_t ox = hi; ox < p->ow; ox++) dst[ox] = 0.0f;
                }
            }
    }
}

static void sc_col2im_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_col_job *j = arg;
    const supcon_conv_desc *d = j->d;
    const sc_conv_plan *p = j->p;
    for (int64_t t = begin; t < end; t++) {
        const int64_t img = t / j->cn, c = t % j->cn;
        float *dxp = j->dx + (img * d->c_in + j->c0 + c) * p->hw; /* (h, w) */
        if (!j->accumulate) memset(dxp, 0, (size_t)p->hw * sizeof(float));
        for (int64_t ki = 0; ki < d->kh; ki++)
            for (int64_t kj = 0; kj < d->kw; kj++) {
                const float *row = j->col + (c * p->kk + ki * d->kw + kj) * j->cols + img * p->ohw;
                const int64_t off = kj - d->pad_w;
                int64_t lo, hi;
                sc_valid_range(p->ow, d->stride_w, off, d->w, &lo, &hi);
                for (int64_t oy = 0; oy < p->oh; oy++) {
                    const int64_t iy = oy * d->stride_h - d->pad_h + ki;
                    if (iy < 0 || iy >= d->h) continue;
                    const float *src = row + oy * p->ow;
                    float *dst = dxp + iy * d->w;
                    if (hi <= lo) continue;
                    if (d->stride_w == 1) {
                        float *dd = dst + lo + off;
                        const float *ss = src + lo;
#pragma omp simd
                        for (int64_t ox = 0; ox < hi - lo; ox++) dd[ox] += ss[ox];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * d->stride_w + off] += src[ox];
                    }
                }
            }
    }
}

/* Items per pool chunk so that one chunk moves at least ~16K floats. */
static int64_t sc_grain(int64_t floats_per_item) {
    const int64_t g = ((int64_t)16 << 10) / (floats_per_item > 0 ? floats_per_item : 1);
    return g < 1 ? 1 : g;
}

/* col (cn kk, cnt ohw) = the im2col rows of channels [c0, c0 + cn) of cnt images. */
static void sc_im2col(sc_cpu *st, const supcon_conv_desc *d, const sc_conv_plan *p, float *col, const float *x,
                      int64_t cnt, int64_t c0, int64_t cn) {
    sc_col_job j = {.d = d, .p = p, .x = x, .col = col, .cols = cnt * p->ohw, .c0 = c0, .cn = cn};
    sc_pool_run(st->pool, cnt * cn, sc_grain(p->kk * p->ohw), sc_im2col_task, &j);
}

/* ---- (cnt, ch, ohw) <-> (ch, cnt ohw): images side by side as GEMM columns ------------ */

typedef struct sc_gather_job {
    float *dst;
    const float *src;
    int64_t ch, ohw, cnt;
    int to_cols; /* 1: (cnt, ch, ohw) -> (ch, cnt ohw); 0: back */
} sc_gather_job;

static void sc_gather_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gather_job *g = arg;
    const size_t bytes = (size_t)g->ohw * sizeof(float);
    for (int64_t t = begin; t < end; t++) {
        const int64_t img = t / g->ch, ch = t % g->ch;
        const int64_t a = (img * g->ch + ch) * g->ohw, b = ch * g->cnt * g->ohw + img * g->ohw;
        if (g->to_cols)
            memcpy(g->dst + b, g->src + a, bytes);
        else
            memcpy(g->dst + a, g->src + b, bytes);
    }
}

static void sc_gather(sc_cpu *st, float *dst, const float *src, int64_t ch, int64_t ohw, int64_t cnt,
                      int to_cols) {
    sc_gather_job g = {dst, src, ch, ohw, cnt, to_cols};
    sc_pool_run(st->pool, cnt * ch, sc_grain(ohw), sc_gather_task, &g);
}

/* ---- the three passes ------------------------------------------------------------------ */

supcon_status sc_cpu_conv2d_forward(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                     const float *weight, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    const sc_conv_plan p = sc_conv_plan_of(d);
    sc_conv_ws w = {0};
    supcon_status s = sc_conv_carve(st, d, &p, ws, ws_bytes, &w);
    if (s != SUPCON_OK) return s;
    for (int64_t i0 = 0; i0 < d->n; i0 += p.nb) {
        const int64_t cnt = d->n - i0 < p.nb ? d->n - i0 : p.nb, cols = cnt * p.ohw;
        const float *xi = x + i0 * d->c_in * p.hw;
        float *yi = y + i0 * d->c_out * p.ohw;
        float *out = cnt == 1 ? yi : w.ybuf; /* (c_out, cols) */
        if (p.direct && cnt == 1) {
            sc_sgemm(st->pool, &st->gemm, 0, 0, d->c_out, cols, p.k, 1.0f, weight, p.k, xi, cols, 0.0f, out, cols);
        } else {
            for (int64_t c0 = 0; c0 < d->c_in; c0 += p.cs) {
                const int64_t cn = d->c_in - c0 < p.cs ? d->c_in - c0 : p.cs;
                sc_im2col(st, d, &p, w.col, xi, cnt, c0, cn);
                sc_sgemm(st->pool, &st->gemm, 0, 0, d->c_out, cols, cn * p.kk, 1.0f, weight + c0 * p.kk, p.k, w.col,
                         cols, c0 == 0 ? 0.0f : 1.0f, out, cols);
            }
        }
        if (cnt > 1) sc_gather(st, yi, w.ybuf, d->c_out, p.ohw, cnt, 0);
    }
    return SUPCON_OK;
}

supcon_status sc_cpu_conv2d_backward_data(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                          const float *weight, int accumulate, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    const sc_conv_plan p = sc_conv_plan_of(d);
    sc_conv_ws w = {0};
    supcon_status s = sc_conv_carve(st, d, &p, ws, ws_bytes, &w);
    if (s != SUPCON_OK) return s;
    for (int64_t i0 = 0; i0 < d->n; i0 += p.nb) {
        const int64_t cnt = d->n - i0 < p.nb ? d->n - i0 : p.nb, cols = cnt * p.ohw;
        float *dxi = dx + i0 * d->c_in * p.hw;
        const float *dyi = dy + i0 * d->c_out * p.ohw;
        if (cnt > 1) {
            sc_gather(st, w.ybuf, dyi, d->c_out, p.ohw, cnt, 1);
            dyi = w.ybuf;
        }
        if (p.direct && cnt == 1) { /* dx (c_in, hw) = W^T dy, straight into place */
            sc_sgemm(st->pool, &st->gemm, 1, 0, d->c_in, cols, d->c_out, 1.0f, weight, p.k, dyi, cols,
                     accumulate ? 1.0f : 0.0f, dxi, cols);
            continue;
        }
        for (int64_t c0 = 0; c0 < d->c_in; c0 += p.cs) {
            const int64_t cn = d->c_in - c0 < p.cs ? d->c_in - c0 : p.cs;
            sc_sgemm(st->pool, &st->gemm, 1, 0, cn * p.kk, cols, d->c_out, 1.0f, weight + c0 * p.kk, p.k, dyi, cols,
                     0.0f, w.col, cols);
            sc_col_job j = {.d = d, .p = &p, .dx = dxi, .col = w.col, .cols = cols, .c0 = c0, .cn = cn,
                            .accumulate = accumulate};
            sc_pool_run(st->pool, cnt * cn, sc_grain(p.kk * p.ohw), sc_col2im_task, &j);
        }
    }
    return SUPCON_OK;
}

typedef struct sc_dw_job {
    float *dw;        /* (c_out, K) */
    const float *dwt; /* (K, c_out) */
    int64_t k, c_out;
} sc_dw_job;

static void sc_dw_add_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_dw_job *j = arg;
    for (int64_t o = begin; o < end; o++)
        for (int64_t r = 0; r < j->k; r++) j->dw[o * j->k + r] += j->dwt[r * j->c_out + o];
}

supcon_status sc_cpu_conv2d_backward_filter(void *state, const supcon_conv_desc *d, float *dweight,
                                            const float *dy, const float *x, void *ws, size_t ws_bytes) {
    sc_cpu *st = state;
    const sc_conv_plan p = sc_conv_plan_of(d);
    sc_conv_ws w = {0};
    supcon_status s = sc_conv_carve(st, d, &p, ws, ws_bytes, &w);
    if (s != SUPCON_OK) return s;
    for (int64_t i0 = 0; i0 < d->n; i0 += p.nb) {
        const int64_t cnt = d->n - i0 < p.nb ? d->n - i0 : p.nb, cols = cnt * p.ohw;
        const float *xi = x + i0 * d->c_in * p.hw;
        const float *dyi = dy + i0 * d->c_out * p.ohw;
        const float beta = i0 == 0 ? 0.0f : 1.0f;
        if (cnt > 1) {
            sc_gather(st, w.ybuf, dyi, d->c_out, p.ohw, cnt, 1);
            dyi = w.ybuf;
        }
        /* dW^T rows (+)= col rows dy^T; dy (c_out, cols) is op(B) transposed. */
        if (p.direct && cnt == 1) {
            sc_sgemm(st->pool, &st->gemm, 0, 1, p.k, d->c_out, cols, 1.0f, xi, cols, dyi, cols, beta, w.dwt,
                     d->c_out);
            continue;
        }
        for (int64_t c0 = 0; c0 < d->c_in; c0 += p.cs_dw) {
            const int64_t cn = d->c_in - c0 < p.cs_dw ? d->c_in - c0 : p.cs_dw;
            sc_im2col(st, d, &p, w.col, xi, cnt, c0, cn);
            sc_sgemm(st->pool, &st->gemm, 0, 1, cn * p.kk, d->c_out, cols, 1.0f, w.col, cols, dyi, cols, beta,
                     w.dwt + c0 * p.kk * d->c_out, d->c_out);
        }
    }
    if (d->n > 0) {
        sc_dw_job j = {dweight, w.dwt, p.k, d->c_out};
        sc_pool_run(st->pool, d->c_out, sc_grain(p.k), sc_dw_add_task, &j);
    }
    return SUPCON_OK;
}
