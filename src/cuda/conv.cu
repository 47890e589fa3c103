/* Conv2d on CUDA through cuDNN's convolution API (float32 NCHW, no bias, cross-correlation as
 * PyTorch): one plan per shape holds the descriptors and cuDNN's ranked algorithms for the
 * three calls, chosen once by its heuristics (or, with conv_find, by timing them as
 * cudnn.benchmark does) and kept in a small table in the state. TF32 tensor cores only when
 * the context allows them (SUPCON_PRECISION_TF32). Under SUPCON_PRECISION_BF16 the plans are
 * bfloat16 (cuDNN's PSEUDO_BFLOAT16 configuration: bfloat16 tensors, float32 sums): each call
 * rounds its float32 operands into bfloat16 copies at the front of the workspace, channels
 * last unless the state says NCHW, and brings the bfloat16 result back into float32 NCHW
 * (bf16.cu), which is what the CPU's conv_bf16.c computes. Leaves out groups and dilation. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "ops.h"

/* Shapes remembered per state: a ResNet-50 at two batch sizes (training and evaluation)
 * has fewer than 60 distinct convolutions. Past that the oldest plan is replaced. */
#define SC_CONV_PLANS 96
/* Room for every algorithm cuDNN knows for one direction (8 forward, 6 and 7 backward). */
#define SC_CONV_ALGOS 12
/* The workspace asked for (conv2d_workspace_bytes) never exceeds this: algorithms that
 * want more (some FFT variants) are passed over for the next in cuDNN's ranking. */
#define SC_CUDA_CONV_WS_CAP ((size_t)512 << 20)

typedef struct sc_algo {
    int algo;             /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    size_t bytes;         /* workspace it needs */
    int deterministic;    /* cuDNN's CUDNN_DETERMINISTIC */
    cudnnMathType_t math; /* the math type cuDNN ranked it with (set before the call under TF32) */
} sc_algo;

typedef struct sc_conv_plan {
    int used;
    supcon_conv_desc d;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    sc_algo fwd[SC_CONV_ALGOS], bwd_data[SC_CONV_ALGOS], bwd_filter[SC_CONV_ALGOS];
    int n_fwd, n_bwd_data, n_bwd_filter; /* in cuDNN's order, fastest first */
    int rows; /* BF16: the bfloat16 copies are channels last (NHWC, KRSC) */
} sc_conv_plan;

struct sc_conv_cache {
    sc_conv_plan plans[SC_CONV_PLANS];
    int next; /* the slot a new plan takes when the table is full (round robin) */
};

static void sc_plan_clear(sc_conv_plan *p)
{
    if (p->x)
        (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->y)
        (void)cudnnDestroyTensorDescriptor(p->y);
    if (p->w)
        (void)cudnnDestroyFilterDescriptor(p->w);
    if (p->conv)
        (void)cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

supcon_status sc_cuda_conv_cache_create(sc_cuda_state *st)
{
    st->convs = (sc_conv_cache *)calloc(1, sizeof *st->convs);
    if (!st->convs)
        return sc_cuda_fail(st, SUPCON_ERR_OUT_OF_MEMORY, "out of host memory for the convolution plans");
    return SUPCON_OK;
}

void sc_cuda_conv_cache_destroy(sc_cuda_state *st)
{
    if (!st->convs)
        return;
    for (int i = 0; i < SC_CONV_PLANS; i++)
        sc_plan_clear(&st->convs->plans[i]);
    free(st->convs);
    st->convs = NULL;
}

/* Tensor cores: TF32 for float32 data when allowed, bfloat16 ones for the bfloat16 plans. */
static int sc_tensor_ops(const sc_cuda_state *st)
{
    return st->allow_tf32 || st->bf16_convs;
}

/* Strict float32 unless tensor cores are allowed: a perf result of a tensor-op math type
 * would round float32 inputs to TF32. */
static int sc_math_ok(const sc_cuda_state *st, cudnnMathType_t m)
{
    return sc_tensor_ops(st) || (m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

/* With tensor cores cuDNN ranks (algorithm, math type) pairs, and a pair runs as ranked only
 * with the descriptor set to its math type (its workspace is measured the same way). In
 * float32 the descriptor stays CUDNN_FMA_MATH whatever a result says. */
static cudnnStatus_t sc_use_math(const sc_cuda_state *st, sc_conv_plan *p, cudnnMathType_t m)
{
    return sc_tensor_ops(st) ? cudnnSetConvolutionMathType(p->conv, m) : CUDNN_STATUS_SUCCESS;
}

/* The bfloat16 copies are channels last (NHWC, filters KRSC). */
static int sc_bf16_rows(const sc_cuda_state *st)
{
    return st->bf16_convs && st->bf16_nhwc;
}

/* The bfloat16 copies of one call (x, y or dy, the weights), each at a 256-byte boundary. */
static size_t sc_align256(size_t b)
{
    return (b + 255) & ~(size_t)255;
}

static size_t sc_bf16_part(int64_t count)
{
    return sc_align256((size_t)count * 2);
}

/* Bytes at the front of the workspace for the bfloat16 copies: 0 in float32 and TF32. */
static size_t sc_staging_bytes(const sc_cuda_state *st, const supcon_conv_desc *d)
{
    if (!st->bf16_convs)
        return 0;
    return sc_bf16_part(d->n * d->c_in * d->h * d->w) +
           sc_bf16_part(d->n * d->c_out * supcon_conv_out_h(d) * supcon_conv_out_w(d)) +
           sc_bf16_part(d->c_out * d->c_in * d->kh * d->kw) + 256; /* + 256: aligning the start */
}

#define SC_DNN(call)                                                                                 \
    do {                                                                                             \
        supcon_status sc_s_ = sc_cudnn_check(st, (call), #call);                                     \
        if (sc_s_ != SUPCON_OK)                                                                      \
            return sc_s_;                                                                            \
    } while (0)

/* cuDNN's ranking for one direction: measured (conv_find; cuDNN allocates what the timing
 * runs need, once per shape) when that works, else its heuristics. */
static cudnnStatus_t sc_rank_fwd(sc_cuda_state *st, sc_conv_plan *p, cudnnConvolutionFwdAlgoPerf_t *perf, int *got)
{
    if (st->conv_find &&
        cudnnFindConvolutionForwardAlgorithm(st->dnn, p->x, p->w, p->conv, p->y, SC_CONV_ALGOS, got, perf) ==
            CUDNN_STATUS_SUCCESS &&
        *got > 0)
        return CUDNN_STATUS_SUCCESS;
    return cudnnGetConvolutionForwardAlgorithm_v7(st->dnn, p->x, p->w, p->conv, p->y, SC_CONV_ALGOS, got, perf);
}

static cudnnStatus_t sc_rank_bwd_data(sc_cuda_state *st, sc_conv_plan *p, cudnnConvolutionBwdDataAlgoPerf_t *perf,
                                      int *got)
{
    if (st->conv_find &&
        cudnnFindConvolutionBackwardDataAlgorithm(st->dnn, p->w, p->y, p->conv, p->x, SC_CONV_ALGOS, got, perf) ==
            CUDNN_STATUS_SUCCESS &&
        *got > 0)
        return CUDNN_STATUS_SUCCESS;
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(st->dnn, p->w, p->y, p->conv, p->x, SC_CONV_ALGOS, got, perf);
}

static cudnnStatus_t sc_rank_bwd_filter(sc_cuda_state *st, sc_conv_plan *p,
                                        cudnnConvolutionBwdFilterAlgoPerf_t *perf, int *got)
{
    if (st->conv_find &&
        cudnnFindConvolutionBackwardFilterAlgorithm(st->dnn, p->x, p->y, p->conv, p->w, SC_CONV_ALGOS, got, perf) ==
            CUDNN_STATUS_SUCCESS &&
        *got > 0)
        return CUDNN_STATUS_SUCCESS;
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(st->dnn, p->x, p->y, p->conv, p->w, SC_CONV_ALGOS, got,
                                                         perf);
}

static supcon_status sc_plan_algos(sc_cuda_state *st, sc_conv_plan *p)
{
    int got = 0;
    /* Each ranking starts from the descriptor as made (CUDNN_DEFAULT_MATH under tensor cores),
     * not from the math type of the previous direction's last result: with CUDNN_FMA_MATH left
     * behind, the backward directions would be ranked, and run, without tensor cores. */
    const cudnnMathType_t ranked = sc_tensor_ops(st) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    {
        SC_DNN(sc_use_math(st, p, ranked));
        cudnnConvolutionFwdAlgoPerf_t perf[SC_CONV_ALGOS];
        SC_DNN(sc_rank_fwd(st, p, perf, &got));
        for (int i = 0; i < got && i < SC_CONV_ALGOS; i++) {
            size_t bytes = 0;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !sc_math_ok(st, perf[i].mathType) ||
                sc_use_math(st, p, perf[i].mathType) != CUDNN_STATUS_SUCCESS ||
                cudnnGetConvolutionForwardWorkspaceSize(st->dnn, p->x, p->w, p->conv, p->y, perf[i].algo,
                                                        &bytes) != CUDNN_STATUS_SUCCESS)
                continue;
            p->fwd[p->n_fwd++] = {(int)perf[i].algo, bytes, perf[i].determinism == CUDNN_DETERMINISTIC,
                                  perf[i].mathType};
        }
    }
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[SC_CONV_ALGOS];
        SC_DNN(sc_use_math(st, p, ranked));
        SC_DNN(sc_rank_bwd_data(st, p, perf, &got));
        for (int i = 0; i < got && i < SC_CONV_ALGOS; i++) {
            size_t bytes = 0;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !sc_math_ok(st, perf[i].mathType) ||
                sc_use_math(st, p, perf[i].mathType) != CUDNN_STATUS_SUCCESS ||
                cudnnGetConvolutionBackwardDataWorkspaceSize(st->dnn, p->w, p->y, p->conv, p->x, perf[i].algo,
                                                             &bytes) != CUDNN_STATUS_SUCCESS)
                continue;
            p->bwd_data[p->n_bwd_data++] = {(int)perf[i].algo, bytes, perf[i].determinism == CUDNN_DETERMINISTIC,
                                            perf[i].mathType};
        }
    }
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[SC_CONV_ALGOS];
        SC_DNN(sc_use_math(st, p, ranked));
        SC_DNN(sc_rank_bwd_filter(st, p, perf, &got));
        for (int i = 0; i < got && i < SC_CONV_ALGOS; i++) {
            size_t bytes = 0;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || !sc_math_ok(st, perf[i].mathType) ||
                sc_use_math(st, p, perf[i].mathType) != CUDNN_STATUS_SUCCESS ||
                cudnnGetConvolutionBackwardFilterWorkspaceSize(st->dnn, p->x, p->y, p->conv, p->w, perf[i].algo,
                                                               &bytes) != CUDNN_STATUS_SUCCESS)
                continue;
            p->bwd_filter[p->n_bwd_filter++] = {(int)perf[i].algo, bytes,
                                                perf[i].determinism == CUDNN_DETERMINISTIC, perf[i].mathType};
        }
    }
    if (!p->n_fwd || !p->n_bwd_data || !p->n_bwd_filter)
        return sc_cuda_fail(st, SUPCON_ERR_UNSUPPORTED,
                            "cuDNN offers no %s algorithm for this convolution (%d forward, %d backward-data, "
                            "%d backward-filter)",
                            st->bf16_convs ? "bfloat16" : "float32", p->n_fwd, p->n_bwd_data, p->n_bwd_filter);
    return SUPCON_OK;
}

static supcon_status sc_plan_fill(sc_cuda_state *st, sc_conv_plan *p, const supcon_conv_desc *d, int rows)
{
    const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d);
    const int64_t dims[] = {d->n, d->c_in, d->h, d->w, d->c_out, d->kh, d->kw, d->stride_h, d->stride_w,
                            d->pad_h, d->pad_w, oh, ow};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i] > INT_MAX || dims[i] < (i >= 9 && i < 11 ? 0 : 1))
            return sc_cuda_fail(st, SUPCON_ERR_SHAPE,
                                "conv2d (n %lld, c_in %lld, %lldx%lld, c_out %lld, kernel %lldx%lld, stride %lldx%lld, "
                                "pad %lldx%lld) is outside what cuDNN takes",
                                (long long)d->n, (long long)d->c_in, (long long)d->h, (long long)d->w,
                                (long long)d->c_out, (long long)d->kh, (long long)d->kw, (long long)d->stride_h,
                                (long long)d->stride_w, (long long)d->pad_h, (long long)d->pad_w);
    /* the transposing casts tile channels (on the way in) and pixels (on the way out) by 32 on
     * a grid of at most 65535 rows (NCHW copies then) */
    const int64_t most_rows = (int64_t)65535 * 32;
    if (rows && (d->c_in > most_rows || d->c_out > most_rows || d->h * d->w > most_rows || oh * ow > most_rows))
        return sc_cuda_fail(st, SUPCON_ERR_UNSUPPORTED,
                            "conv2d of %lld -> %lld channels, %lldx%lld pixels: too large for channels-last bfloat16 "
                            "copies",
                            (long long)d->c_in, (long long)d->c_out, (long long)d->h, (long long)d->w);
    p->d = *d;
    p->used = 1;
    p->rows = rows;
    SC_DNN(cudnnCreateTensorDescriptor(&p->x));
    SC_DNN(cudnnCreateTensorDescriptor(&p->y));
    SC_DNN(cudnnCreateFilterDescriptor(&p->w));
    SC_DNN(cudnnCreateConvolutionDescriptor(&p->conv));
    /* the tensors' type and layout (the bfloat16 copies'); the sums are float32 either way */
    const cudnnDataType_t dt = st->bf16_convs ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    const cudnnTensorFormat_t fmt = rows ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    SC_DNN(cudnnSetTensor4dDescriptor(p->x, fmt, dt, (int)d->n, (int)d->c_in, (int)d->h, (int)d->w));
    SC_DNN(cudnnSetFilter4dDescriptor(p->w, dt, fmt, (int)d->c_out, (int)d->c_in, (int)d->kh, (int)d->kw));
    SC_DNN(cudnnSetConvolution2dDescriptor(p->conv, (int)d->pad_h, (int)d->pad_w, (int)d->stride_h,
                                           (int)d->stride_w, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SC_DNN(cudnnSetConvolutionMathType(p->conv, sc_tensor_ops(st) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int on = 0, oc = 0, ohh = 0, oww = 0;
    SC_DNN(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &ohh, &oww));
    if (on != d->n || oc != d->c_out || ohh != oh || oww != ow)
        return sc_cuda_fail(st, SUPCON_ERR_INTERNAL,
                            "cuDNN computes a %dx%dx%dx%d output where %lldx%lldx%lldx%lld is expected", on, oc, ohh,
                            oww, (long long)d->n, (long long)d->c_out, (long long)oh, (long long)ow);
    SC_DNN(cudnnSetTensor4dDescriptor(p->y, fmt, dt, (int)d->n, (int)d->c_out, (int)oh, (int)ow));
    return sc_plan_algos(st, p);
}

/* The plan of d, made on first use. A failed plan is not kept (the next call tries again and
 * reports again). Channels-last bfloat16 copies that cuDNN cannot take for this shape fall
 * back to NCHW ones. */
static supcon_status sc_plan_of(sc_cuda_state *st, const supcon_conv_desc *d, sc_conv_plan **out)
{
    sc_conv_cache *c = st->convs;
    for (int i = 0; i < SC_CONV_PLANS; i++)
        if (c->plans[i].used && memcmp(&c->plans[i].d, d, sizeof *d) == 0) {
            *out = &c->plans[i];
            return SUPCON_OK;
        }
    int slot = -1;
    for (int i = 0; i < SC_CONV_PLANS && slot < 0; i++)
        if (!c->plans[i].used)
            slot = i;
    if (slot < 0) {
        slot = c->next;
        c->next = (c->next + 1) % SC_CONV_PLANS;
    }
    sc_conv_plan *p = &c->plans[slot];
    sc_plan_clear(p);
    const int rows = sc_bf16_rows(st);
    supcon_status s = sc_plan_fill(st, p, d, rows);
    if (s != SUPCON_OK && rows && s != SUPCON_ERR_SHAPE) {
        sc_plan_clear(p);
        s = sc_plan_fill(st, p, d, 0);
    }
    if (s != SUPCON_OK) {
        sc_plan_clear(p);
        return s;
    }
    *out = p;
    return SUPCON_OK;
}

/* cuDNN's fastest algorithm that fits ws_bytes, deterministic ones first when the state asks
 * for them (a non-deterministic one only when none of those fits). NULL when none fits. */
static const sc_algo *sc_pick(const sc_cuda_state *st, const sc_algo *list, int count, size_t ws_bytes)
{
    for (int pass = st->conv_deterministic ? 0 : 1; pass < 2; pass++)
        for (int i = 0; i < count; i++)
            if (list[i].bytes <= ws_bytes && (pass == 1 || list[i].deterministic))
                return &list[i];
    return NULL;
}

static size_t sc_least_bytes(const sc_algo *list, int count)
{
    size_t least = (size_t)-1;
    for (int i = 0; i < count; i++)
        least = list[i].bytes < least ? list[i].bytes : least;
    return least;
}

size_t sc_cuda_conv2d_workspace_bytes(void *state, const supcon_conv_desc *d)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_plan *p = NULL;
    if (sc_cuda_enter(st) != SUPCON_OK || sc_plan_of(st, d, &p) != SUPCON_OK)
        return 0;
    const sc_algo *a[3] = {sc_pick(st, p->fwd, p->n_fwd, SC_CUDA_CONV_WS_CAP),
                           sc_pick(st, p->bwd_data, p->n_bwd_data, SC_CUDA_CONV_WS_CAP),
                           sc_pick(st, p->bwd_filter, p->n_bwd_filter, SC_CUDA_CONV_WS_CAP)};
    size_t most = 0;
    for (int i = 0; i < 3; i++)
        if (a[i] && a[i]->bytes > most)
            most = a[i]->bytes;
    return sc_staging_bytes(st, d) + most;
}

/* One call's plan, algorithm, cuDNN workspace and (BF16) bfloat16 copies. */
typedef struct sc_conv_call {
    sc_conv_plan *p;
    const sc_algo *a;
    void *ws; /* cuDNN's part of the workspace */
    size_t ws_bytes;
    void *xs, *ys, *wts; /* BF16: copies of x (or dx), y (or dy) and the weights (or dW) */
} sc_conv_call;

/* The plan and the algorithm for one call; an empty problem (no image, no input channel)
 * gives c->p NULL and OK. Under BF16 the bfloat16 copies come first in the workspace and
 * cuDNN gets the rest. */
static supcon_status sc_conv_begin(sc_cuda_state *st, const supcon_conv_desc *d, const char *what, int which,
                                   void *ws, size_t ws_bytes, sc_conv_call *c)
{
    memset(c, 0, sizeof *c);
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK || d->n == 0 || d->c_in == 0 || d->c_out == 0)
        return s;
    s = sc_plan_of(st, d, &c->p); /* checks the shape first */
    if (s != SUPCON_OK) {
        c->p = NULL;
        return s;
    }
    const size_t staging = sc_staging_bytes(st, d);
    if (!ws)
        ws_bytes = 0;
    const size_t given = ws_bytes;
    if (ws_bytes < staging)
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT,
                            "conv2d %s: workspace of %zu bytes, the bfloat16 copies alone need %zu", what, given,
                            staging);
    if (staging) { /* the copies, then cuDNN's part, each at a 256-byte boundary */
        const int64_t oh = supcon_conv_out_h(d), ow = supcon_conv_out_w(d);
        char *at = (char *)(((uintptr_t)ws + 255) & ~(uintptr_t)255);
        c->xs = at;
        c->ys = at + sc_bf16_part(d->n * d->c_in * d->h * d->w);
        c->wts = (char *)c->ys + sc_bf16_part(d->n * d->c_out * oh * ow);
        char *rest = (char *)c->wts + sc_bf16_part(d->c_out * d->c_in * d->kh * d->kw);
        ws_bytes -= (size_t)(rest - (char *)ws); /* at most staging: the +256 covers the alignment */
        ws = rest;
    }
    c->ws = ws_bytes ? ws : NULL;
    c->ws_bytes = ws_bytes;
    const sc_algo *list = which == 0 ? c->p->fwd : which == 1 ? c->p->bwd_data : c->p->bwd_filter;
    const int count = which == 0 ? c->p->n_fwd : which == 1 ? c->p->n_bwd_data : c->p->n_bwd_filter;
    c->a = sc_pick(st, list, count, ws_bytes);
    if (!c->a)
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT,
                            "conv2d %s: workspace of %zu bytes, no cuDNN algorithm fits (the smallest needs %zu%s)",
                            what, given, sc_least_bytes(list, count) + staging,
                            staging ? ", the bfloat16 copies included" : "");
    SC_DNN(sc_use_math(st, c->p, c->a->math));
    return SUPCON_OK;
}

#define SC_CHECK(call)                                                                               \
    do {                                                                                             \
        supcon_status sc_s_ = (call);                                                                \
        if (sc_s_ != SUPCON_OK)                                                                      \
            return sc_s_;                                                                            \
    } while (0)

supcon_status sc_cuda_conv2d_forward(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                     const float *weight, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_call c;
    supcon_status s = sc_conv_begin(st, d, "forward", 0, ws, ws_bytes, &c);
    if (s != SUPCON_OK || !c.p)
        return s;
    const float one = 1.0f, zero = 0.0f; /* beta 0: y is not read (it may hold NaN) */
    const cudnnConvolutionFwdAlgo_t algo = (cudnnConvolutionFwdAlgo_t)c.a->algo;
    if (!st->bf16_convs) {
        SC_DNN(cudnnConvolutionForward(st->dnn, &one, c.p->x, x, c.p->w, weight, c.p->conv, algo, c.ws, c.a->bytes,
                                       &zero, c.p->y, y));
        return SUPCON_OK;
    }
    const int rows = c.p->rows;
    SC_CHECK(sc_cuda_to_bf16(st, c.xs, x, d->n, d->c_in, d->h * d->w, rows));
    SC_CHECK(sc_cuda_to_bf16(st, c.wts, weight, d->c_out, d->c_in, d->kh * d->kw, rows));
    SC_DNN(cudnnConvolutionForward(st->dnn, &one, c.p->x, c.xs, c.p->w, c.wts, c.p->conv, algo, c.ws, c.a->bytes,
                                   &zero, c.p->y, c.ys));
    return sc_cuda_from_bf16(st, y, c.ys, d->n, d->c_out, supcon_conv_out_h(d) * supcon_conv_out_w(d), rows, 0);
}

supcon_status sc_cuda_conv2d_backward_data(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                           const float *weight, int accumulate, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_call c;
    supcon_status s = sc_conv_begin(st, d, "backward data", 1, ws, ws_bytes, &c);
    if (s != SUPCON_OK)
        return s;
    const int64_t nx = d->n * d->c_in * d->h * d->w;
    if (!c.p) { /* no output channel: dL/dx is zero */
        const size_t bytes = (size_t)nx * sizeof(float);
        if (accumulate || bytes == 0)
            return SUPCON_OK;
        return sc_cuda_check(st, cudaMemsetAsync(dx, 0, bytes, st->stream), "cudaMemsetAsync (conv2d dx)");
    }
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const cudnnConvolutionBwdDataAlgo_t algo = (cudnnConvolutionBwdDataAlgo_t)c.a->algo;
    if (!st->bf16_convs) {
        SC_DNN(cudnnConvolutionBackwardData(st->dnn, &one, c.p->w, weight, c.p->y, dy, c.p->conv, algo, c.ws,
                                            c.a->bytes, &beta, c.p->x, dx));
        return SUPCON_OK;
    }
    /* The rounded gradient is what is stored or added: cuDNN writes it apart (beta 0). */
    const float zero = 0.0f;
    const int rows = c.p->rows;
    SC_CHECK(sc_cuda_to_bf16(st, c.ys, dy, d->n, d->c_out, supcon_conv_out_h(d) * supcon_conv_out_w(d), rows));
    SC_CHECK(sc_cuda_to_bf16(st, c.wts, weight, d->c_out, d->c_in, d->kh * d->kw, rows));
    SC_DNN(cudnnConvolutionBackwardData(st->dnn, &one, c.p->w, c.wts, c.p->y, c.ys, c.p->conv, algo, c.ws,
                                        c.a->bytes, &zero, c.p->x, c.xs));
    return sc_cuda_from_bf16(st, dx, c.xs, d->n, d->c_in, d->h * d->w, rows, accumulate);
}

supcon_status sc_cuda_conv2d_backward_filter(void *state, const supcon_conv_desc *d, float *dweight,
                                             const float *dy, const float *x, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_call c;
    supcon_status s = sc_conv_begin(st, d, "backward filter", 2, ws, ws_bytes, &c);
    if (s != SUPCON_OK || !c.p)
        return s;
    const float one = 1.0f; /* beta 1: dweight accumulates */
    const cudnnConvolutionBwdFilterAlgo_t algo = (cudnnConvolutionBwdFilterAlgo_t)c.a->algo;
    if (!st->bf16_convs) {
        SC_DNN(cudnnConvolutionBackwardFilter(st->dnn, &one, c.p->x, x, c.p->y, dy, c.p->conv, algo, c.ws,
                                              c.a->bytes, &one, c.p->w, dweight));
        return SUPCON_OK;
    }
    const float zero = 0.0f;
    const int rows = c.p->rows;
    SC_CHECK(sc_cuda_to_bf16(st, c.xs, x, d->n, d->c_in, d->h * d->w, rows));
    SC_CHECK(sc_cuda_to_bf16(st, c.ys, dy, d->n, d->c_out, supcon_conv_out_h(d) * supcon_conv_out_w(d), rows));
    SC_DNN(cudnnConvolutionBackwardFilter(st->dnn, &one, c.p->x, c.xs, c.p->y, c.ys, c.p->conv, algo, c.ws,
                                          c.a->bytes, &zero, c.p->w, c.wts));
    return sc_cuda_from_bf16(st, dweight, c.wts, d->c_out, d->c_in, d->kh * d->kw, rows, 1);
}
