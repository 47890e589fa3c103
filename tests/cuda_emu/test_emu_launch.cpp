/* Self-test of the CUDA emulation's runtime and executor: kernels written as for nvcc and
 * launched as the build's rewrite launches them. Prints each check that fails; exits 0 when
 * all pass, 1 otherwise (and 70, from the emulation, if a failure was left recorded). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "emu.h"

static int g_bad = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            g_bad++;                                                                               \
        }                                                                                          \
    } while (0)

#define CUDA_OK(call) CHECK((call) == cudaSuccess, "%s", cudaGetErrorName(cudaGetLastError()))

/* Expect exactly the failures a misuse records, and nothing sticky left behind. */
static void expect_failures(const char *what, bool want)
{
    CHECK((sc_emu_failures() > 0) == want, "%s: %d failure(s) recorded", what, sc_emu_failures());
    sc_emu_forget_failures();
    sc_emu_clear_sticky_error();
    (void)cudaGetLastError();
}

/* ---- Kernels ---------------------------------------------------------------------------- */

/* Sum over the block: shuffles within warps, one slot per warp in shared memory, shuffles
 * again in warp 0. blockDim.x: a multiple of 32. */
__device__ double block_sum(double v)
{
    __shared__ double part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? part[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0)
            part[0] = v;
    }
    __syncthreads();
    const double r = part[0];
    __syncthreads();
    return r;
}

/* out[b] = sum of x over the rows b, b + gridDim.x, ...; all threads check the broadcast. */
__global__ void row_sums(double *out, const double *x, int rows, int cols, int *mismatch)
{
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        double s = 0.0;
        for (int k = threadIdx.x; k < cols; k += blockDim.x)
            s += x[(int64_t)r * cols + k];
        const double t = block_sum(s);
        const double t2 = block_sum(s); /* back to back: shared memory reused */
        if (t != t2)
            atomicAdd(mismatch, 1);
        if (threadIdx.x == 0)
            out[r] = t;
    }
}

/* Each lane shuffles its own lane id (and a 64-bit value) every way. */
__global__ void shuffles(int *out, long long *out64, double *outd, int delta, int width)
{
    const int lane = threadIdx.x & 31, base = (threadIdx.x >> 5) * 32 * 6;
    out[base + lane * 6 + 0] = __shfl_down_sync(0xffffffffu, lane, (unsigned)delta, width);
    out[base + lane * 6 + 1] = __shfl_up_sync(0xffffffffu, lane, (unsigned)delta, width);
    out[base + lane * 6 + 2] = __shfl_xor_sync(0xffffffffu, lane, delta, width);
    out[base + lane * 6 + 3] = __shfl_sync(0xffffffffu, lane, delta, width);
    out[base + lane * 6 + 4] = __shfl_sync(0xffffffffu, lane, -1 - delta, width);
    out[base + lane * 6 + 5] = (int)__shfl_xor_sync(0xffffffffu, (unsigned)lane * 3u, 1);
    out64[threadIdx.x] = __shfl_down_sync(0xffffffffu, (long long)lane << 40, 1);
    outd[threadIdx.x] = __shfl_xor_sync(0xffffffffu, lane + 0.25, 31);
}

/* (rows, cols) into (cols, rows) through a 32 x 32 tile; blocks of (32, 8). */
template <typename D, typename S> __global__ void transpose(D *dst, const S *src, int rows, int cols)
{
    __shared__ float tile[32][33];
    const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int r = threadIdx.y; r < 32; r += 8)
        if (r0 + r < rows && c0 + (int)threadIdx.x < cols)
            tile[r][threadIdx.x] = (float)src[(r0 + r) * cols + c0 + threadIdx.x];
    __syncthreads();
    for (int r = threadIdx.y; r < 32; r += 8)
        if (c0 + r < cols && r0 + (int)threadIdx.x < rows)
            dst[(c0 + r) * rows + r0 + threadIdx.x] = (D)tile[threadIdx.x][r];
}

__global__ void first_negative(unsigned long long *first, const float *x, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        if (x[i] < 0.0f)
            atomicMin(first, (unsigned long long)i);
}

__global__ void scale(float *y, const float *x, int64_t n, float a)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __fmul_rn(a, x[i]);
}

/* Divergent: only the first half of the block reaches the barrier. */
__global__ void half_barrier(float *y)
{
    if (threadIdx.x < blockDim.x / 2) {
        __syncthreads();
        y[threadIdx.x] = 1.0f;
    }
}

/* Divergent: two halves at different barriers. */
__global__ void two_barriers(float *y)
{
    if (threadIdx.x & 1) {
        y[threadIdx.x] = 1.0f;
        __syncthreads();
        y[threadIdx.x] += 1.0f;
    } else {
        y[threadIdx.x] = 2.0f;
        __syncthreads();
        y[threadIdx.x] *= 3.0f;
    }
}

/* Part of a warp shuffles. */
__global__ void partial_shuffle(float *y)
{
    if (threadIdx.x < 16)
        y[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
}

__global__ void write_one_past(float *y, int n) { y[n] = 0.0f; }

/* The row of blockIdx.x in one position. */
template <typename T> __global__ void fill(T *y, int n, T v)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = v;
}

/* ---- Checks -------------------------------------------------------------------------------- */

static void test_reduction(int threads, int rows, int cols)
{
    double *x = nullptr, *out = nullptr;
    int *mismatch = nullptr;
    double *hx = (double *)malloc(sizeof(double) * rows * cols);
    for (int i = 0; i < rows * cols; i++)
        hx[i] = (double)((i * 7919) % 1001) - 500.0; /* integers: every order sums exactly */
    CUDA_OK(cudaMalloc(&x, sizeof(double) * rows * cols));
    CUDA_OK(cudaMalloc(&out, sizeof(double) * rows));
    CUDA_OK(cudaMalloc(&mismatch, sizeof(int)));
    CUDA_OK(cudaMemset(mismatch, 0, sizeof(int)));
    CUDA_OK(cudaMemcpy(x, hx, sizeof(double) * rows * cols, cudaMemcpyHostToDevice));
    sc_emu_launch(sc_emu_cfg(rows < 7 ? rows : 7, threads), row_sums, out, x, rows, cols, mismatch);
    CUDA_OK(cudaGetLastError());
    double *h = (double *)malloc(sizeof(double) * rows);
    int hm = -1;
    CUDA_OK(cudaMemcpy(h, out, sizeof(double) * rows, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(&hm, mismatch, sizeof(int), cudaMemcpyDeviceToHost));
    CHECK(hm == 0, "%d threads saw different sums", hm);
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int k = 0; k < cols; k++)
            s += hx[r * cols + k];
        CHECK(h[r] == s, "blockDim %d, row %d: %g, expected %g", threads, r, h[r], s);
    }
    free(h);
    free(hx);
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(out));
    CUDA_OK(cudaFree(mismatch));
}

/* The source lane each shuffle picks, as the CUDA documentation describes it. */
static int expect_lane(int kind, int lane, int b, int width)
{
    const int seg = lane / width * width;
    switch (kind) {
    case 0: return lane % width + b < width ? lane + b : lane;   /* down */
    case 1: return lane % width - b >= 0 ? lane - b : lane;      /* up */
    case 2: return (lane ^ b) < seg + width ? lane ^ b : lane;   /* xor: later groups are out */
    default: return seg + ((b % width) + width) % width;          /* idx, modulo width */
    }
}

static void test_shuffles(int delta, int width)
{
    const int threads = 64;
    int *out = nullptr;
    long long *out64 = nullptr;
    double *outd = nullptr;
    CUDA_OK(cudaMalloc(&out, sizeof(int) * threads * 6));
    CUDA_OK(cudaMalloc(&out64, sizeof(long long) * threads));
    CUDA_OK(cudaMalloc(&outd, sizeof(double) * threads));
    sc_emu_launch(sc_emu_cfg(1, threads), shuffles, out, out64, outd, delta, width);
    CUDA_OK(cudaGetLastError());
    int h[threads * 6];
    long long h64[threads];
    double hd[threads];
    CUDA_OK(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(h64, out64, sizeof h64, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(hd, outd, sizeof hd, cudaMemcpyDeviceToHost));
    for (int t = 0; t < threads; t++) {
        const int lane = t & 31, *o = h + (t >> 5) * 32 * 6 + lane * 6;
        CHECK(o[0] == expect_lane(0, lane, delta, width), "down %d/%d lane %d: %d", delta, width, lane, o[0]);
        CHECK(o[1] == expect_lane(1, lane, delta, width), "up %d/%d lane %d: %d", delta, width, lane, o[1]);
        CHECK(o[2] == expect_lane(2, lane, delta, width), "xor %d/%d lane %d: %d", delta, width, lane, o[2]);
        CHECK(o[3] == expect_lane(3, lane, delta, width), "idx %d/%d lane %d: %d", delta, width, lane, o[3]);
        CHECK(o[4] == expect_lane(3, lane, -1 - delta, width), "idx %d/%d lane %d: %d", -1 - delta, width, lane,
              o[4]);
        CHECK(o[5] == (lane ^ 1) * 3, "unsigned xor lane %d: %d", lane, o[5]);
        CHECK(h64[t] == (long long)(lane < 31 ? lane + 1 : lane) << 40, "64-bit down lane %d", lane);
        CHECK(hd[t] == (lane ^ 31) + 0.25, "double xor lane %d: %g", lane, hd[t]);
    }
    CUDA_OK(cudaFree(out));
    CUDA_OK(cudaFree(out64));
    CUDA_OK(cudaFree(outd));
}

static void test_transpose(int rows, int cols)
{
    float *src = nullptr, *dst = nullptr;
    const size_t bytes = sizeof(float) * rows * cols;
    float *h = (float *)malloc(bytes), *t = (float *)malloc(bytes);
    for (int i = 0; i < rows * cols; i++)
        h[i] = (float)i;
    CUDA_OK(cudaMalloc(&src, bytes));
    CUDA_OK(cudaMalloc(&dst, bytes));
    CUDA_OK(cudaMemcpy(src, h, bytes, cudaMemcpyHostToDevice));
    const dim3 grid((cols + 31) / 32, (rows + 31) / 32);
    sc_emu_launch(sc_emu_cfg(grid, dim3(32, 8)), transpose, dst, (const float *)src, rows, cols);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaMemcpy(t, dst, bytes, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            wrong += t[c * rows + r] != h[r * cols + c];
    CHECK(wrong == 0, "transpose %d x %d: %d wrong", rows, cols, wrong);
    /* the same kernel as a template-id, into bfloat16 */
    __nv_bfloat16 *b = nullptr;
    CUDA_OK(cudaMalloc(&b, sizeof(__nv_bfloat16) * rows * cols));
    sc_emu_launch(sc_emu_cfg(grid, dim3(32, 8), 0, 0), transpose<__nv_bfloat16, float>, b, src, rows, cols);
    CUDA_OK(cudaGetLastError());
    __nv_bfloat16 *hb = (__nv_bfloat16 *)malloc(sizeof(__nv_bfloat16) * rows * cols);
    CUDA_OK(cudaMemcpy(hb, b, sizeof(__nv_bfloat16) * rows * cols, cudaMemcpyDeviceToHost));
    CHECK(__bfloat162float(hb[1 * rows + 0]) == 1.0f && __bfloat162float(hb[0]) == 0.0f, "bf16 transpose");
    free(hb);
    CUDA_OK(cudaFree(b));
    free(h);
    free(t);
    CUDA_OK(cudaFree(src));
    CUDA_OK(cudaFree(dst));
}

static void test_atomic_min(void)
{
    const int64_t n = 100000;
    float *x = nullptr;
    unsigned long long *first = nullptr;
    float *h = (float *)malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        h[i] = (i == 77777 || i == 91234) ? -1.0f : 1.0f;
    CUDA_OK(cudaMalloc(&x, sizeof(float) * n));
    CUDA_OK(cudaMalloc(&first, sizeof *first));
    CUDA_OK(cudaMemcpy(x, h, sizeof(float) * n, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(first, 0xff, sizeof *first));
    sc_emu_launch(sc_emu_cfg(40, 256), first_negative, first, x, n);
    CUDA_OK(cudaGetLastError());
    unsigned long long idx = 0;
    CUDA_OK(cudaMemcpy(&idx, first, sizeof idx, cudaMemcpyDeviceToHost));
    CHECK(idx == 77777, "first negative at %llu", idx);
    free(h);
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(first));
}

static void test_divergence(void)
{
    float *y = nullptr;
    CUDA_OK(cudaMalloc(&y, sizeof(float) * 64));
    sc_emu_forget_failures();
    sc_emu_launch(sc_emu_cfg(2, 64), half_barrier, y);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "half barrier: no launch failure");
    CHECK(cudaStreamSynchronize(0) == cudaErrorLaunchFailure, "the error is sticky");
    expect_failures("half barrier", true);

    sc_emu_launch(sc_emu_cfg(1, 64), two_barriers, y);
    CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "two barriers: no launch failure");
    expect_failures("two barriers", true);

    sc_emu_launch(sc_emu_cfg(1, 32), partial_shuffle, y);
    CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "partial shuffle: no launch failure");
    expect_failures("partial shuffle", true);

    /* the executor recovers: a correct kernel runs after abandoned ones */
    test_reduction(64, 3, 100);
    expect_failures("reduction after divergence", false);
    CUDA_OK(cudaFree(y));
}

static void test_misuse(void)
{
    float *d = nullptr;
    float h[16] = {0};
    CUDA_OK(cudaMalloc(&d, sizeof(float) * 16));

    /* invalid configurations: the next cudaGetLastError reports them, once */
    sc_emu_launch(sc_emu_cfg(1, 1025), scale, d, d, (int64_t)16, 2.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads accepted");
    CHECK(cudaGetLastError() == cudaSuccess, "not cleared");
    expect_failures("1025 threads", true);
    sc_emu_launch(sc_emu_cfg(dim3(1, 70000), 32), scale, d, d, (int64_t)16, 2.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 70000 accepted");
    expect_failures("grid.y", true);
    sc_emu_launch(sc_emu_cfg(0, 32), scale, d, d, (int64_t)16, 2.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid 0 accepted");
    expect_failures("grid 0", true);
    sc_emu_launch(sc_emu_cfg(1, dim3(1, 1, 65)), scale, d, d, (int64_t)16, 2.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "block.z 65 accepted");
    expect_failures("block.z", true);

    /* copies outside an allocation, or of the wrong kind */
    CHECK(cudaMemcpy(d, h, sizeof(float) * 17, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "overrun");
    CHECK(cudaGetLastError() == cudaErrorInvalidValue, "last error");
    expect_failures("overrun", true);
    CHECK(cudaMemcpy(h, d + 8, sizeof(float) * 9, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "overrun");
    expect_failures("overrun d2h", true);
    CHECK(cudaMemcpy(h, h + 8, sizeof(float) * 8, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "host as device");
    expect_failures("host source", true);
    CHECK(cudaMemcpy(d, d, sizeof(float) * 8, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "device as host");
    expect_failures("device source", true);
    CHECK(cudaMemcpyAsync(d, d + 4, sizeof(float) * 8, cudaMemcpyDeviceToDevice, 0) == cudaErrorInvalidValue,
          "overlap");
    expect_failures("overlap", true);
    CHECK(cudaMemset(h, 0, sizeof h) == cudaErrorInvalidValue, "memset of host memory");
    expect_failures("memset host", true);
    CUDA_OK(cudaMemcpy(h, d, sizeof(float) * 16, cudaMemcpyDefault));
    expect_failures("cudaMemcpyDefault", false);

    /* unwritten device memory is NaN */
    int nans = 0;
    for (float v : h)
        nans += isnan(v) ? 1 : 0;
    CHECK(nans == 16, "%d of 16 unwritten floats are NaN", nans);

    /* a host pointer as a kernel argument: refused, the device's context is lost */
    sc_emu_launch(sc_emu_cfg(1, 32), scale, d, (const float *)h, (int64_t)16, 2.0f);
    CHECK(cudaGetLastError() == cudaErrorIllegalAddress, "host pointer argument");
    expect_failures("host pointer argument", true);

    /* a write past the end shows in the guard bytes */
    sc_emu_launch(sc_emu_cfg(1, 1), write_one_past, d, 16);
    expect_failures("write past the end", true);

    /* streams and events */
    cudaStream_t s = nullptr;
    cudaEvent_t e = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    CUDA_OK(cudaEventRecord(e, s));
    CUDA_OK(cudaStreamWaitEvent(0, e, 0));
    CUDA_OK(cudaEventSynchronize(e));
    CUDA_OK(cudaEventQuery(e));
    sc_emu_launch(sc_emu_cfg(1, 32, 0, s), fill, d, 16, 3.0f); /* deduced template, on a stream */
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaMemcpyAsync(h, d, sizeof(float) * 16, cudaMemcpyDeviceToHost, s));
    CUDA_OK(cudaStreamSynchronize(s));
    CHECK(h[15] == 3.0f, "fill on a stream: %g", h[15]);
    CUDA_OK(cudaEventDestroy(e));
    CUDA_OK(cudaStreamDestroy(s));
    expect_failures("streams", false);
    CHECK(cudaStreamSynchronize(s) == cudaErrorInvalidResourceHandle, "destroyed stream accepted");
    expect_failures("destroyed stream", true);
    sc_emu_launch(sc_emu_cfg(1, 32, 0, s), fill, d, 16, 3.0f);
    CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle, "launch on a destroyed stream");
    expect_failures("launch on a destroyed stream", true);
    CHECK(cudaEventRecord(e, 0) == cudaErrorInvalidResourceHandle, "destroyed event accepted");
    expect_failures("destroyed event", true);
    CHECK(cudaFree(h) == cudaErrorInvalidValue, "cudaFree of host memory");
    expect_failures("cudaFree of host memory", true);

    CUDA_OK(cudaFree(d));
    CHECK(cudaFree(d) == cudaErrorInvalidValue, "double free");
    expect_failures("double free", true);
}

static void test_memory_limit(void)
{
    /* SUPCON_CUDA_EMU_MEMORY is 64 MiB here (set in main before the first use) */
    void *a = nullptr, *b = nullptr, *p = nullptr;
    CUDA_OK(cudaMalloc(&a, (size_t)40 << 20));
    CHECK(cudaMalloc(&b, (size_t)40 << 20) == cudaErrorMemoryAllocation, "over the limit");
    CHECK(b == nullptr, "no pointer on failure");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation, "last error");
    CHECK(cudaGetLastError() == cudaSuccess, "not sticky");
    expect_failures("out of memory is not a misuse", false);
    CUDA_OK(cudaHostAlloc(&p, (size_t)80 << 20, cudaHostAllocDefault)); /* page-locked: not device memory */
    CUDA_OK(cudaFreeHost(p));
    CUDA_OK(cudaFree(a));
    CUDA_OK(cudaMalloc(&b, (size_t)64 << 20));
    CUDA_OK(cudaFree(b));
}

static void test_bf16(void)
{
    CHECK(__float2bfloat16_rn(1.0f + 1.0f / 256).__x == 0x3f80, "half way rounds to even (down)");
    CHECK(__float2bfloat16_rn(1.0f + 3.0f / 256).__x == 0x3f82, "half way rounds to even (up)");
    CHECK(__float2bfloat16_rn(1.0f + 1.0f / 256 + 1.0f / 65536).__x == 0x3f81, "above half way");
    CHECK(isnan(__bfloat162float(__float2bfloat16_rn(NAN))), "NaN");
    CHECK(isinf(__bfloat162float(__float2bfloat16_rn(3.4e38f))), "overflow to infinity");
    CHECK(__bfloat162float(__nv_bfloat16(-2.5)) == -2.5f, "from double");
    const float back = __nv_bfloat16(0.1f);
    CHECK(fabsf(back - 0.1f) < 0.001f, "conversion operator");
}

__global__ void fill_value(float *y, int n, float v)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        y[i] = v;
}

/* The lazy schedule (emu_queue.h), which CTest runs this program under: a copy on another
 * stream sees a kernel's result only through an event, and a synchronous copy (the legacy
 * stream) does not wait for a non-blocking stream. */
static void test_lazy_streams(void)
{
    const int n = 256;
    float *a = nullptr, *b = nullptr, host[256];
    cudaStream_t s1, s2;
    cudaEvent_t done;
    CUDA_OK(cudaMalloc(&a, sizeof(float) * n));
    CUDA_OK(cudaMalloc(&b, sizeof(float) * n));
    CUDA_OK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CUDA_OK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CUDA_OK(cudaMemsetAsync(a, 0, sizeof(float) * n, s1));
    CUDA_OK(cudaStreamSynchronize(s1));

    /* no wait: s2's copy runs (when s2 is synchronised) before s1's kernel */
    sc_emu_launch(sc_emu_cfg(2, 128, 0, s1), fill_value, a, n, 3.0f);
    CUDA_OK(cudaMemcpyAsync(b, a, sizeof(float) * n, cudaMemcpyDeviceToDevice, s2));
    CUDA_OK(cudaStreamSynchronize(s2));
    CUDA_OK(cudaMemcpy(host, b, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 0.0f && host[n - 1] == 0.0f, "an unordered copy saw the kernel's result: %g", host[0]);
    /* a synchronous copy is not ordered with a non-blocking stream either */
    CUDA_OK(cudaMemcpy(host, a, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 0.0f, "cudaMemcpy waited for a non-blocking stream: %g", host[0]);
    CUDA_OK(cudaStreamSynchronize(s1));

    /* with the event: ordered */
    sc_emu_launch(sc_emu_cfg(2, 128, 0, s1), fill_value, a, n, 5.0f);
    CUDA_OK(cudaEventRecord(done, s1));
    sc_emu_launch(sc_emu_cfg(2, 128, 0, s1), fill_value, a, n, 7.0f); /* after the event: not waited for */
    CUDA_OK(cudaStreamWaitEvent(s2, done, 0));
    CUDA_OK(cudaMemcpyAsync(b, a, sizeof(float) * n, cudaMemcpyDeviceToDevice, s2));
    CUDA_OK(cudaStreamSynchronize(s2));
    CUDA_OK(cudaMemcpy(host, b, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 5.0f && host[n - 1] == 5.0f, "the copy after the event saw %g, not 5", host[0]);

    /* a page-locked source is read when the copy runs; a pageable one when it is queued */
    float *pinned = nullptr;
    CUDA_OK(cudaHostAlloc((void **)&pinned, sizeof(float) * n, cudaHostAllocDefault));
    for (int i = 0; i < n; i++) pinned[i] = host[i] = 1.0f;
    CUDA_OK(cudaMemcpyAsync(a, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, s2));
    CUDA_OK(cudaMemcpyAsync(b, host, sizeof(float) * n, cudaMemcpyHostToDevice, s2));
    for (int i = 0; i < n; i++) pinned[i] = host[i] = 2.0f;
    CUDA_OK(cudaStreamSynchronize(s2));
    CUDA_OK(cudaMemcpy(host, a, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 2.0f, "a queued copy from page-locked memory read it early: %g", host[0]);
    CUDA_OK(cudaMemcpy(host, b, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 1.0f, "a copy from pageable memory read it late: %g", host[0]);

    /* the stream's work still runs when it is destroyed, and a free waits for queued work */
    sc_emu_launch(sc_emu_cfg(2, 128, 0, s1), fill_value, a, n, 9.0f);
    CUDA_OK(cudaStreamDestroy(s1));
    CUDA_OK(cudaMemcpy(host, a, sizeof(float) * n, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 9.0f, "a destroyed stream's kernel did not run: %g", host[0]);
    CUDA_OK(cudaStreamDestroy(s2));
    CUDA_OK(cudaEventDestroy(done));
    CUDA_OK(cudaFreeHost(pinned));
    CUDA_OK(cudaFree(a));
    CUDA_OK(cudaFree(b));
}

int main(void)
{
    setvbuf(stdout, nullptr, _IONBF, 0);
    setenv("SUPCON_CUDA_EMU_MEMORY", "67108864", 1);
    /* The checks below look at device memory from the host right after each call: they run
     * with every stream eager, except this one, which is about the lazy schedule. */
    const char *schedule = getenv("SUPCON_CUDA_EMU_SCHEDULE");
    if (schedule && strcmp(schedule, "lazy") == 0) {
        test_lazy_streams();
        expect_failures("lazy streams", false);
        printf("%s\n", g_bad ? "test_emu_launch (lazy streams): FAILED" : "test_emu_launch (lazy streams): all passed");
        return g_bad ? 1 : 0;
    }
    test_bf16();
    test_memory_limit();
    test_reduction(256, 20, 1000);
    test_reduction(96, 5, 1000); /* not a power of two */
    test_reduction(32, 3, 5);
    test_reduction(1024, 2, 3000);
    for (int width : {32, 16, 8, 1})
        for (int delta : {0, 1, 2, 5, 16, 31})
            test_shuffles(delta, width);
    test_transpose(70, 45);
    test_transpose(32, 8);
    test_atomic_min();
    test_divergence();
    test_misuse();
    expect_failures("end", false);
    printf("%s\n", g_bad ? "test_emu_launch: FAILED" : "test_emu_launch: all passed");
    return g_bad ? 1 : 0;
}
