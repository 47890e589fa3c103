/* Rounding to bfloat16 and back for the convolutions under SUPCON_PRECISION_BF16 (conv.cu):
 * float32 operands into the workspace's bfloat16 copies, and the bfloat16 results out into
 * float32 tensors (stored, or added where a gradient accumulates). To nearest even, as the
 * CPU's sc_bf16_round. The copies keep the tensor's layout (a grid-stride copy), or put the
 * channels last: each image (or filter) is a (c, hw) matrix, transposed to (hw, c) on the way
 * in and back on the way out through shared-memory tiles of 32 x 32, so that both sides are
 * read and written along their contiguous dimension. One kernel of each kind serves both
 * directions: they differ in the element types only. */
#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda_backend.h"

#define SC_BF16_THREADS 256
#define SC_BF16_MAX_BLOCKS 8192
#define SC_TILE 32     /* tile side */
#define SC_TILE_ROWS 8 /* threads per tile column: each thread moves 4 elements */
#define SC_MAX_GRID_Z 65535

__device__ __forceinline__ float sc_load(const float *p) { return *p; }
__device__ __forceinline__ float sc_load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
/* Into a copy (never accumulated) or into a float32 tensor, stored or added. */
__device__ __forceinline__ void sc_store(__nv_bfloat16 *p, float v, int) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void sc_store(float *p, float v, int accumulate) { *p = accumulate ? *p + v : v; }

template <typename D, typename S> __global__ void sc_copy_kernel(D *dst, const S *src, int64_t n, int accumulate)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        sc_store(dst + i, sc_load(src + i), accumulate);
}

/* Each of n (rows, cols) matrices of src into dst as (cols, rows). Block (x, y) moves columns
 * [32 x, 32 x + 32) of rows [32 y, 32 y + 32); z walks the matrices. */
template <typename D, typename S>
__global__ void sc_transpose_kernel(D *dst, const S *src, int64_t n, int64_t rows, int64_t cols, int accumulate)
{
    __shared__ float tile[SC_TILE][SC_TILE + 1]; /* [row][col]; +1: no bank conflicts */
    const int64_t c0 = (int64_t)blockIdx.x * SC_TILE, r0 = (int64_t)blockIdx.y * SC_TILE;
    for (int64_t m = blockIdx.z; m < n; m += gridDim.z) {
        const S *s = src + m * rows * cols;
        D *o = dst + m * rows * cols;
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) { /* along src's rows */
            const int64_t row = r0 + r, col = c0 + threadIdx.x;
            if (row < rows && col < cols)
                tile[r][threadIdx.x] = sc_load(s + row * cols + col);
        }
        __syncthreads();
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) { /* along dst's rows */
            const int64_t col = c0 + r, row = r0 + threadIdx.x;
            if (col < cols && row < rows)
                sc_store(o + col * rows + row, tile[threadIdx.x][r], accumulate);
        }
        __syncthreads();
    }
}

/* Queues the copy of n (rows, cols) matrices, transposed or not. */
template <typename D, typename S>
static supcon_status sc_queue_copy(sc_cuda_state *st, D *dst, const S *src, int64_t n, int64_t rows, int64_t cols,
                                   int transpose, int accumulate)
{
    const int64_t count = n * rows * cols;
    if (count <= 0)
        return SUPCON_OK;
    if (!transpose || rows <= 1 || cols <= 1) { /* a plain copy (one row or column: the layouts agree) */
        sc_copy_kernel<<<sc_cuda_grid(count, SC_BF16_THREADS, SC_BF16_MAX_BLOCKS), SC_BF16_THREADS, 0, st->stream>>>(
            dst, src, count, accumulate);
        return sc_cuda_launched(st, "sc_copy_kernel (bfloat16)");
    }
    const int64_t gx = (cols + SC_TILE - 1) / SC_TILE, gy = (rows + SC_TILE - 1) / SC_TILE;
    if (gx > INT32_MAX || gy > 65535) /* conv.cu's planning refuses such shapes first */
        return sc_cuda_fail(st, SUPCON_ERR_SHAPE, "bfloat16 copy of %lld (%lld, %lld) matrices: too large to tile",
                            (long long)n, (long long)rows, (long long)cols);
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)(n < SC_MAX_GRID_Z ? n : SC_MAX_GRID_Z));
    sc_transpose_kernel<<<grid, dim3(SC_TILE, SC_TILE_ROWS), 0, st->stream>>>(dst, src, n, rows, cols, accumulate);
    return sc_cuda_launched(st, "sc_transpose_kernel (bfloat16)");
}

supcon_status sc_cuda_to_bf16(sc_cuda_state *st, void *dst, const float *src, int64_t n, int64_t c, int64_t hw,
                              int rows)
{
    return sc_queue_copy(st, (__nv_bfloat16 *)dst, src, n, c, hw, rows, 0);
}

supcon_status sc_cuda_from_bf16(sc_cuda_state *st, float *dst, const void *src, int64_t n, int64_t c, int64_t hw,
                                int rows, int accumulate)
{
    /* the copy is (n, hw, c) when channels last: transposing it gives (n, c, hw) */
    return sc_queue_copy(st, dst, (const __nv_bfloat16 *)src, n, rows ? hw : c, rows ? c : hw, rows, accumulate);
}
