/* Global average pooling on CUDA, as src/cpu/pool2d.c: each (n, c) plane of hw values to its
 * mean (a warp per plane, summed in double), and back. Leaves out windowed pooling. */
#include "cuda_backend.h"
#include "ops.h"

#define SC_GAP_THREADS 256
#define SC_GAP_MAX_BLOCKS 8192

__global__ void sc_gap_fwd_kernel(float *y, const float *x, int64_t planes, int64_t hw)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t p = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); p < planes; p += warps) {
        const float *xp = x + p * hw;
        double s = 0.0;
        for (int64_t i = lane; i < hw; i += 32)
            s += xp[i];
        for (int o = 16; o > 0; o >>= 1)
            s += __shfl_down_sync(0xffffffffu, s, o);
        if (lane == 0)
            y[p] = (float)(s / (double)hw);
    }
}

/* I: 32-bit indices where the tensor allows (64-bit division is emulated and slow). */
template <typename I> __global__ void sc_gap_bwd_kernel(float *dx, const float *dy, I total, I hw, int accumulate)
{
    const float inv = 1.0f / (float)hw;
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float g = __fmul_rn(dy[i / hw], inv); /* not fused into the += below: the CPU's bits */
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

supcon_status sc_cuda_avgpool_forward(void *state, float *y, const float *x, int64_t n, int64_t c, int64_t hw)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    const int64_t planes = n * c;
    if (planes <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_gap_fwd_kernel<<<sc_cuda_grid(planes, SC_GAP_THREADS / 32, SC_GAP_MAX_BLOCKS), SC_GAP_THREADS, 0,
                        st->stream>>>(y, x, planes, hw);
    return sc_cuda_launched(st, "sc_gap_fwd_kernel");
}

supcon_status sc_cuda_avgpool_backward(void *state, float *dx, const float *dy, int64_t n, int64_t c, int64_t hw,
                                       int accumulate)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    const int64_t total = n * c * hw;
    if (total <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    const unsigned grid = sc_cuda_grid(total, SC_GAP_THREADS, SC_GAP_MAX_BLOCKS);
    if (total < ((int64_t)1 << 31))
        sc_gap_bwd_kernel<uint32_t><<<grid, SC_GAP_THREADS, 0, st->stream>>>(dx, dy, (uint32_t)total, (uint32_t)hw,
                                                                             accumulate);
    else
        sc_gap_bwd_kernel<int64_t><<<grid, SC_GAP_THREADS, 0, st->stream>>>(dx, dy, total, hw, accumulate);
    return sc_cuda_launched(st, "sc_gap_bwd_kernel");
}
