/* The CUDA backend table: device selection, the per-context stream, cuBLAS and cuDNN
 * handles, error translation, memory and copies, the non-finite scan and the (b,v) <-> (v,b)
 * swap. The loss is in loss.cu, the layers in the files ops.h lists. Every CUDA, cuBLAS and
 * cuDNN status is checked. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_backend.h"
#include "ops.h"

/* ---- Errors ------------------------------------------------------------------------- */

supcon_status sc_cuda_fail(sc_cuda_state *st, supcon_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    return s;
}

supcon_status sc_cuda_check(sc_cuda_state *st, cudaError_t e, const char *call)
{
    if (e == cudaSuccess)
        return SUPCON_OK;
    /* A failed runtime call also leaves its error as the thread's last one; a non-sticky one
     * (out of memory from cudaHostAlloc, say) must not be reported again by the next launch
     * check. Sticky errors stay whatever is done here. */
    (void)cudaGetLastError();
    supcon_status s = e == cudaErrorMemoryAllocation ? SUPCON_ERR_OUT_OF_MEMORY : SUPCON_ERR_DEVICE;
    return sc_cuda_fail(st, s, "%s failed: %s (%s)", call, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}

supcon_status sc_cublas_check(sc_cuda_state *st, cublasStatus_t e, const char *call)
{
    if (e == CUBLAS_STATUS_SUCCESS)
        return SUPCON_OK;
    supcon_status s = e == CUBLAS_STATUS_ALLOC_FAILED ? SUPCON_ERR_OUT_OF_MEMORY : SUPCON_ERR_DEVICE;
    return sc_cuda_fail(st, s, "%s failed: %s (%s)", call, cublasGetStatusString(e),
                        cublasGetStatusName(e));
}

supcon_status sc_cudnn_check(sc_cuda_state *st, cudnnStatus_t e, const char *call)
{
    if (e == CUDNN_STATUS_SUCCESS)
        return SUPCON_OK;
    supcon_status s = e == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                              e == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED
                          ? SUPCON_ERR_OUT_OF_MEMORY
                          : SUPCON_ERR_DEVICE;
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return sc_cuda_fail(st, s, "%s failed: %s (%d)%s%s", call, cudnnGetErrorString(e), (int)e,
                        detail[0] ? ": " : "", detail);
}

supcon_status sc_cuda_launched(sc_cuda_state *st, const char *kernel)
{
    char what[128];
    snprintf(what, sizeof what, "launch of %s", kernel);
    return sc_cuda_check(st, cudaGetLastError(), what);
}

supcon_status sc_cuda_sync(sc_cuda_state *st, const char *what)
{
    char call[160];
    snprintf(call, sizeof call, "cudaStreamSynchronize (after %s)", what);
    return sc_cuda_check(st, cudaStreamSynchronize(st->stream), call);
}

supcon_status sc_cuda_enter(sc_cuda_state *st)
{
    return sc_cuda_check(st, cudaSetDevice(st->device), "cudaSetDevice");
}

supcon_status sc_cuda_workspace(sc_cuda_state *st, size_t bytes)
{
    if (bytes <= st->ws_bytes)
        return SUPCON_OK;
    if (st->ws) {
        supcon_status s = sc_cuda_sync(st, "workspace growth");
        if (s != SUPCON_OK)
            return s;
        cudaFree(st->ws);
        st->ws = NULL;
        st->ws_bytes = 0;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        char call[96];
        snprintf(call, sizeof call, "cudaMalloc(%zu bytes) for the loss workspace", bytes);
        return sc_cuda_check(st, e, call);
    }
    st->ws = p;
    st->ws_bytes = bytes;
    return SUPCON_OK;
}

/* ---- Lifetime ----------------------------------------------------------------------- */

static size_t sc_cuda_tile_budget(void)
{
    const char *env = getenv("SUPCON_CUDA_TILE_BYTES");
    if (env && *env) {
        char *end = NULL;
        unsigned long long v = strtoull(env, &end, 10);
        if (end && *end == '\0' && v > 0)
            return (size_t)v;
    }
    return SC_CUDA_TILE_BYTES_DEFAULT;
}

static void sc_cuda_shutdown(void *state)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (!st)
        return;
    /* Teardown errors have nowhere to go (the state is about to vanish): best effort. */
    (void)cudaSetDevice(st->device);
    if (st->copy_stream)
        (void)cudaStreamSynchronize(st->copy_stream);
    if (st->stream)
        (void)cudaStreamSynchronize(st->stream);
    if (st->ws)
        (void)cudaFree(st->ws);
    if (st->scratch)
        (void)cudaFree(st->scratch);
    if (st->layer_scratch)
        (void)cudaFree(st->layer_scratch);
    sc_cuda_conv_cache_destroy(st);
    if (st->dnn)
        (void)cudnnDestroy(st->dnn);
    if (st->blas)
        (void)cublasDestroy(st->blas);
    if (st->stream)
        (void)cudaStreamDestroy(st->stream);
    if (st->copy_stream)
        (void)cudaStreamDestroy(st->copy_stream);
    free(st);
}

static supcon_status sc_cuda_init_state(sc_cuda_state *st, const supcon_backend_init *cfg)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return sc_cuda_fail(st, SUPCON_ERR_BACKEND_UNAVAILABLE,
                            "no usable CUDA device: cudaGetDeviceCount failed: %s (%s)",
                            cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (count <= 0)
        return sc_cuda_fail(st, SUPCON_ERR_BACKEND_UNAVAILABLE,
                            "no CUDA device is present");
    if (cfg->device < 0 || cfg->device >= count)
        return sc_cuda_fail(st, SUPCON_ERR_BACKEND_UNAVAILABLE,
                            "device %d asked for, but only %d device%s present (0..%d)",
                            cfg->device, count, count == 1 ? " is" : "s are", count - 1);
    st->device = cfg->device;
    e = cudaSetDevice(st->device);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return sc_cuda_fail(st, SUPCON_ERR_BACKEND_UNAVAILABLE,
                            "device %d cannot be used: cudaSetDevice failed: %s (%s)",
                            st->device, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    supcon_status s = sc_cuda_check(st, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking),
                                    "cudaStreamCreateWithFlags");
    if (s != SUPCON_OK)
        return s;
    s = sc_cublas_check(st, cublasCreate(&st->blas), "cublasCreate");
    if (s != SUPCON_OK)
        return s;
    s = sc_cublas_check(st, cublasSetStream(st->blas, st->stream), "cublasSetStream");
    if (s != SUPCON_OK)
        return s;
    /* Plain float32 GEMMs unless TF32 was asked for (SUPCON_PRECISION_TF32): in float32 the
     * loss matches the CPU backend to 1e-5. Under BF16 only the convolutions change. */
    st->allow_tf32 = cfg->precision == SUPCON_PRECISION_TF32;
    st->bf16_convs = cfg->precision == SUPCON_PRECISION_BF16;
    s = sc_cublas_check(st, cublasSetMathMode(st->blas, st->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                        "cublasSetMathMode");
    if (s != SUPCON_OK)
        return s;
    s = sc_cublas_check(st, cublasSetPointerMode(st->blas, CUBLAS_POINTER_MODE_HOST),
                        "cublasSetPointerMode");
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_check(st, cudaMalloc((void **)&st->scratch, sizeof *st->scratch),
                      "cudaMalloc(8 bytes) for the scratch word");
    if (s != SUPCON_OK)
        return s;
    st->tile_bytes = sc_cuda_tile_budget();

    s = sc_cudnn_check(st, cudnnCreate(&st->dnn), "cudnnCreate");
    if (s != SUPCON_OK)
        return s;
    s = sc_cudnn_check(st, cudnnSetStream(st->dnn, st->stream), "cudnnSetStream");
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_conv_cache_create(st);
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_check(st, cudaMalloc(&st->layer_scratch, SC_CUDA_LAYER_SCRATCH_BYTES),
                      "cudaMalloc(4 MiB) for the layers' scratch");
    if (s != SUPCON_OK)
        return s;
    const char *det = getenv("SUPCON_CUDA_CONV_DETERMINISTIC");
    st->conv_deterministic = !(det && strcmp(det, "0") == 0);
    const char *find = getenv("SUPCON_CUDA_CONV_FIND");
    st->conv_find = find && strcmp(find, "1") == 0;
    const char *layout = getenv("SUPCON_CUDA_BF16_LAYOUT");
    st->bf16_nhwc = !(layout && strcmp(layout, "nchw") == 0);
    return SUPCON_OK;
}

static supcon_status sc_cuda_init(const supcon_backend_init *cfg, void **state, char *msg,
                                  size_t len)
{
    if (state)
        *state = NULL;
    if (!cfg || !state) {
        if (msg && len)
            snprintf(msg, len, "init called without config or state pointer");
        return SUPCON_ERR_INVALID_ARGUMENT;
    }
    sc_cuda_state *st = (sc_cuda_state *)calloc(1, sizeof *st);
    if (!st) {
        if (msg && len)
            snprintf(msg, len, "out of host memory for the backend state");
        return SUPCON_ERR_OUT_OF_MEMORY;
    }
    supcon_status s = sc_cuda_init_state(st, cfg);
    if (s != SUPCON_OK) {
        if (msg && len)
            snprintf(msg, len, "%s", st->msg);
        sc_cuda_shutdown(st);
        return s;
    }
    *state = st;
    return SUPCON_OK;
}

static const char *sc_cuda_last_message(void *state)
{
    return state ? ((sc_cuda_state *)state)->msg : "";
}

/* ---- Memory and copies -------------------------------------------------------------- */

static supcon_status sc_cuda_alloc(void *state, size_t bytes, void **out)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    *out = NULL;
    if (bytes == 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    cudaError_t e = cudaMalloc(out, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        *out = NULL;
        char call[64];
        snprintf(call, sizeof call, "cudaMalloc(%zu bytes)", bytes);
        return sc_cuda_check(st, e, call);
    }
    return SUPCON_OK;
}

static void sc_cuda_release(void *state, void *ptr)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (!ptr)
        return;
    /* cudaFree waits for pending work on the pointer; an error here means the device
     * already failed, and that was reported by the call that saw it. */
    if (cudaSetDevice(st->device) == cudaSuccess)
        (void)cudaFree(ptr);
}

/* A copy on the context's stream; with `wait`, the host waits for it (and all before it). */
static supcon_status sc_cuda_memcpy(sc_cuda_state *st, void *dst, const void *src, size_t bytes,
                                    cudaMemcpyKind kind, const char *call, int wait)
{
    if (bytes == 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_check(st, cudaMemcpyAsync(dst, src, bytes, kind, st->stream), call);
    if (s != SUPCON_OK || !wait)
        return s;
    return sc_cuda_sync(st, call);
}

static supcon_status sc_cuda_upload(void *state, void *dst, const void *host_src, size_t bytes)
{
    return sc_cuda_memcpy((sc_cuda_state *)state, dst, host_src, bytes, cudaMemcpyHostToDevice,
                          "cudaMemcpyAsync (host to device)", 1);
}

static supcon_status sc_cuda_download(void *state, void *host_dst, const void *src, size_t bytes)
{
    return sc_cuda_memcpy((sc_cuda_state *)state, host_dst, src, bytes, cudaMemcpyDeviceToHost,
                          "cudaMemcpyAsync (device to host)", 1);
}

/* Device to device: queued on the stream like a kernel, and like a kernel not waited for.
 * Every later call on the context is ordered after it; waiting here would stall the host
 * once per forward (the model copies its input first) and undo the uploader's overlap. */
static supcon_status sc_cuda_copy(void *state, void *dst, const void *src, size_t bytes)
{
    return sc_cuda_memcpy((sc_cuda_state *)state, dst, src, bytes, cudaMemcpyDeviceToDevice,
                          "cudaMemcpyAsync (device to device)", 0);
}

/* Queued like copy: zero_grad runs it every step. */
static supcon_status sc_cuda_fill_zero(void *state, void *dst, size_t bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (bytes == 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    return sc_cuda_check(st, cudaMemsetAsync(dst, 0, bytes, st->stream), "cudaMemsetAsync (zero fill)");
}

/* ---- Non-finite scan ---------------------------------------------------------------- */

/* Every thread that meets a non-finite value lowers *first; the minimum over all of them is
 * the first index, whatever order the blocks run in. */
__global__ void sc_nonfinite_kernel(const float *x, int64_t n, unsigned long long *first)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        if (!isfinite(x[i]))
            atomicMin(first, (unsigned long long)i);
    }
}

static supcon_status sc_cuda_find_nonfinite(void *state, const float *x, int64_t n, int64_t *first)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    *first = -1;
    if (n <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_check(st, cudaMemsetAsync(st->scratch, 0xff, sizeof *st->scratch, st->stream),
                      "cudaMemsetAsync (non-finite index)");
    if (s != SUPCON_OK)
        return s;
    sc_nonfinite_kernel<<<sc_cuda_grid(n, 256, 4096), 256, 0, st->stream>>>(x, n, st->scratch);
    s = sc_cuda_launched(st, "sc_nonfinite_kernel");
    if (s != SUPCON_OK)
        return s;
    unsigned long long idx = 0;
    s = sc_cuda_check(st, cudaMemcpyAsync(&idx, st->scratch, sizeof idx, cudaMemcpyDeviceToHost,
                                          st->stream),
                      "cudaMemcpyAsync (non-finite index)");
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_sync(st, "sc_nonfinite_kernel");
    if (s != SUPCON_OK)
        return s;
    *first = idx == ~0ull ? -1 : (int64_t)idx;
    return SUPCON_OK;
}

/* ---- (b, v, d) <-> (v, b, d) -------------------------------------------------------- */

/* One block row per destination row of d floats: the index arithmetic is per row, the
 * copy along d is contiguous on both sides. */
__global__ void sc_swap_bv_kernel(float *dst, const float *src, int64_t b, int64_t v, int64_t d,
                                  int to_view_major)
{
    int64_t rows = b * v;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t src_row;
        if (to_view_major) { /* dst row r = (vi, bi), src row = (bi, vi) */
            int64_t vi = r / b, bi = r - vi * b;
            src_row = bi * v + vi;
        } else { /* dst row r = (bi, vi), src row = (vi, bi) */
            int64_t bi = r / v, vi = r - bi * v;
            src_row = vi * b + bi;
        }
        const float *s = src + src_row * d;
        float *o = dst + r * d;
        for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
            o[j] = s[j];
    }
}

static supcon_status sc_cuda_swap_bv(void *state, float *dst, const float *src, int64_t b,
                                     int64_t v, int64_t d, int to_view_major)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (b <= 0 || v <= 0 || d <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    unsigned threads = d >= 256 ? 256 : (d >= 128 ? 128 : (d >= 64 ? 64 : 32));
    sc_swap_bv_kernel<<<sc_cuda_grid(b * v, 1, 65535), threads, 0, st->stream>>>(dst, src, b, v, d,
                                                                             to_view_major);
    /* ordered on the stream like the loss's other kernels: nothing to wait for here */
    return sc_cuda_launched(st, "sc_swap_bv_kernel");
}

static size_t sc_cuda_workspace_bytes(void *state)
{
    const sc_cuda_state *st = (const sc_cuda_state *)state;
    return st ? st->ws_bytes + (st->scratch ? sizeof *st->scratch : 0) +
                    (st->layer_scratch ? SC_CUDA_LAYER_SCRATCH_BYTES : 0)
              : 0;
}

static supcon_status sc_cuda_synchronize(void *state)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    supcon_status s = sc_cuda_enter(st);
    return s != SUPCON_OK ? s : sc_cuda_sync(st, "the calls before it");
}

/* ---- The table and the module's one export ------------------------------------------ */

/* Filled by name, everything else zero: slots this backend does not implement stay NULL,
 * which the core reports as ERR_UNSUPPORTED. Built during dlopen. */
static supcon_backend_ops sc_cuda_make_ops(void)
{
    supcon_backend_ops o{};
    o.abi = SUPCON_BACKEND_ABI;
    o.name = "cuda";
    o.init = sc_cuda_init;
    o.shutdown = sc_cuda_shutdown;
    o.last_message = sc_cuda_last_message;
    o.alloc = sc_cuda_alloc;
    o.release = sc_cuda_release;
    o.upload = sc_cuda_upload;
    o.download = sc_cuda_download;
    o.copy = sc_cuda_copy;
    o.find_nonfinite = sc_cuda_find_nonfinite;
    o.swap_bv = sc_cuda_swap_bv;
    o.loss = sc_cuda_loss;
    o.workspace_bytes = sc_cuda_workspace_bytes;
    /* Layers (ABI 2), ops.h */
    o.conv2d_workspace_bytes = sc_cuda_conv2d_workspace_bytes;
    o.conv2d_forward = sc_cuda_conv2d_forward;
    o.conv2d_backward_data = sc_cuda_conv2d_backward_data;
    o.conv2d_backward_filter = sc_cuda_conv2d_backward_filter;
    o.batchnorm_forward_train = sc_cuda_batchnorm_forward_train;
    o.batchnorm_forward_infer = sc_cuda_batchnorm_forward_infer;
    o.batchnorm_backward = sc_cuda_batchnorm_backward;
    o.relu_forward = sc_cuda_relu_forward;
    o.relu_backward = sc_cuda_relu_backward;
    o.add_forward = sc_cuda_add_forward;
    o.add_relu_forward = sc_cuda_add_relu_forward;
    o.accumulate = sc_cuda_accumulate;
    o.avgpool_forward = sc_cuda_avgpool_forward;
    o.avgpool_backward = sc_cuda_avgpool_backward;
    o.linear_forward = sc_cuda_linear_forward;
    o.linear_backward = sc_cuda_linear_backward;
    o.l2norm_forward = sc_cuda_l2norm_forward;
    o.l2norm_backward = sc_cuda_l2norm_backward;
    o.xent_forward = sc_cuda_xent_forward;
    o.xent_backward = sc_cuda_xent_backward;
    o.sgd_update = sc_cuda_sgd_update;
    o.synchronize = sc_cuda_synchronize; /* ABI 4 */
    o.batchnorm_relu_forward_train = sc_cuda_batchnorm_relu_forward_train;
    o.batchnorm_relu_forward_infer = sc_cuda_batchnorm_relu_forward_infer;
    o.batchnorm_relu_backward = sc_cuda_batchnorm_relu_backward;
    o.stage_create = sc_cuda_stage_create; /* ABI 5, stage.cu */
    o.stage_destroy = sc_cuda_stage_destroy;
    o.stage_release = sc_cuda_stage_release;
    o.stage_upload = sc_cuda_stage_upload;
    o.fill_zero = sc_cuda_fill_zero; /* ABI 7 */
    return o;
}

static const supcon_backend_ops sc_cuda_ops = sc_cuda_make_ops();

extern "C" __attribute__((visibility("default"))) const supcon_backend_ops *
supcon_cuda_backend_entry(void)
{
    return &sc_cuda_ops;
}

static_assert(std::is_same<decltype(&supcon_cuda_backend_entry), supcon_backend_entry_fn>::value,
              "supcon_cuda_backend_entry must have the type supcon_backend_entry_fn");
