/* Linear with bias on CUDA (torch.nn.Linear: weight (out, in)), as src/cpu/linear.c: three
 * cuBLAS SGEMMs in the handle's pure float32 math mode, the row-major matrices read as their
 * column-major transposes, and a column sum for the bias gradient. */
#include <limits.h>

#include "cuda_backend.h"
#include "ops.h"

#define SC_LIN_THREADS 256

/* Each row of y (n, out) starts as the bias. */
__global__ void sc_lin_bias_kernel(float *y, const float *bias, int64_t n, int64_t out)
{
    const int64_t total = n * out, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        y[i] = bias ? bias[i % out] : 0.0f;
}

/* dbias (out) += column sums of dy (n, out): a thread per column, rows in order, in double
 * (neighbouring threads read neighbouring columns, so the loads are coalesced). */
__global__ void sc_lin_dbias_kernel(float *dbias, const float *dy, int64_t n, int64_t out)
{
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= out)
        return;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += dy[i * out + j];
    dbias[j] += (float)s;
}

static supcon_status sc_lin_dims(sc_cuda_state *st, int64_t n, int64_t in, int64_t out)
{
    if (n > INT_MAX || in > INT_MAX || out > INT_MAX)
        return sc_cuda_fail(st, SUPCON_ERR_SHAPE, "linear (%lld x %lld -> %lld) is too large for cuBLAS's int sizes",
                            (long long)n, (long long)in, (long long)out);
    return sc_cuda_enter(st);
}

supcon_status sc_cuda_linear_forward(void *state, float *y, const float *x, const float *weight,
                                     const float *bias, int64_t n, int64_t in, int64_t out)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (n <= 0 || out <= 0)
        return SUPCON_OK;
    supcon_status s = sc_lin_dims(st, n, in, out);
    if (s != SUPCON_OK)
        return s;
    /* y = bias, then y += x W^T (or y = x W^T without bias: beta 0 never reads y) */
    if (bias || in <= 0) {
        sc_lin_bias_kernel<<<sc_cuda_grid(n * out, SC_LIN_THREADS, 4096), SC_LIN_THREADS, 0, st->stream>>>(y, bias, n,
                                                                                                       out);
        s = sc_cuda_launched(st, "sc_lin_bias_kernel");
        if (s != SUPCON_OK || in <= 0)
            return s;
    }
    /* column-major: y^T (out, n) = W (out, in) [W^T stored (in, out)] x^T (in, n) */
    const float one = 1.0f, beta = bias ? 1.0f : 0.0f;
    return sc_cublas_check(st,
                           cublasSgemm(st->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)n, (int)in, &one, weight,
                                       (int)in, x, (int)in, &beta, y, (int)out),
                           "cublasSgemm (linear forward)");
}

supcon_status sc_cuda_linear_backward(void *state, float *dx, float *dweight, float *dbias, const float *dy,
                                      const float *x, const float *weight, int64_t n, int64_t in, int64_t out)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    supcon_status s = sc_lin_dims(st, n, in, out);
    if (s != SUPCON_OK)
        return s;
    const float one = 1.0f, zero = 0.0f;
    if (dweight && n > 0 && in > 0 && out > 0) {
        /* column-major: dW^T (in, out) += x^T (in, n) dy (n, out) [dy^T stored (out, n)] */
        s = sc_cublas_check(st,
                            cublasSgemm(st->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)in, (int)out, (int)n, &one, x,
                                        (int)in, dy, (int)out, &one, dweight, (int)in),
                            "cublasSgemm (linear weight gradient)");
        if (s != SUPCON_OK)
            return s;
    }
    if (dbias && n > 0 && out > 0) {
        sc_lin_dbias_kernel<<<sc_cuda_grid(out, SC_LIN_THREADS, 1u << 20), SC_LIN_THREADS, 0, st->stream>>>(dbias, dy,
                                                                                                       n, out);
        s = sc_cuda_launched(st, "sc_lin_dbias_kernel");
        if (s != SUPCON_OK)
            return s;
    }
    if (dx && n > 0 && in > 0) {
        if (out <= 0)
            return sc_cuda_check(st, cudaMemsetAsync(dx, 0, (size_t)(n * in) * sizeof(float), st->stream),
                                 "cudaMemsetAsync (linear dx)");
        /* column-major: dx^T (in, n) = W^T (in, out) dy^T (out, n) */
        s = sc_cublas_check(st,
                            cublasSgemm(st->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)in, (int)n, (int)out, &one, weight,
                                        (int)in, dy, (int)out, &zero, dx, (int)in),
                            "cublasSgemm (linear input gradient)");
    }
    return s;
}
