/* The emulation's cuBLAS: handles and SGEMM (column-major, as cuBLAS), computed by OpenBLAS.
 * Arguments cuBLAS documents as invalid give CUBLAS_STATUS_INVALID_VALUE; what a GPU would
 * fault on (a matrix outside device memory, a destroyed handle) is also recorded (emu.h). */
#include <cblas.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <cublas_v2.h>

#include "emu.h"
#include "emu_queue.h"
#include "emu_round.h"

struct sc_emu_cublas_context {
    cudaStream_t stream;
    cublasPointerMode_t pointer_mode;
    cublasMath_t math;
    int device; /* current at cublasCreate: the handle works on that device only */
};

namespace {

/* Every handle ever made, and whether it is still alive. Destroyed ones are kept (never
 * freed) so that a stale pointer is recognised instead of aliasing a newer handle. */
std::mutex g_mu;
/* Never destroyed, so that the handles kept after cublasDestroy (to recognise a stale one)
 * stay reachable for a leak checker running after static destructors. */
std::unordered_map<const sc_emu_cublas_context *, bool> &g_handles =
    *new std::unordered_map<const sc_emu_cublas_context *, bool>();

bool handle_live(cublasHandle_t h)
{
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_handles.find(h);
    return it != g_handles.end() && it->second;
}

/* A destroyed or never-made handle is undefined behaviour in cuBLAS: refused and recorded. */
bool check_handle(cublasHandle_t h, const char *fn)
{
    if (handle_live(h))
        return true;
    sc_emu_fail("%s: cuBLAS handle %p is not a live handle (never created, or destroyed)", fn, (const void *)h);
    return false;
}

/* Scalars: host memory in POINTER_MODE_HOST (a device address there is a host-side fault),
 * device memory in POINTER_MODE_DEVICE. */
bool read_scalar(cublasHandle_t h, const float *p, const char *what, const char *fn, float *out)
{
    if (h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) {
        if (!sc_emu_check_range(p, sizeof(float), SC_EMU_DEVICE, what))
            return false;
    } else if (sc_emu_in_space(p, sizeof(float), SC_EMU_DEVICE)) {
        sc_emu_fail("%s: %s %p is device memory under CUBLAS_POINTER_MODE_HOST", fn, what, (const void *)p);
        return false;
    }
    *out = *p;
    return true;
}

/* Elements spanned by a column-major rows x cols matrix with leading dimension ld. */
size_t extent(int rows, int cols, int ld)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    return (size_t)(cols - 1) * (size_t)ld + (size_t)rows;
}

bool overlap(const void *a, size_t abytes, const void *b, size_t bbytes)
{
    const char *pa = (const char *)a, *pb = (const char *)b;
    return abytes && bbytes && pa < pb + bbytes && pb < pa + abytes;
}

/* A packed (ld = rows) copy of a stored matrix with every element rounded to TF32. */
std::vector<float> tf32_copy(const float *a, int rows, int cols, int ld)
{
    std::vector<float> out((size_t)rows * (size_t)cols);
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++)
            out[(size_t)j * rows + i] = sc_emu_tf32(a[(size_t)j * ld + i]);
    return out;
}

/* The math modes whose SGEMM runs on TF32 tensor cores (CUBLAS_TENSOR_OP_MATH, deprecated,
 * would round to half; not used by the module, taken as TF32 here: the same 10 bits). */
bool uses_tf32(cublasMath_t mode)
{
    const int base = (int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    return (base == CUBLAS_TF32_TENSOR_OP_MATH || base == CUBLAS_TENSOR_OP_MATH) && sc_emu_tf32_allowed();
}

CBLAS_TRANSPOSE cblas_op(cublasOperation_t op)
{
    return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    sc_emu_cublas_context *h = new sc_emu_cublas_context{};
    h->stream = 0;
    h->pointer_mode = CUBLAS_POINTER_MODE_HOST;
    h->math = CUBLAS_DEFAULT_MATH;
    h->device = sc_emu_current_device();
    {
        std::lock_guard<std::mutex> lock(g_mu);
        g_handles[h] = true;
    }
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_handles.find(handle);
    if (it == g_handles.end() || !it->second) {
        sc_emu_fail("cublasDestroy: cuBLAS handle %p is not a live handle", (const void *)handle);
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    it->second = false;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream)
{
    if (!check_handle(handle, "cublasSetStream"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream)
{
    if (!check_handle(handle, "cublasGetStream"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream)
        return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode)
{
    if (!check_handle(handle, "cublasSetPointerMode"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t *mode)
{
    if (!check_handle(handle, "cublasGetPointerMode"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (!check_handle(handle, "cublasSetMathMode"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const int base = (int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base < 0 || (base > CUBLAS_FP32_EMULATED_BF16X9_MATH && base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH))
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode)
{
    if (!check_handle(handle, "cublasGetMathMode"))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "the device lacks a required architectural feature";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the requested functionality is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "a license check failed";
    }
    return "unknown error";
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc)
{
    static const char fn[] = "cublasSgemm";
    if (!check_handle(handle, fn))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (handle->device != sc_emu_current_device()) {
        sc_emu_fail("%s: handle made on device %d used while device %d is current", fn, handle->device,
                    sc_emu_current_device());
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (!sc_emu_check_stream(handle->stream, "cublasSgemm: the handle's stream"))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    /* what cuBLAS documents as CUBLAS_STATUS_INVALID_VALUE (OP_C is OP_T for real data) */
    const bool ok_ops = (transa == CUBLAS_OP_N || transa == CUBLAS_OP_T || transa == CUBLAS_OP_C) &&
                        (transb == CUBLAS_OP_N || transb == CUBLAS_OP_T || transb == CUBLAS_OP_C);
    if (!ok_ops || m < 0 || n < 0 || k < 0 || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
    const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
    if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;

    float a = 0.0f, b = 0.0f;
    if (!read_scalar(handle, alpha, "alpha", fn, &a) || !read_scalar(handle, beta, "beta", fn, &b))
        return CUBLAS_STATUS_INVALID_VALUE;
    const bool product = k > 0 && a != 0.0f; /* else A and B are not read */
    const size_t a_bytes = product ? extent(a_rows, a_cols, lda) * sizeof(float) : 0;
    const size_t b_bytes = product ? extent(b_rows, b_cols, ldb) * sizeof(float) : 0;
    const size_t c_bytes = extent(m, n, ldc) * sizeof(float);
    if ((a_bytes && !sc_emu_check_range(A, a_bytes, SC_EMU_DEVICE, "cublasSgemm A")) ||
        (b_bytes && !sc_emu_check_range(B, b_bytes, SC_EMU_DEVICE, "cublasSgemm B")) ||
        !sc_emu_check_range(C, c_bytes, SC_EMU_DEVICE, "cublasSgemm C"))
        return CUBLAS_STATUS_INVALID_VALUE;
    /* C written while A or B is read: undefined on a GPU (blocks race) */
    if (overlap(C, c_bytes, A, a_bytes) || overlap(C, c_bytes, B, b_bytes)) {
        sc_emu_fail("%s: C [%p, +%zu bytes) overlaps A or B", fn, (void *)C, c_bytes);
        return CUBLAS_STATUS_INVALID_VALUE;
    }

    /* The product runs on the handle's stream, when something waits for it (emu_queue.h);
     * alpha and beta were read now, as cuBLAS reads host scalars at the call. */
    const bool tf32 = uses_tf32(handle->math);
    sc_emu::submit(handle->stream, fn, [=] {
        /* beta 0: C is set, never read (NaN there must not come through) */
        if (b == 0.0f)
            for (int j = 0; j < n; j++)
                std::fill(C + (size_t)j * ldc, C + (size_t)j * ldc + m, 0.0f);
        if (!product) {
            if (b != 0.0f && b != 1.0f)
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++)
                        C[(size_t)j * ldc + i] *= b;
            return;
        }
        if (tf32) { /* tensor cores see A and B rounded to TF32 */
            const std::vector<float> ta = tf32_copy(A, a_rows, a_cols, lda), tb = tf32_copy(B, b_rows, b_cols, ldb);
            cblas_sgemm(CblasColMajor, cblas_op(transa), cblas_op(transb), m, n, k, a, ta.data(),
                        std::max(1, a_rows), tb.data(), std::max(1, b_rows), b, C, ldc);
        } else {
            cblas_sgemm(CblasColMajor, cblas_op(transa), cblas_op(transb), m, n, k, a, A, lda, B, ldb, b, C, ldc);
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
