/* The CPU's convolutions under SUPCON_PRECISION_BF16 (conv.c's slots call them then): what a
 * GPU's bfloat16 convolution computes: the operands
 * (x or dy, and the weights) rounded to bfloat16, products summed in float32 (a product of two
 * bfloat16 values is exact in float32, so conv.c's kernels on the rounded copies do just that),
 * and the result rounded to bfloat16 before it is stored or added. The rounded copies live in
 * the workspace, after conv.c's part:
 *   xs  (n c_in h w)        rounded x; the data gradient's unrounded result
 *   ys  (n c_out oh ow)     rounded dy
 *   wts (c_out c_in kh kw)  rounded weights; the filter gradient's unrounded result */
#include <stdint.h>
#include <string.h>

#include "bf16.h"
#include "conv_bf16.h"

typedef struct sc_bf16_parts {
    size_t f32, xs, ys, wts; /* floats of each part, each a multiple of 16 (64 bytes) */
} sc_bf16_parts;

static size_t sc_r16(int64_t f) { return ((size_t)(f > 0 ? f : 0) + 15) & ~(size_t)15; }

static sc_bf16_parts sc_parts_of(const supcon_conv_desc *d) {
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d);
    sc_bf16_parts p = {sc_r16((int64_t)((sc_conv_f32_workspace_bytes(d) + 3) / sizeof(float))),
                       sc_r16(d->n * d->c_in * d->h * d->w), sc_r16(d->n * d->c_out * oh * ow),
                       sc_r16(d->c_out * d->c_in * d->kh * d->kw)};
    return p;
}

size_t sc_conv_bf16_workspace_bytes(const supcon_conv_desc *d) {
    const sc_bf16_parts p = sc_parts_of(d);
    return (p.f32 + p.xs + p.ys + p.wts + 16) * sizeof(float);
}

/* The workspace cut into its parts, 64-byte aligned; conv.c's part first. */
static supcon_status sc_bf16_ws(sc_cpu *st, const supcon_conv_desc *d, void *ws, size_t ws_bytes, float **f32,
                                float **xs, float **ys, float **wts) {
    const size_t need = sc_conv_bf16_workspace_bytes(d);
    if (!ws || ws_bytes < need)
        return sc_cpu_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "conv2d workspace of %zu bytes, %zu needed (bfloat16)",
                           ws ? ws_bytes : 0, need);
    const sc_bf16_parts p = sc_parts_of(d);
    *f32 = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    *xs = *f32 + p.f32;
    *ys = *xs + p.xs;
    *wts = *ys + p.ys;
    return SUPCON_OK;
}

typedef struct sc_round_job {
    float *dst;
    const float *src;
    int accumulate; /* dst += round(src) instead of dst = round(src) */
} sc_round_job;

#define SC_ROUND_GRAIN 16384

static void sc_round_task(void *arg, int64_t begin, int64_t end, int worker) {
    (void)worker;
    const sc_round_job *j = arg;
    if (j->accumulate)
        for (int64_t i = begin; i < end; i++) j->dst[i] += sc_bf16_round(j->src[i]);
    else
        for (int64_t i = begin; i < end; i++) j->dst[i] = sc_bf16_round(j->src[i]);
}

/* dst = round(src) (dst may be src), or dst += round(src), on the pool. */
static void sc_round(sc_cpu *st, float *dst, const float *src, int64_t n, int accumulate) {
    sc_round_job j = {dst, src, accumulate};
    if (n > 0) sc_pool_run(st->pool, n, SC_ROUND_GRAIN, sc_round_task, &j);
}

supcon_status sc_conv_bf16_forward(sc_cpu *st, const supcon_conv_desc *d, float *y, const float *x,
                                   const float *weight, void *ws, size_t ws_bytes) {
    float *f32, *xs, *ys, *wts;
    supcon_status s = sc_bf16_ws(st, d, ws, ws_bytes, &f32, &xs, &ys, &wts);
    if (s != SUPCON_OK) return s;
    const int64_t ny = d->n * d->c_out * supcon_conv_out_h(d) * supcon_conv_out_w(d);
    sc_round(st, xs, x, d->n * d->c_in * d->h * d->w, 0);
    sc_round(st, wts, weight, d->c_out * d->c_in * d->kh * d->kw, 0);
    s = sc_conv_f32_forward(st, d, y, xs, wts, f32, sc_conv_f32_workspace_bytes(d));
    if (s == SUPCON_OK) sc_round(st, y, y, ny, 0);
    return s;
}

supcon_status sc_conv_bf16_backward_data(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                                         const float *weight, int accumulate, void *ws, size_t ws_bytes) {
    float *f32, *xs, *ys, *wts;
    supcon_status s = sc_bf16_ws(st, d, ws, ws_bytes, &f32, &xs, &ys, &wts);
    if (s != SUPCON_OK) return s;
    const int64_t nx = d->n * d->c_in * d->h * d->w;
    sc_round(st, ys, dy, d->n * d->c_out * supcon_conv_out_h(d) * supcon_conv_out_w(d), 0);
    sc_round(st, wts, weight, d->c_out * d->c_in * d->kh * d->kw, 0);
    /* Accumulating, the rounded gradient is what is added, so it is made apart first. */
    float *out = accumulate ? xs : dx;
    s = sc_conv_f32_backward_data(st, d, out, ys, wts, 0, f32, sc_conv_f32_workspace_bytes(d));
    if (s == SUPCON_OK) sc_round(st, dx, out, nx, accumulate);
    return s;
}

supcon_status sc_conv_bf16_backward_filter(sc_cpu *st, const supcon_conv_desc *d, float *dweight, const float *dy,
                                           const float *x, void *ws, size_t ws_bytes) {
    float *f32, *xs, *ys, *wts;
    supcon_status s = sc_bf16_ws(st, d, ws, ws_bytes, &f32, &xs, &ys, &wts);
    if (s != SUPCON_OK) return s;
    const int64_t nw = d->c_out * d->c_in * d->kh * d->kw;
    sc_round(st, xs, x, d->n * d->c_in * d->h * d->w, 0);
    sc_round(st, ys, dy, d->n * d->c_out * supcon_conv_out_h(d) * supcon_conv_out_w(d), 0);
    memset(wts, 0, (size_t)nw * sizeof(float));
    s = sc_conv_f32_backward_filter(st, d, wts, ys, xs, f32, sc_conv_f32_workspace_bytes(d));
    if (s == SUPCON_OK) sc_round(st, dweight, wts, nw, 1);
    return s;
}
