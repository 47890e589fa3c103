/* The emulated cuDNN's convolution problems (emu_cudnn_internal.h): the checks cuDNN
 * documents, the algorithms per direction with the workspace each needs, their rankings
 * (heuristics and Find) and the entry points that give them. */
#include <algorithm>
#include <vector>

#include <cudnn.h>

#include "emu_cudnn_internal.h"

using namespace sc_emu_dnn;

/* ---- one convolution problem, validated -------------------------------------------- */

namespace {

bool channels_last(const cudnnTensorStruct *t)
{
    if (t->format >= 0)
        return t->format == CUDNN_TENSOR_NHWC;
    return t->stride[1] < t->stride[3];
}

View tensor_view(const cudnnTensorStruct *t)
{
    View v{};
    long long span = 1;
    for (int i = 0; i < 4; i++) {
        v.dim[i] = t->dim[i];
        v.stride[i] = t->stride[i];
        span += (long long)(t->dim[i] - 1) * t->stride[i];
    }
    v.bytes = (size_t)span * type_size(t->type);
    return v;
}

/* KCRS or KRSC; under CUDNN_CONVOLUTION (true convolution) the taps are taken reversed. */
View filter_view(const cudnnFilterStruct *f, bool flip)
{
    const int c = f->dim[1], r = f->dim[2], s = f->dim[3];
    View v{};
    for (int i = 0; i < 4; i++)
        v.dim[i] = f->dim[i];
    if (f->format == CUDNN_TENSOR_NHWC) {
        v.stride[0] = (long long)r * s * c, v.stride[1] = 1, v.stride[2] = (long long)s * c, v.stride[3] = c;
    } else {
        v.stride[0] = (long long)c * r * s, v.stride[1] = (long long)r * s, v.stride[2] = s, v.stride[3] = 1;
    }
    if (flip) {
        v.base = (long long)(r - 1) * v.stride[2] + (long long)(s - 1) * v.stride[3];
        v.stride[2] = -v.stride[2];
        v.stride[3] = -v.stride[3];
    }
    v.bytes = (size_t)f->dim[0] * c * r * s * type_size(f->type);
    return v;
}

} // namespace

namespace sc_emu_dnn {

cudnnStatus_t problem(const char *fn, const cudnnTensorStruct *xd, const cudnnFilterStruct *wd,
                      const cudnnConvolutionStruct *cd, const cudnnTensorStruct *yd, Problem *p)
{
    if (!xd || !wd || !cd || !yd)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor is NULL");
    const cudnnTensorStruct *x = live<cudnnTensorStruct>(xd, K_TENSOR, fn);
    const cudnnTensorStruct *y = live<cudnnTensorStruct>(yd, K_TENSOR, fn);
    const cudnnFilterStruct *w = live<cudnnFilterStruct>(wd, K_FILTER, fn);
    const cudnnConvolutionStruct *c = live<cudnnConvolutionStruct>(cd, K_CONV, fn);
    if (!x || !y || !w || !c)
        return CUDNN_STATUS_BAD_PARAM;
    if (!x->set || !y->set || !w->set || !c->set)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor was created but never set");
    if (x->type != w->type || x->type != y->type)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "the data types of x (%d), w (%d) and y (%d) differ", (int)x->type,
                      (int)w->type, (int)y->type);
    /* FLOAT_CONFIG and PSEUDO_BFLOAT16_CONFIG; cuDNN has more (half, double, int8), which
     * the emulation does not compute, and no bfloat16 compute type for convolutions */
    if (c->compute != CUDNN_DATA_FLOAT || (x->type != CUDNN_DATA_FLOAT && x->type != CUDNN_DATA_BFLOAT16))
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, fn,
                      "data type %d with compute type %d: not a supported configuration",
                      (int)x->type, (int)c->compute);
    if (x->dim[1] != w->dim[1])
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "x has %d channels, the filter %d (groups are not emulated)",
                      x->dim[1], w->dim[1]);
    for (int i = 0; i < 4; i++)
        if (x->stride[i] < 0 || y->stride[i] < 0)
            return refuse(CUDNN_STATUS_NOT_SUPPORTED, fn, "negative tensor strides");
    /* one layout throughout: cuDNN runs some mixed ones, which the module never means to ask
     * for, so the emulation refuses them */
    const bool rows = w->format == CUDNN_TENSOR_NHWC;
    if (channels_last(x) != rows || channels_last(y) != rows)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, fn, "the filter is %s, x or y is not",
                      rows ? "NHWC (KRSC)" : "NCHW (KCRS)");
    sc_emu_conv::Shape &d = p->d;
    d.n = x->dim[0], d.c = x->dim[1], d.h = x->dim[2], d.w = x->dim[3];
    d.k = w->dim[0], d.r = w->dim[2], d.s = w->dim[3];
    d.ph = c->pad_h, d.pw = c->pad_w, d.u = c->u, d.v = c->v, d.dh = c->dil_h, d.dw = c->dil_w;
    const long long span_h = (long long)(d.r - 1) * d.dh + 1, span_w = (long long)(d.s - 1) * d.dw + 1;
    if (span_h > d.h + 2LL * d.ph || span_w > d.w + 2LL * d.pw)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn,
                      "the filter (%lldx%lld with dilation) is larger than the padded input",
                      span_h, span_w);
    d.oh = (int)((d.h + 2LL * d.ph - span_h) / d.u + 1);
    d.ow = (int)((d.w + 2LL * d.pw - span_w) / d.v + 1);
    if (y->dim[0] != d.n || y->dim[1] != d.k)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "y is %dx%d (n x c), the convolution gives %dx%d", y->dim[0],
                      y->dim[1], d.n, d.k);
    if (y->dim[2] != d.oh || y->dim[3] != d.ow)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, fn, "y is %dx%d, the convolution gives %dx%d", y->dim[2], y->dim[3],
                      d.oh, d.ow);
    p->type = x->type;
    p->conv = c;
    p->x = tensor_view(x);
    p->y = tensor_view(y);
    p->w = filter_view(w, c->mode == CUDNN_CONVOLUTION);
    return CUDNN_STATUS_SUCCESS;
}

} // namespace sc_emu_dnn

/* ---- algorithms ----------------------------------------------------------------------- */

namespace {

/* cuDNN's heuristic ranking, best first, of what the emulation runs; the rest of the enum
 * is listed after them as NOT_SUPPORTED. */
const Algo k_fwd[] = {{CUDNN_CONVOLUTION_FWD_ALGO_FFT, true, false, 0, 25},
                      {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, true, 60, 20},
                      {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, true, 40, 15}};
const Algo k_bwd_data[] = {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, true, 50, 18},
                           {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, true, 35, 14},
                           {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, true, true, 45, 16}};
const Algo k_bwd_filter[] = {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, true, 50, 18},
                             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, true, true, 30, 12},
                             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, true, 40, 15}};

const Algo *algo_table(Dir dir, int *count)
{
    *count = 3;
    return dir == FWD ? k_fwd : dir == BWD_DATA ? k_bwd_data : k_bwd_filter;
}

size_t align256(size_t b)
{
    return (b + 255) & ~(size_t)255;
}

bool winograd_shape(const sc_emu_conv::Shape &d)
{
    return d.r == 3 && d.s == 3 && d.u == 1 && d.v == 1 && d.dh == 1 && d.dw == 1;
}

} // namespace

namespace sc_emu_dnn {

int algo_count(Dir dir)
{
    if (dir == FWD)
        return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    return dir == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

const Algo *find_algo(Dir dir, int id)
{
    int count = 0;
    const Algo *t = algo_table(dir, &count);
    for (int i = 0; i < count; i++)
        if (t[i].id == id)
            return &t[i];
    return nullptr;
}

cudnnStatus_t algo_workspace(Dir dir, int id, const Problem &p, size_t *bytes)
{
    const sc_emu_conv::Shape &d = p.d;
    *bytes = 0;
    if (!find_algo(dir, id))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (dir == FWD) {
        if (id == CUDNN_CONVOLUTION_FWD_ALGO_FFT) {
            if (p.type != CUDNN_DATA_FLOAT || d.u != 1 || d.v != 1 || d.dh != 1 || d.dw != 1)
                return CUDNN_STATUS_NOT_SUPPORTED;
            /* always beyond the module's 512 MiB cap, so that its ranking passes it over */
            *bytes = ((size_t)600 << 20) + align256((size_t)8 * d.n * d.c * d.h * d.w);
        } else if (id == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
            *bytes = align256(sizeof(int) * ((size_t)d.c * d.r * d.s + (size_t)d.oh * d.ow));
        }
    } else if (dir == BWD_DATA) {
        if (id == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD && !winograd_shape(d))
            return CUDNN_STATUS_NOT_SUPPORTED;
        if (id == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1)
            *bytes = align256(sizeof(float) * ((size_t)d.k * d.c * d.r * d.s + (size_t)d.c * d.h * d.w));
    } else {
        if (id == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED) {
            if (!winograd_shape(d))
                return CUDNN_STATUS_NOT_SUPPORTED;
            *bytes = align256(sizeof(float) * 16 * ((size_t)d.k * d.c + (size_t)d.n * d.c * d.oh * d.ow / 4 + 1));
        }
    }
    return CUDNN_STATUS_SUCCESS;
}

} // namespace sc_emu_dnn

namespace {

struct Entry {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
};

/* cuDNN's list for problem p: under a math type that allows tensor cores, each algorithm
 * that has them first with CUDNN_TENSOR_OP_MATH, then every one with CUDNN_FMA_MATH (the
 * (algorithm, math type) pairs cuDNN ranks); under FMA_MATH the FMA ones only; then the
 * algorithms that do not run p. Heuristics give time -1 (not measured); Find "times" each
 * (a fake, deterministic speed per algorithm) and sorts by it. */
std::vector<Entry> rank(Dir dir, const Problem &p, bool timed)
{
    int count = 0;
    const Algo *t = algo_table(dir, &count);
    const cudnnMathType_t math = p.conv->math;
    const double flops = 2.0 * p.d.n * p.d.k * p.d.c * p.d.r * p.d.s * p.d.oh * p.d.ow;
    std::vector<Entry> ok, rest;
    for (int pass = math == CUDNN_FMA_MATH ? 1 : 0; pass < 2; pass++)
        for (int i = 0; i < count; i++) {
            size_t bytes = 0;
            if (algo_workspace(dir, t[i].id, p, &bytes) != CUDNN_STATUS_SUCCESS || (pass == 0 && !t[i].tensor_cores))
                continue;
            const double rate = pass == 0 ? t[i].gflops_tc : t[i].gflops;
            ok.push_back({t[i].id, CUDNN_STATUS_SUCCESS, timed ? (float)(0.005 + flops / (rate * 1e6)) : -1.0f, bytes,
                          t[i].deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC,
                          pass == 0 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH});
        }
    if (timed)
        std::stable_sort(ok.begin(), ok.end(), [](const Entry &a, const Entry &b) { return a.time < b.time; });
    for (int id = 0; id < algo_count(dir); id++) {
        size_t bytes = 0;
        if (algo_workspace(dir, id, p, &bytes) == CUDNN_STATUS_SUCCESS)
            continue;
        const Algo *a = find_algo(dir, id);
        rest.push_back({id, CUDNN_STATUS_NOT_SUPPORTED, -1.0f, 0,
                        a && !a->deterministic ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC, math});
    }
    ok.insert(ok.end(), rest.begin(), rest.end());
    return ok;
}

template <typename Perf> void fill_perf(const std::vector<Entry> &list, int requested, int *returned, Perf *out)
{
    int n = 0;
    for (const Entry &e : list) {
        if (n >= requested)
            break;
        Perf r{};
        r.algo = (decltype(r.algo))e.algo;
        r.status = e.status;
        r.time = e.time;
        r.memory = e.memory;
        r.determinism = e.determinism;
        r.mathType = e.math;
        out[n++] = r;
    }
    *returned = n;
}

/* The ranking calls: heuristics (gpu false) or Find (gpu true: it runs every algorithm on
 * buffers it allocates itself, so it needs the handle's device and stream, and touches no
 * memory of the caller's). */
template <typename Perf>
cudnnStatus_t ranking(Dir dir, const char *fn, bool timed, cudnnHandle_t h, const cudnnTensorStruct *x,
                      const cudnnFilterStruct *w, const cudnnConvolutionStruct *c, const cudnnTensorStruct *y,
                      int requested, int *returned, Perf *perf)
{
    cudnnStatus_t s = check_handle(h, fn, timed);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    Problem p;
    s = problem(fn, x, w, c, y, &p);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!returned || !perf || requested <= 0)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "requestedAlgoCount %d, or a NULL result pointer", requested);
    fill_perf(rank(dir, p, timed), requested, returned, perf);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_size(Dir dir, const char *fn, cudnnHandle_t h, const cudnnTensorStruct *x,
                             const cudnnFilterStruct *w, const cudnnConvolutionStruct *c, const cudnnTensorStruct *y,
                             int algo, size_t *bytes)
{
    cudnnStatus_t s = check_handle(h, fn, false);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    Problem p;
    s = problem(fn, x, w, c, y, &p);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!bytes || algo < 0 || algo >= algo_count(dir))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d, or sizeInBytes NULL", algo);
    s = algo_workspace(dir, algo, p, bytes);
    if (s != CUDNN_STATUS_SUCCESS)
        return refuse(s, fn, "algorithm %d does not run this convolution", algo);
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

extern "C" {

static cudnnStatus_t max_count(const char *fn, cudnnHandle_t handle, int *count, Dir dir)
{
    cudnnStatus_t s = check_handle(handle, fn, false);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!count)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "count is NULL");
    *count = algo_count(dir);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(__func__, handle, count, FWD);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(__func__, handle, count, BWD_DATA);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int *count)
{
    return max_count(__func__, handle, count, BWD_FILTER);
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc,
                                                     const int requestedAlgoCount, int *returnedAlgoCount,
                                                     cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return ranking(FWD, __func__, false, handle, srcDesc, filterDesc, convDesc, destDesc, requestedAlgoCount,
                   returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                   const cudnnFilterDescriptor_t wDesc,
                                                   const cudnnConvolutionDescriptor_t convDesc,
                                                   const cudnnTensorDescriptor_t yDesc, const int requestedAlgoCount,
                                                   int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults)
{
    return ranking(FWD, __func__, true, handle, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount, returnedAlgoCount,
                   perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes)
{
    return workspace_size(FWD, __func__, handle, xDesc, wDesc, convDesc, yDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle,
                                                          const cudnnFilterDescriptor_t filterDesc,
                                                          const cudnnTensorDescriptor_t diffDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t gradDesc,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return ranking(BWD_DATA, __func__, false, handle, gradDesc, filterDesc, convDesc, diffDesc, requestedAlgoCount,
                   returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                        const cudnnTensorDescriptor_t dyDesc,
                                                        const cudnnConvolutionDescriptor_t convDesc,
                                                        const cudnnTensorDescriptor_t dxDesc,
                                                        const int requestedAlgoCount, int *returnedAlgoCount,
                                                        cudnnConvolutionBwdDataAlgoPerf_t *perfResults)
{
    return ranking(BWD_DATA, __func__, true, handle, dxDesc, wDesc, convDesc, dyDesc, requestedAlgoCount,
                   returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes)
{
    return workspace_size(BWD_DATA, __func__, handle, dxDesc, wDesc, convDesc, dyDesc, (int)algo, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle,
                                                            const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int *returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return ranking(BWD_FILTER, __func__, false, handle, srcDesc, gradDesc, convDesc, diffDesc, requestedAlgoCount,
                   returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnFilterDescriptor_t dwDesc,
                                                          const int requestedAlgoCount, int *returnedAlgoCount,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t *perfResults)
{
    return ranking(BWD_FILTER, __func__, true, handle, xDesc, dwDesc, convDesc, dyDesc, requestedAlgoCount,
                   returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle,
                                                             const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo,
                                                             size_t *sizeInBytes)
{
    return workspace_size(BWD_FILTER, __func__, handle, xDesc, gradDesc, convDesc, dyDesc, (int)algo, sizeInBytes);
}

} // extern "C"
