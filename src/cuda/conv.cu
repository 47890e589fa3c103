/* Conv2d on CUDA through cuDNN's convolution API (float32 NCHW, no bias, cross-correlation as
 * PyTorch): one plan per shape holds the descriptors and cuDNN's ranked algorithms for the
 * three calls, chosen once by its heuristics (or, with conv_find, by timing them as
 * cudnn.benchmark does) and kept in a small table in the state. TF32 tensor cores only when
 * the context allows them (SUPCON_PRECISION_TF32). Leaves out groups and dilation. */
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

/* Strict float32 unless TF32 is allowed: a perf result of a tensor-op math type would round
 * the inputs to TF32. */
static int sc_math_ok(const sc_cuda_state *st, cudnnMathType_t m)
{
    return st->allow_tf32 || (m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

/* Under TF32 cuDNN ranks (algorithm, math type) pairs, and a pair runs as ranked only with
 * the descriptor set to its math type (its workspace is measured the same way). In float32
 * the descriptor stays CUDNN_FMA_MATH whatever a result says. */
static cudnnStatus_t sc_use_math(const sc_cuda_state *st, sc_conv_plan *p, cudnnMathType_t m)
{
    return st->allow_tf32 ? cudnnSetConvolutionMathType(p->conv, m) : CUDNN_STATUS_SUCCESS;
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
    {
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
                            "cuDNN offers no float32 algorithm for this convolution (%d forward, %d backward-data, "
                            "%d backward-filter)",
                            p->n_fwd, p->n_bwd_data, p->n_bwd_filter);
    return SUPCON_OK;
}

static supcon_status sc_plan_fill(sc_cuda_state *st, sc_conv_plan *p, const supcon_conv_desc *d)
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
    p->d = *d;
    p->used = 1;
    SC_DNN(cudnnCreateTensorDescriptor(&p->x));
    SC_DNN(cudnnCreateTensorDescriptor(&p->y));
    SC_DNN(cudnnCreateFilterDescriptor(&p->w));
    SC_DNN(cudnnCreateConvolutionDescriptor(&p->conv));
    SC_DNN(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n, (int)d->c_in, (int)d->h,
                                      (int)d->w));
    SC_DNN(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)d->c_out, (int)d->c_in,
                                      (int)d->kh, (int)d->kw));
    SC_DNN(cudnnSetConvolution2dDescriptor(p->conv, (int)d->pad_h, (int)d->pad_w, (int)d->stride_h,
                                           (int)d->stride_w, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SC_DNN(cudnnSetConvolutionMathType(p->conv, st->allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int on = 0, oc = 0, ohh = 0, oww = 0;
    SC_DNN(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &ohh, &oww));
    if (on != d->n || oc != d->c_out || ohh != oh || oww != ow)
        return sc_cuda_fail(st, SUPCON_ERR_INTERNAL,
                            "cuDNN computes a %dx%dx%dx%d output where %lldx%lldx%lldx%lld is expected", on, oc, ohh,
                            oww, (long long)d->n, (long long)d->c_out, (long long)oh, (long long)ow);
    SC_DNN(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n, (int)d->c_out, (int)oh,
                                      (int)ow));
    return sc_plan_algos(st, p);
}

/* The plan of d, made on first use. A failed plan is not kept (the next call tries again and
 * reports again). */
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
    supcon_status s = sc_plan_fill(st, p, d);
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
    return most;
}

/* The plan and the algorithm for one call; an empty problem (no image, no input channel)
 * gives *p NULL and OK. */
static supcon_status sc_conv_begin(sc_cuda_state *st, const supcon_conv_desc *d, const char *what, int which,
                                   size_t ws_bytes, sc_conv_plan **p, const sc_algo **a)
{
    *p = NULL;
    *a = NULL;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK || d->n == 0 || d->c_in == 0 || d->c_out == 0)
        return s;
    s = sc_plan_of(st, d, p);
    if (s != SUPCON_OK)
        return s;
    const sc_algo *list = which == 0 ? (*p)->fwd : which == 1 ? (*p)->bwd_data : (*p)->bwd_filter;
    const int count = which == 0 ? (*p)->n_fwd : which == 1 ? (*p)->n_bwd_data : (*p)->n_bwd_filter;
    *a = sc_pick(st, list, count, ws_bytes);
    if (!*a)
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT,
                            "conv2d %s: workspace of %zu bytes, no cuDNN algorithm fits (the smallest needs %zu)",
                            what, ws_bytes, sc_least_bytes(list, count));
    SC_DNN(sc_use_math(st, *p, (*a)->math));
    return SUPCON_OK;
}

supcon_status sc_cuda_conv2d_forward(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                     const float *weight, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_plan *p;
    const sc_algo *a;
    supcon_status s = sc_conv_begin(st, d, "forward", 0, ws ? ws_bytes : 0, &p, &a);
    if (s != SUPCON_OK || !p)
        return s;
    const float one = 1.0f, zero = 0.0f; /* beta 0: y is not read (it may hold NaN) */
    SC_DNN(cudnnConvolutionForward(st->dnn, &one, p->x, x, p->w, weight, p->conv, (cudnnConvolutionFwdAlgo_t)a->algo,
                                   a->bytes ? ws : NULL, a->bytes, &zero, p->y, y));
    return SUPCON_OK;
}

supcon_status sc_cuda_conv2d_backward_data(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                           const float *weight, int accumulate, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_plan *p;
    const sc_algo *a;
    supcon_status s = sc_conv_begin(st, d, "backward data", 1, ws ? ws_bytes : 0, &p, &a);
    if (s != SUPCON_OK)
        return s;
    if (!p) { /* no output channel: dL/dx is zero */
        const size_t bytes = (size_t)(d->n * d->c_in * d->h * d->w) * sizeof(float);
        if (accumulate || bytes == 0)
            return SUPCON_OK;
        return sc_cuda_check(st, cudaMemsetAsync(dx, 0, bytes, st->stream), "cudaMemsetAsync (conv2d dx)");
    }
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    SC_DNN(cudnnConvolutionBackwardData(st->dnn, &one, p->w, weight, p->y, dy, p->conv,
                                        (cudnnConvolutionBwdDataAlgo_t)a->algo, a->bytes ? ws : NULL, a->bytes, &beta,
                                        p->x, dx));
    return SUPCON_OK;
}

supcon_status sc_cuda_conv2d_backward_filter(void *state, const supcon_conv_desc *d, float *dweight,
                                             const float *dy, const float *x, void *ws, size_t ws_bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_conv_plan *p;
    const sc_algo *a;
    supcon_status s = sc_conv_begin(st, d, "backward filter", 2, ws ? ws_bytes : 0, &p, &a);
    if (s != SUPCON_OK || !p)
        return s;
    const float one = 1.0f; /* beta 1: dweight accumulates */
    SC_DNN(cudnnConvolutionBackwardFilter(st->dnn, &one, p->x, x, p->y, dy, p->conv,
                                          (cudnnConvolutionBwdFilterAlgo_t)a->algo, a->bytes ? ws : NULL, a->bytes,
                                          &one, p->w, dweight));
    return SUPCON_OK;
}
