/* The emulated cuDNN's objects (emu_cudnn_internal.h): every handle and descriptor ever made,
 * the refusals and the message cudnnGetLastErrorString gives, the error strings, and the
 * entry points that create, set, read and destroy handles and descriptors. */
#include <stdarg.h>
#include <stdio.h>

#include <mutex>
#include <unordered_map>

#include <cudnn.h>

#include "emu.h"
#include "emu_cudnn_internal.h"

using namespace sc_emu_dnn;

/* ---- objects ------------------------------------------------------------------------- */

namespace {

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

} // namespace

namespace sc_emu_dnn {

__attribute__((format(printf, 3, 4))) cudnnStatus_t refuse(cudnnStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefuse(fn, fmt, ap);
    va_end(ap);
    return s;
}

__attribute__((format(printf, 3, 4))) cudnnStatus_t misuse(cudnnStatus_t s, const char *fn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrefuse(fn, fmt, ap);
    va_end(ap);
    sc_emu_fail("%s", t_last_error);
    return s;
}

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

template cudnnContext *live<cudnnContext>(const void *, Kind, const char *);
template cudnnTensorStruct *live<cudnnTensorStruct>(const void *, Kind, const char *);
template cudnnFilterStruct *live<cudnnFilterStruct>(const void *, Kind, const char *);
template cudnnConvolutionStruct *live<cudnnConvolutionStruct>(const void *, Kind, const char *);

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

} // namespace sc_emu_dnn

namespace {

template <typename T> T *make(Kind kind)
{
    T *o = new T{};
    o->live = true;
    std::lock_guard<std::mutex> lock(g_mu);
    g_objects[o] = kind;
    return o;
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

} // extern "C"
