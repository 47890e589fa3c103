/* Rounding to bfloat16 and back for the convolutions under SUPCON_PRECISION_BF16 (conv.cu):
 * float32 operands into the workspace's bfloat16 copies, and the bfloat16 results out into
 * float32 tensors (stored, or added where a gradient accumulates). To nearest even, as the
 * CPU's sc_bf16_round. The copies keep the tensor's layout (grid-stride kernels), or put the
 * channels last: each image (or filter) is a (c, hw) matrix transposed through shared-memory
 * tiles of 32 x 32, so that both the float32 side and the bfloat16 side are read and written
 * along their contiguous dimension. */
#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda_backend.h"

#define SC_BF16_THREADS 256
#define SC_BF16_MAX_BLOCKS 8192
#define SC_TILE 32     /* tile side */
#define SC_TILE_ROWS 8 /* threads per tile column: each thread moves 4 elements */
#define SC_MAX_GRID_Z 65535

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

/* src (n, c, hw) float32 -> dst (n, hw, c) bfloat16. Block (x, y) moves channels
 * [32 y, 32 y + 32) of pixels [32 x, 32 x + 32); z walks the images. */
__global__ void sc_to_bf16_rows_kernel(__nv_bfloat16 *dst, const float *src, int64_t n, int64_t c, int64_t hw)
{
    __shared__ float tile[SC_TILE][SC_TILE + 1]; /* [channel][pixel]; +1: no bank conflicts */
    const int64_t p0 = (int64_t)blockIdx.x * SC_TILE, c0 = (int64_t)blockIdx.y * SC_TILE;
    for (int64_t img = blockIdx.z; img < n; img += gridDim.z) {
        const float *s = src + img * c * hw;
        __nv_bfloat16 *o = dst + img * c * hw;
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) {
            const int64_t ch = c0 + r, p = p0 + threadIdx.x;
            if (ch < c && p < hw)
                tile[r][threadIdx.x] = s[ch * hw + p];
        }
        __syncthreads();
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) {
            const int64_t p = p0 + r, ch = c0 + threadIdx.x;
            if (p < hw && ch < c)
                o[p * c + ch] = __float2bfloat16_rn(tile[threadIdx.x][r]);
        }
        __syncthreads();
    }
}

/* src (n, hw, c) bfloat16 -> dst (n, c, hw) float32, stored or added. */
__global__ void sc_from_bf16_rows_kernel(float *dst, const __nv_bfloat16 *src, int64_t n, int64_t c, int64_t hw,
                                         int accumulate)
{
    __shared__ float tile[SC_TILE][SC_TILE + 1]; /* [pixel][channel] */
    const int64_t p0 = (int64_t)blockIdx.x * SC_TILE, c0 = (int64_t)blockIdx.y * SC_TILE;
    for (int64_t img = blockIdx.z; img < n; img += gridDim.z) {
        const __nv_bfloat16 *s = src + img * c * hw;
        float *o = dst + img * c * hw;
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) {
            const int64_t p = p0 + r, ch = c0 + threadIdx.x;
            if (p < hw && ch < c)
                tile[r][threadIdx.x] = __bfloat162float(s[p * c + ch]);
        }
        __syncthreads();
        for (int r = threadIdx.y; r < SC_TILE; r += SC_TILE_ROWS) {
            const int64_t ch = c0 + r, p = p0 + threadIdx.x;
            if (ch < c && p < hw) {
                const float v = tile[threadIdx.x][r];
                o[ch * hw + p] = accumulate ? o[ch * hw + p] + v : v;
            }
        }
        __syncthreads();
    }
}

/* How a copy of (n, c, hw) runs: 1 with the tiles of a transpose in *grid (channels last,
 * and more than one channel and pixel), 0 as a plain copy (the layouts then agree), -1 when
 * the grid cannot cover it (conv.cu's planning refuses such shapes first). */
static int sc_copy_kind(sc_cuda_state *st, int64_t n, int64_t c, int64_t hw, int rows, dim3 *grid)
{
    if (!rows || c <= 1 || hw <= 1)
        return 0;
    const int64_t gx = (hw + SC_TILE - 1) / SC_TILE, gy = (c + SC_TILE - 1) / SC_TILE;
    if (gx > INT32_MAX || gy > 65535) {
        (void)sc_cuda_fail(st, SUPCON_ERR_SHAPE, "bfloat16 copy of (%lld, %lld, %lld): too large to tile",
                           (long long)n, (long long)c, (long long)hw);
        return -1;
    }
    *grid = dim3((unsigned)gx, (unsigned)gy, (unsigned)(n < SC_MAX_GRID_Z ? n : SC_MAX_GRID_Z));
    return 1;
}

supcon_status sc_cuda_to_bf16(sc_cuda_state *st, void *dst, const float *src, int64_t n, int64_t c, int64_t hw,
                              int rows)
{
    const int64_t count = n * c * hw;
    dim3 grid;
    const int kind = count > 0 ? sc_copy_kind(st, n, c, hw, rows, &grid) : 0;
    if (count <= 0 || kind < 0)
        return kind < 0 ? SUPCON_ERR_SHAPE : SUPCON_OK;
    if (kind == 1)
        sc_to_bf16_rows_kernel<<<grid, dim3(SC_TILE, SC_TILE_ROWS), 0, st->stream>>>((__nv_bfloat16 *)dst, src, n,
                                                                                     c, hw);
    else
        sc_to_bf16_kernel<<<sc_cuda_grid(count, SC_BF16_THREADS, SC_BF16_MAX_BLOCKS), SC_BF16_THREADS, 0,
                            st->stream>>>((__nv_bfloat16 *)dst, src, count);
    return sc_cuda_launched(st, kind == 1 ? "sc_to_bf16_rows_kernel" : "sc_to_bf16_kernel");
}

supcon_status sc_cuda_from_bf16(sc_cuda_state *st, float *dst, const void *src, int64_t n, int64_t c, int64_t hw,
                                int rows, int accumulate)
{
    const int64_t count = n * c * hw;
    dim3 grid;
    const int kind = count > 0 ? sc_copy_kind(st, n, c, hw, rows, &grid) : 0;
    if (count <= 0 || kind < 0)
        return kind < 0 ? SUPCON_ERR_SHAPE : SUPCON_OK;
    if (kind == 1)
        sc_from_bf16_rows_kernel<<<grid, dim3(SC_TILE, SC_TILE_ROWS), 0, st->stream>>>(
            dst, (const __nv_bfloat16 *)src, n, c, hw, accumulate);
    else
        sc_from_bf16_kernel<<<sc_cuda_grid(count, SC_BF16_THREADS, SC_BF16_MAX_BLOCKS), SC_BF16_THREADS, 0,
                              st->stream>>>(dst, (const __nv_bfloat16 *)src, count, accumulate);
    return sc_cuda_launched(st, kind == 1 ? "sc_from_bf16_rows_kernel" : "sc_from_bf16_kernel");
}
