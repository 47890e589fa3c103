/* The emulation's cuDNN: handles, the legacy tensor, filter and convolution descriptors, and
 * the three convolutions with cuDNN's ranking API (heuristics and Find), computed on the CPU
 * (emu_conv.h). Supported: float data with float sums (FLOAT_CONFIG) and bfloat16 data with
 * float sums (PSEUDO_BFLOAT16_CONFIG), cross-correlation or convolution, any padding, stride
 * and dilation, NCHW or NHWC (filters KCRS or KRSC), no groups.
 *
 * What cuDNN documents as refused gives its status (BAD_PARAM, NOT_SUPPORTED) and nothing
 * more: the module relies on such refusals (it falls back from NHWC to NCHW, skips algorithms).
 * What a GPU would fault on or leave undefined (a destroyed handle or descriptor, data outside
 * device memory, a workspace smaller than the algorithm was said to need, overlapping input
 * and output) is also recorded (emu.h), so that a test cannot pass over it.
 *
 * The algorithms (per direction, in cuDNN's enum) differ in what the module's choice looks
 * at, not in their arithmetic: workspace (some need one, sized by the shape; forward FFT
 * always more than the module's cap), determinism (backward ALGO_0 is not), tensor cores
 * (float data under a non-FMA math type is rounded to TF32 as on Ampere and later, unless
 * NVIDIA_TF32_OVERRIDE=0), and support (Winograd: 3x3 stride 1 only; the rest NOT_SUPPORTED). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <cudnn.h>

#include "emu.h"
#include "emu_queue.h"
#include "emu_conv.h"
#include "emu_round.h"

namespace {

enum Kind { K_HANDLE = 1, K_TENSOR, K_FILTER, K_CONV };

const char *kind_name(Kind k)
{
    switch (k) {
    case K_HANDLE: return "handle";
    case K_TENSOR: return "tensor descriptor";
    case K_FILTER: return "filter descriptor";
    case K_CONV: return "convolution descriptor";
    }
    return "object";
}

} // namespace

struct cudnnContext {
    bool live;
    cudaStream_t stream;
    int device; /* current at cudnnCreate: the handle works on that device only */
};

struct cudnnTensorStruct {
    bool live, set;
    cudnnDataType_t type;
    int format; /* cudnnTensorFormat_t, or -1: strides of cudnnSetTensor4dDescriptorEx */
    int dim[4]; /* n c h w */
    long long stride[4];
};

struct cudnnFilterStruct {
    bool live, set;
    cudnnDataType_t type;
    cudnnTensorFormat_t format; /* NCHW: KCRS, NHWC: KRSC */
    int dim[4]; /* k c r s */
};

struct cudnnConvolutionStruct {
    bool live, set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {

/* ---- objects ------------------------------------------------------------------------- */

/* Every object ever made, by address. Destroyed ones stay (never freed, marked dead) so that
 * a stale pointer is recognised instead of aliasing a newer object. */
std::mutex g_mu;
/* Never destroyed: the objects stay reachable through it to the end (a leak checker running
 * after static destructors would otherwise report the dead ones kept on purpose). */
std::unordered_map<const void *, Kind> &g_objects = *new std::unordered_map<const void *, Kind>();

thread_local char t_last_error[512];


void vrefuse(const char *fn, const char *fmt, va_list ap)
{
    int at = snprintf(t_last_error, sizeof t_last_error, "%s: ", fn);
    if (at < 0 || (size_t)at >= sizeof t_last_error)
        at = 0;
    vsnprintf(t_last_error + at, sizeof t_last_error - (size_t)at, fmt, ap);
}

/* A refusal cuDNN documents: its status, and the message cudnnGetLastErrorString gives. */
__attribute__((format(printf, 3, 4))) cudnnStatus_t refuse(cudnnStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefuse(fn, fmt, ap);
    va_end(ap);
    return s;
}

/* Misuse a GPU would fault on or leave undefined: refused as above, and recorded. */
__attribute__((format(printf, 3, 4))) cudnnStatus_t misuse(cudnnStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefuse(fn, fmt, ap);
    va_end(ap);
    sc_emu_fail("%s", t_last_error);
    return s;
}

template <typename T> T *make(Kind kind)
{
    T *o = new T{};
    o->live = true;
    std::lock_guard<std::mutex> lock(g_mu);
    g_objects[o] = kind;
    return o;
}

/* The live object p of `kind`; NULL when p is not one (recorded, since cuDNN would read
 * freed or foreign memory). */
template <typename T> T *live(const void *p, Kind kind, const char *fn)
{
    {
        std::lock_guard<std::mutex> lock(g_mu);
        auto it = g_objects.find(p);
        if (it != g_objects.end() && it->second == kind && ((const T *)p)->live)
            return (T *)p;
    }
    misuse(CUDNN_STATUS_BAD_PARAM, fn, "%p is not a live cuDNN %s (never created, or destroyed)", p,
                  kind_name(kind));
    return nullptr;
}

template <typename T> cudnnStatus_t destroy(T *p, Kind kind, const char *fn)
{
    if (!p)
        return CUDNN_STATUS_SUCCESS;
    T *o = live<T>(p, kind, fn);
    if (!o)
        return CUDNN_STATUS_BAD_PARAM;
    o->live = false;
    return CUDNN_STATUS_SUCCESS;
}

/* The handle, live; `gpu`: the call runs work, so its device must be current and its stream
 * usable. */
cudnnStatus_t check_handle(cudnnHandle_t h, const char *fn, bool gpu)
{
    if (!h)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "handle is NULL");
    if (!live<cudnnContext>(h, K_HANDLE, fn))
        return CUDNN_STATUS_BAD_PARAM;
    if (!gpu)
        return CUDNN_STATUS_SUCCESS;
    if (h->device != sc_emu_current_device())
        return misuse(CUDNN_STATUS_EXECUTION_FAILED, fn, "handle made on device %d used while device %d is current",
                             h->device, sc_emu_current_device());
    if (!sc_emu_check_stream(h->stream, fn))
        return misuse(CUDNN_STATUS_EXECUTION_FAILED_CUDART, fn, "the handle's stream %p is not usable",
                             (const void *)h->stream);
    return CUDNN_STATUS_SUCCESS;
}

size_t type_size(cudnnDataType_t t)
{
    switch (t) {
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_INT32: return 4;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16: return 2;
    case CUDNN_DATA_INT8:
    case CUDNN_DATA_UINT8:
    case CUDNN_DATA_BOOLEAN: return 1;
    }
    return 0;
}

/* ---- one convolution problem, validated -------------------------------------------- */

enum Dir { FWD, BWD_DATA, BWD_FILTER };

/* An array in memory: four dimensions in canonical order (n c h w, or k c r s) with element
 * strides, from `base` elements after the pointer (a flipped filter walks backwards). */
struct View {
    int dim[4];
    long long stride[4];
    long long base;
    size_t bytes; /* the span the array covers from the pointer */
};

struct Problem {
    sc_emu_conv::Shape d;
    cudnnDataType_t type;
    const cudnnConvolutionStruct *conv;
    View x, w, y;
};

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

/* The checks cuDNN documents for the three convolutions and their helpers (BAD_PARAM: NULL,
 * unset or mismatched descriptors; NOT_SUPPORTED: configurations it does not run), and the
 * shape. Descriptors that are not live are recorded as well. */
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

/* ---- algorithms ----------------------------------------------------------------------- */

struct Algo {
    int id;
    bool deterministic;
    bool tensor_cores;        /* rounds float operands to TF32 when the math type allows it */
    double gflops_tc, gflops; /* the fake speeds Find "measures" (tensor cores, FMA) */
};

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

int algo_count(Dir dir)
{
    if (dir == FWD)
        return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    return dir == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

const Algo *algo_table(Dir dir, int *count)
{
    *count = 3;
    return dir == FWD ? k_fwd : dir == BWD_DATA ? k_bwd_data : k_bwd_filter;
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

size_t align256(size_t b)
{
    return (b + 255) & ~(size_t)255;
}

bool winograd_shape(const sc_emu_conv::Shape &d)
{
    return d.r == 3 && d.s == 3 && d.u == 1 && d.v == 1 && d.dh == 1 && d.dw == 1;
}

/* Whether algorithm `id` runs problem p, and the workspace it needs then. */
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

/* Float operands go through TF32 tensor cores under any math type but FMA (cuDNN's default
 * on Ampere and later); bfloat16 ones are what tensor cores take anyway. */
bool rounds_tf32(const Problem &p, const Algo *a, cudnnMathType_t math)
{
    return p.type == CUDNN_DATA_FLOAT && math != CUDNN_FMA_MATH && a->tensor_cores && sc_emu_tf32_allowed();
}

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

/* ---- running one ---------------------------------------------------------------------- */

double load(const void *p, long long i, cudnnDataType_t type)
{
    if (type == CUDNN_DATA_BFLOAT16)
        return sc_emu_from_bf16(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* The array, canonical order, as doubles (exact: float, TF32 and bfloat16 all fit). */
std::vector<double> gather(const View &v, const void *p, cudnnDataType_t type, bool tf32)
{
    std::vector<double> out((size_t)v.dim[0] * v.dim[1] * v.dim[2] * v.dim[3]);
    size_t at = 0;
    for (int a = 0; a < v.dim[0]; a++)
        for (int b = 0; b < v.dim[1]; b++)
            for (int c = 0; c < v.dim[2]; c++) {
                long long i = v.base + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
                for (int d = 0; d < v.dim[3]; d++, i += v.stride[3]) {
                    double e = load(p, i, type);
                    if (tf32)
                        e = sc_emu_tf32((float)e);
                    out[at++] = e;
                }
            }
    return out;
}

/* out = alpha * result + beta * out, rounded once to the array's type; beta 0: out is not
 * read (NaN there does not come through). */
void scatter(const View &v, void *p, cudnnDataType_t type, const std::vector<double> &val, double alpha, double beta)
{
    size_t at = 0;
    for (int a = 0; a < v.dim[0]; a++)
        for (int b = 0; b < v.dim[1]; b++)
            for (int c = 0; c < v.dim[2]; c++) {
                long long i = v.base + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
                for (int d = 0; d < v.dim[3]; d++, i += v.stride[3]) {
                    double e = alpha * val[at++];
                    if (beta != 0.0)
                        e += beta * load(p, i, type);
                    if (type == CUDNN_DATA_BFLOAT16)
                        ((uint16_t *)p)[i] = sc_emu_to_bf16((float)e);
                    else
                        ((float *)p)[i] = (float)e;
                }
            }
}

bool overlap(const void *a, size_t abytes, const void *b, size_t bbytes)
{
    const char *pa = (const char *)a, *pb = (const char *)b;
    return abytes && bbytes && pa < pb + bbytes && pb < pa + abytes;
}

/* One convolution: `in1`/`in2` are the operands (x and w, w and dy, x and dy) and `out` the
 * result (y, dx, dw), as the direction has them. */
struct Call {
    Dir dir;
    const char *fn;
    cudnnHandle_t handle;
    const void *alpha, *beta;
    const cudnnTensorStruct *x, *y;
    const cudnnFilterStruct *w;
    const cudnnConvolutionStruct *conv;
    const void *in1, *in2;
    void *out;
    int algo;
    void *ws;
    size_t ws_bytes;
};

cudnnStatus_t run(const Call &c)
{
    const char *fn = c.fn;
    cudnnStatus_t s = check_handle(c.handle, fn, true);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    Problem p;
    s = problem(fn, c.x, c.w, c.conv, c.y, &p);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!c.alpha || !c.beta || !c.in1 || !c.in2 || !c.out)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "alpha, beta or a data pointer is NULL");
    /* alpha and beta are read on the host: a device address there is a host-side fault */
    if (sc_emu_in_space(c.alpha, sizeof(float), SC_EMU_DEVICE) || sc_emu_in_space(c.beta, sizeof(float), SC_EMU_DEVICE))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "alpha or beta points to device memory (host memory expected)");
    if (c.algo < 0 || c.algo >= algo_count(c.dir))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d is not one of cuDNN's", c.algo);
    size_t need = 0;
    s = algo_workspace(c.dir, c.algo, p, &need);
    if (s != CUDNN_STATUS_SUCCESS)
        return refuse(s, fn, "algorithm %d does not run this convolution", c.algo);
    if (need && (!c.ws || c.ws_bytes < need))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d needs %zu bytes of workspace, given %p of %zu",
                             c.algo, need, c.ws, c.ws_bytes);
    if (need && !sc_emu_check_range(c.ws, need, SC_EMU_DEVICE, (std::string(fn) + " workspace").c_str()))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "the workspace is not device memory");

    const View &v1 = c.dir == BWD_DATA ? p.w : p.x;
    const View &v2 = c.dir == FWD ? p.w : p.y;
    const View &vo = c.dir == FWD ? p.y : c.dir == BWD_DATA ? p.x : p.w;
    /* the spans begin at the pointers (a flipped filter's base is inside its span) */
    static const char *const names[3][3] = {{"x", "w", "y"}, {"w", "dy", "dx"}, {"x", "dy", "dw"}};
    const std::string what = std::string(fn) + " ";
    if (!sc_emu_check_range(c.in1, v1.bytes, SC_EMU_DEVICE, (what + names[c.dir][0]).c_str()) ||
        !sc_emu_check_range(c.in2, v2.bytes, SC_EMU_DEVICE, (what + names[c.dir][1]).c_str()) ||
        !sc_emu_check_range(c.out, vo.bytes, SC_EMU_DEVICE, (what + names[c.dir][2]).c_str()))
        return refuse(CUDNN_STATUS_EXECUTION_FAILED, fn, "an operand lies outside device memory");
    if (overlap(c.out, vo.bytes, c.in1, v1.bytes) || overlap(c.out, vo.bytes, c.in2, v2.bytes))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "the output overlaps an input (cuDNN does not work in place)");
    if (overlap(c.ws, need, c.in1, v1.bytes) || overlap(c.ws, need, c.in2, v2.bytes) ||
        overlap(c.ws, need, c.out, vo.bytes))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "the workspace overlaps an operand");
    const Algo *a = find_algo(c.dir, c.algo);
    const bool tf32 = rounds_tf32(p, a, p.conv->math);
    const float alpha = *(const float *)c.alpha, beta = *(const float *)c.beta; /* read at the call */
    /* The convolution runs on the handle's stream, when something waits for it (emu_queue.h). */
    sc_emu::submit(c.handle->stream, fn, [=] {
        if (need) /* the algorithm's scratch: whatever was there is gone */
            memset(c.ws, 0xff, need);
        const std::vector<double> o1 = gather(v1, c.in1, p.type, tf32), o2 = gather(v2, c.in2, p.type, tf32);
        /* The operands are exact in float (float, TF32 or bfloat16 values); the sums are float's. */
        const std::vector<float> f1(o1.begin(), o1.end()), f2(o2.begin(), o2.end());
        std::vector<float> r((size_t)vo.dim[0] * vo.dim[1] * vo.dim[2] * vo.dim[3]);
        if (c.dir == FWD)
            sc_emu_conv::forward(p.d, f1.data(), f2.data(), r.data());
        else if (c.dir == BWD_DATA)
            sc_emu_conv::backward_data(p.d, f1.data(), f2.data(), r.data());
        else
            sc_emu_conv::backward_filter(p.d, f1.data(), f2.data(), r.data());
        scatter(vo, c.out, p.type, std::vector<double>(r.begin(), r.end()), alpha, beta);
    });
    return CUDNN_STATUS_SUCCESS;
}

bool valid_type(cudnnDataType_t t)
{
    return type_size(t) != 0;
}

} // namespace

extern "C" {

size_t cudnnGetVersion(void)
{
    return CUDNN_VERSION;
}

const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch (status) {
#define SC_NAME(s)                                                                                                     \
    case s: return #s;
        SC_NAME(CUDNN_STATUS_SUCCESS)
        SC_NAME(CUDNN_STATUS_NOT_INITIALIZED)
        SC_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
        SC_NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
        SC_NAME(CUDNN_STATUS_DEPRECATED)
        SC_NAME(CUDNN_STATUS_LICENSE_ERROR)
        SC_NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
        SC_NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
        SC_NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
        SC_NAME(CUDNN_STATUS_BAD_PARAM)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
        SC_NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
        SC_NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
        SC_NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
        SC_NAME(CUDNN_STATUS_EXECUTION_FAILED)
        SC_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
        SC_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
        SC_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
        SC_NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef SC_NAME
    }
    return "CUDNN_UNKNOWN_STATUS_FOUND";
}

void cudnnGetLastErrorString(char *message, size_t max_size)
{
    if (!message || max_size == 0)
        return;
    snprintf(message, max_size, "%s", t_last_error);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "handle is NULL");
    cudnnContext *h = make<cudnnContext>(K_HANDLE);
    h->stream = 0;
    h->device = sc_emu_current_device();
    *handle = h;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!handle)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "handle is NULL");
    return destroy(handle, K_HANDLE, __func__);
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId)
{
    cudnnStatus_t s = check_handle(handle, __func__, false);
    if (s == CUDNN_STATUS_SUCCESS)
        handle->stream = streamId;
    return s;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t *streamId)
{
    cudnnStatus_t s = check_handle(handle, __func__, false);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!streamId)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "streamId is NULL");
    *streamId = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc)
{
    if (!tensorDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "tensorDesc is NULL");
    *tensorDesc = make<cudnnTensorStruct>(K_TENSOR);
    return CUDNN_STATUS_SUCCESS;
}

/* cuDNN takes at most 2^31 - 1 elements in a tensor (NOT_SUPPORTED past that). */
static cudnnStatus_t set_tensor(const char *fn, cudnnTensorDescriptor_t t, cudnnDataType_t type, int format,
                                const int dim[4], const long long stride[4])
{
    if (!t)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "tensorDesc is NULL");
    if (!live<cudnnTensorStruct>(t, K_TENSOR, fn))
        return CUDNN_STATUS_BAD_PARAM;
    if (!valid_type(type))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "data type %d", (int)type);
    long long count = 1;
    for (int i = 0; i < 4; i++) {
        if (dim[i] <= 0 || stride[i] <= 0)
            return refuse(CUDNN_STATUS_BAD_PARAM, fn, "dimension %d or stride %lld is not positive", dim[i], stride[i]);
        count *= dim[i];
    }
    if (count > 0x7fffffffLL)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, fn, "%lld elements: more than 2^31 - 1", count);
    t->set = true;
    t->type = type;
    t->format = format;
    for (int i = 0; i < 4; i++) {
        t->dim[i] = dim[i];
        t->stride[i] = stride[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w)
{
    if (format == CUDNN_TENSOR_NCHW_VECT_C)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, __func__, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "format %d", (int)format);
    const int dim[4] = {n, c, h, w};
    long long stride[4];
    if (format == CUDNN_TENSOR_NCHW) {
        stride[3] = 1, stride[2] = w, stride[1] = (long long)h * w, stride[0] = (long long)c * h * w;
    } else {
        stride[1] = 1, stride[3] = c, stride[2] = (long long)w * c, stride[0] = (long long)h * w * c;
    }
    return set_tensor(__func__, tensorDesc, dataType, format, dim, stride);
}

cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int n,
                                           int c, int h, int w, int nStride, int cStride, int hStride, int wStride)
{
    const int dim[4] = {n, c, h, w};
    const long long stride[4] = {nStride, cStride, hStride, wStride};
    return set_tensor(__func__, tensorDesc, dataType, -1, dim, stride);
}

cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t *dataType, int *n,
                                         int *c, int *h, int *w, int *nStride, int *cStride, int *hStride,
                                         int *wStride)
{
    if (!tensorDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "tensorDesc is NULL");
    const cudnnTensorStruct *t = live<cudnnTensorStruct>(tensorDesc, K_TENSOR, __func__);
    if (!t)
        return CUDNN_STATUS_BAD_PARAM;
    if (!t->set)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "the descriptor was never set");
    int *out[8] = {n, c, h, w, nStride, cStride, hStride, wStride};
    for (int i = 0; i < 8; i++)
        if (!out[i])
            return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "an output pointer is NULL");
    if (dataType)
        *dataType = t->type;
    for (int i = 0; i < 4; i++) {
        *out[i] = t->dim[i];
        *out[4 + i] = (int)t->stride[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc)
{
    return destroy(tensorDesc, K_TENSOR, __func__);
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc)
{
    if (!filterDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "filterDesc is NULL");
    *filterDesc = make<cudnnFilterStruct>(K_FILTER);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w)
{
    if (!filterDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "filterDesc is NULL");
    cudnnFilterStruct *f = live<cudnnFilterStruct>(filterDesc, K_FILTER, __func__);
    if (!f)
        return CUDNN_STATUS_BAD_PARAM;
    if (format == CUDNN_TENSOR_NCHW_VECT_C)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, __func__, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
    if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) || !valid_type(dataType) || k <= 0 || c <= 0 ||
        h <= 0 || w <= 0)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "format %d, data type %d, %dx%dx%dx%d", (int)format,
                      (int)dataType, k, c, h, w);
    if ((long long)k * c * h * w > 0x7fffffffLL)
        return refuse(CUDNN_STATUS_NOT_SUPPORTED, __func__, "more than 2^31 - 1 elements");
    f->set = true;
    f->type = dataType;
    f->format = format;
    f->dim[0] = k, f->dim[1] = c, f->dim[2] = h, f->dim[3] = w;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t filterDesc, cudnnDataType_t *dataType,
                                         cudnnTensorFormat_t *format, int *k, int *c, int *h, int *w)
{
    if (!filterDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "filterDesc is NULL");
    const cudnnFilterStruct *f = live<cudnnFilterStruct>(filterDesc, K_FILTER, __func__);
    if (!f)
        return CUDNN_STATUS_BAD_PARAM;
    if (!f->set || !dataType || !format || !k || !c || !h || !w)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "never set, or an output pointer is NULL");
    *dataType = f->type;
    *format = f->format;
    *k = f->dim[0], *c = f->dim[1], *h = f->dim[2], *w = f->dim[3];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc)
{
    return destroy(filterDesc, K_FILTER, __func__);
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc)
{
    if (!convDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "convDesc is NULL");
    cudnnConvolutionStruct *c = make<cudnnConvolutionStruct>(K_CONV);
    c->math = CUDNN_DEFAULT_MATH; /* a new descriptor's math type */
    *convDesc = c;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u,
                                              int v, int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType)
{
    if (!convDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "convDesc is NULL");
    cudnnConvolutionStruct *c = live<cudnnConvolutionStruct>(convDesc, K_CONV, __func__);
    if (!c)
        return CUDNN_STATUS_BAD_PARAM;
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0 ||
        (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_type(computeType))
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "pad %dx%d, stride %dx%d, dilation %dx%d, mode %d, type %d",
                      pad_h, pad_w, u, v, dilation_h, dilation_w, (int)mode, (int)computeType);
    c->set = true;
    c->pad_h = pad_h, c->pad_w = pad_w, c->u = u, c->v = v, c->dil_h = dilation_h, c->dil_w = dilation_w;
    c->mode = mode;
    c->compute = computeType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType)
{
    if (!convDesc)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "convDesc is NULL");
    cudnnConvolutionStruct *c = live<cudnnConvolutionStruct>(convDesc, K_CONV, __func__);
    if (!c)
        return CUDNN_STATUS_BAD_PARAM;
    if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
        mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "math type %d", (int)mathType);
    c->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t *mathType)
{
    if (!convDesc || !mathType)
        return refuse(CUDNN_STATUS_BAD_PARAM, __func__, "convDesc or mathType is NULL");
    const cudnnConvolutionStruct *c = live<cudnnConvolutionStruct>(convDesc, K_CONV, __func__);
    if (!c)
        return CUDNN_STATUS_BAD_PARAM;
    *mathType = c->math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc, int *n, int *c, int *h,
                                                    int *w)
{
    const char *fn = __func__;
    if (!convDesc || !inputTensorDesc || !filterDesc || !n || !c || !h || !w)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor or an output pointer is NULL");
    const cudnnConvolutionStruct *cv = live<cudnnConvolutionStruct>(convDesc, K_CONV, fn);
    const cudnnTensorStruct *x = live<cudnnTensorStruct>(inputTensorDesc, K_TENSOR, fn);
    const cudnnFilterStruct *f = live<cudnnFilterStruct>(filterDesc, K_FILTER, fn);
    if (!cv || !x || !f)
        return CUDNN_STATUS_BAD_PARAM;
    if (!cv->set || !x->set || !f->set)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "a descriptor was created but never set");
    if (x->dim[1] != f->dim[1])
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "the input has %d channels, the filter %d", x->dim[1], f->dim[1]);
    const long long span_h = (long long)(f->dim[2] - 1) * cv->dil_h + 1;
    const long long span_w = (long long)(f->dim[3] - 1) * cv->dil_w + 1;
    const long long oh = (x->dim[2] + 2LL * cv->pad_h - span_h) / cv->u + 1;
    const long long ow = (x->dim[3] + 2LL * cv->pad_w - span_w) / cv->v + 1;
    if (span_h > x->dim[2] + 2LL * cv->pad_h || span_w > x->dim[3] + 2LL * cv->pad_w)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "the filter is larger than the padded input");
    *n = x->dim[0], *c = f->dim[0], *h = (int)oh, *w = (int)ow;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc)
{
    return destroy(convDesc, K_CONV, __func__);
}

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

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    return run({FWD, __func__, handle, alpha, beta, xDesc, yDesc, wDesc, convDesc, x, w, y, (int)algo, workSpace,
                workSpaceSizeInBytes});
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

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    return run({BWD_DATA, __func__, handle, alpha, beta, dxDesc, dyDesc, wDesc, convDesc, w, dy, dx, (int)algo,
                workSpace, workSpaceSizeInBytes});
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

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    return run({BWD_FILTER, __func__, handle, alpha, beta, xDesc, dyDesc, dwDesc, convDesc, x, dy, dw, (int)algo,
                workSpace, workSpaceSizeInBytes});
}

} // extern "C"
