/* Rounding to bfloat16 and back for the convolutions under SUPCON_PRECISION_BF16 (conv.cu):
 * float32 operands into the workspace's bfloat16 copies, and the bfloat16 results out into
 * float32 tensors (stored, or added where a gradient accumulates). To nearest even, as the
 * CPU's sc_bf16_round. Grid-stride kernels; each element read and written by one thread. */
#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda_backend.h"

#define SC_BF16_THREADS 256
#define SC_BF16_MAX_BLOCKS 8192

__global__ void sc_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = __float2bfloat16_rn(src[i]);
}

__global__ void sc_from_bf16_kernel(float *dst, const __nv_bfloat16 *src, int64_t n, int accumulate)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = __bfloat162float(src[i]);
        dst[i] = accumulate ? dst[i] + v : v;
    }
}

supcon_status sc_cuda_to_bf16(sc_cuda_state *st, void *dst, const float *src, int64_t n)
{
    if (n <= 0)
        return SUPCON_OK;
    sc_to_bf16_kernel<<<sc_cuda_grid(n, SC_BF16_THREADS, SC_BF16_MAX_BLOCKS), SC_BF16_THREADS, 0, st->stream>>>(
        (__nv_bfloat16 *)dst, src, n);
    return sc_cuda_launched(st, "sc_to_bf16_kernel");
}

supcon_status sc_cuda_from_bf16(sc_cuda_state *st, float *dst, const void *src, int64_t n, int accumulate)
{
    if (n <= 0)
        return SUPCON_OK;
    sc_from_bf16_kernel<<<sc_cuda_grid(n, SC_BF16_THREADS, SC_BF16_MAX_BLOCKS), SC_BF16_THREADS, 0, st->stream>>>(
        dst, (const __nv_bfloat16 *)src, n, accumulate);
    return sc_cuda_launched(st, "sc_from_bf16_kernel");
}
