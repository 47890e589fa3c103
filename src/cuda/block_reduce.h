/* Block-wide reductions for the layer kernels: warp shuffles, then one value per warp in
 * shared memory. The order of the additions depends only on blockDim, so a kernel's sums are
 * the same bits on every run. Device code only; blockDim.x must be a multiple of 32 and at
 * most 1024. */
#ifndef SUPCON_CUDA_BLOCK_REDUCE_H
#define SUPCON_CUDA_BLOCK_REDUCE_H

#include <math.h>

#include <cuda_runtime.h>

/* Shared memory a reduction needs: one slot per warp. */
#define SC_REDUCE_SLOTS 32

template <typename T> struct sc_op_sum {
    __device__ static T apply(T a, T b) { return a + b; }
};
template <typename T> struct sc_op_max {
    __device__ static T apply(T a, T b) { return a > b ? a : b; }
};

/* The reduction of every thread's v, returned to every thread of the block. id is the
 * operation's identity (fills the lanes past the last warp); sh holds SC_REDUCE_SLOTS
 * values; every thread of the block must call. */
template <typename Op, typename T> __device__ T sc_block_reduce(T v, T id, T *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v = Op::apply(v, __shfl_down_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? sh[lane] : id;
        for (int o = 16; o > 0; o >>= 1)
            v = Op::apply(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    const T r = sh[0];
    __syncthreads(); /* sh may be reused by the next reduction */
    return r;
}

template <typename T> __device__ T sc_block_sum(T v, T *sh) { return sc_block_reduce<sc_op_sum<T>, T>(v, T(0), sh); }
/* Max of floats; a NaN anywhere may or may not win (as fmaxf would not): callers that care
 * check finiteness themselves. */
__device__ inline float sc_block_max(float v, float *sh)
{
    return sc_block_reduce<sc_op_max<float>, float>(v, -INFINITY, sh);
}

#endif /* SUPCON_CUDA_BLOCK_REDUCE_H */
