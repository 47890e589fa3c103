/* L2 normalisation of rows on CUDA, as src/cpu/l2norm.c (torch.nn.functional.normalize):
 * y = x / max(||x||, 1e-12), a warp per row, sums and quotients in double as on the CPU. */
#include "cuda_backend.h"
#include "ops.h"

#define SC_L2_EPS 1e-12
#define SC_L2_THREADS 256
#define SC_L2_MAX_BLOCKS 8192

__device__ __forceinline__ double sc_warp_sum(double s)
{
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    return s; /* every lane holds the sum */
}

__global__ void sc_l2_fwd_kernel(float *y, float *norms, const float *x, int64_t n, int64_t d)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < n; r += warps) {
        const float *xr = x + r * d;
        double ss = 0.0;
        for (int64_t k = lane; k < d; k += 32)
            ss += (double)xr[k] * xr[k];
        const double norm = sqrt(sc_warp_sum(ss)), den = norm > SC_L2_EPS ? norm : SC_L2_EPS;
        if (lane == 0)
            norms[r] = (float)norm;
        float *yr = y + r * d;
        for (int64_t k = lane; k < d; k += 32)
            yr[k] = (float)(xr[k] / den);
    }
}

/* Above the clamp: dx = (dy - x (x . dy) / |x|^2) / |x|; at or below it dx = dy / 1e-12. */
__global__ void sc_l2_bwd_kernel(float *dx, const float *dy, const float *x, const float *norms, int64_t n,
                                 int64_t d)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < n; r += warps) {
        const float *xr = x + r * d, *gr = dy + r * d;
        float *dr = dx + r * d;
        const double norm = norms[r];
        if (!(norm > SC_L2_EPS)) {
            for (int64_t k = lane; k < d; k += 32)
                dr[k] = (float)(gr[k] / SC_L2_EPS);
            continue;
        }
        double dot = 0.0;
        for (int64_t k = lane; k < d; k += 32)
            dot += (double)xr[k] * gr[k];
        const double c = sc_warp_sum(dot) / (norm * norm);
        for (int64_t k = lane; k < d; k += 32)
            dr[k] = (float)((gr[k] - xr[k] * c) / norm);
    }
}

supcon_status sc_cuda_l2norm_forward(void *state, float *y, float *norms, const float *x, int64_t n, int64_t d)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (n <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_l2_fwd_kernel<<<sc_cuda_grid(n, SC_L2_THREADS / 32, SC_L2_MAX_BLOCKS), SC_L2_THREADS, 0, st->stream>>>(
        y, norms, x, n, d);
    return sc_cuda_launched(st, "sc_l2_fwd_kernel");
}

supcon_status sc_cuda_l2norm_backward(void *state, float *dx, const float *dy, const float *x, const float *norms,
                                      int64_t n, int64_t d)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (n <= 0 || d <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_l2_bwd_kernel<<<sc_cuda_grid(n, SC_L2_THREADS / 32, SC_L2_MAX_BLOCKS), SC_L2_THREADS, 0, st->stream>>>(
        dx, dy, x, norms, n, d);
    return sc_cuda_launched(st, "sc_l2_bwd_kernel");
}
