/* Element-wise layers on CUDA: ReLU and its backward, the residual add (also fused with the
 * block's final ReLU) and gradient accumulation, as src/cpu/eltwise.c. One grid-stride kernel
 * per kind, four floats per load where every pointer is 16-byte aligned. In place is allowed:
 * each element is read and written by the same thread. */
#include <stdint.h>

#include "cuda_backend.h"
#include "ops.h"

typedef enum { SC_RELU, SC_RELU_BWD, SC_ADD, SC_ADD_RELU, SC_ACC } sc_elt_kind;

#define SC_ELT_THREADS 256
#define SC_ELT_MAX_BLOCKS 8192

/* out = f(a, b) for one element (b is y in the ReLU backward, unused by RELU and ACC). */
template <int K> __device__ __forceinline__ float sc_elt_one(float out, float a, float b)
{
    if (K == SC_RELU)
        return a <= 0.0f ? 0.0f : a; /* NaN stays NaN, as PyTorch's relu */
    if (K == SC_RELU_BWD) /* a = dy, b = y */
        return b <= 0.0f ? 0.0f : a; /* threshold_backward: through a NaN output too */
    if (K == SC_ADD)
        return a + b;
    if (K == SC_ADD_RELU) {
        const float s = a + b;
        return s <= 0.0f ? 0.0f : s;
    }
    return out + a; /* SC_ACC */
}

template <int K> __global__ void sc_elt_kernel(float *out, const float *a, const float *b, int64_t count)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        out[i] = sc_elt_one<K>(K == SC_ACC ? out[i] : 0.0f, a[i], b ? b[i] : 0.0f);
}

/* count4 groups of four; the caller does the tail with sc_elt_kernel. */
template <int K> __global__ void sc_elt4_kernel(float4 *out, const float4 *a, const float4 *b, int64_t count4)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count4; i += stride) {
        const float4 va = a[i], vb = b ? b[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        const float4 vo = K == SC_ACC ? out[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        out[i] = make_float4(sc_elt_one<K>(vo.x, va.x, vb.x), sc_elt_one<K>(vo.y, va.y, vb.y),
                             sc_elt_one<K>(vo.z, va.z, vb.z), sc_elt_one<K>(vo.w, va.w, vb.w));
    }
}

static int sc_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

template <int K>
static supcon_status sc_elt(void *state, float *out, const float *a, const float *b, int64_t count)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (count <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    int64_t done = 0;
    if (sc_aligned16(out) && sc_aligned16(a) && (!b || sc_aligned16(b)) && count >= 4) {
        const int64_t count4 = count / 4;
        sc_elt4_kernel<K><<<sc_cuda_grid(count4, SC_ELT_THREADS, SC_ELT_MAX_BLOCKS), SC_ELT_THREADS, 0, st->stream>>>(
            (float4 *)out, (const float4 *)a, (const float4 *)b, count4);
        s = sc_cuda_launched(st, "sc_elt4_kernel");
        if (s != SUPCON_OK)
            return s;
        done = count4 * 4;
    }
    if (done < count) {
        const int64_t rest = count - done;
        sc_elt_kernel<K><<<sc_cuda_grid(rest, SC_ELT_THREADS, SC_ELT_MAX_BLOCKS), SC_ELT_THREADS, 0, st->stream>>>(
            out + done, a + done, b ? b + done : NULL, rest);
        s = sc_cuda_launched(st, "sc_elt_kernel");
    }
    return s;
}

supcon_status sc_cuda_relu_forward(void *state, float *y, const float *x, int64_t count)
{
    return sc_elt<SC_RELU>(state, y, x, NULL, count);
}

supcon_status sc_cuda_relu_backward(void *state, float *dx, const float *dy, const float *y, int64_t count)
{
    return sc_elt<SC_RELU_BWD>(state, dx, dy, y, count);
}

supcon_status sc_cuda_add_forward(void *state, float *y, const float *a, const float *b, int64_t count)
{
    return sc_elt<SC_ADD>(state, y, a, b, count);
}

supcon_status sc_cuda_add_relu_forward(void *state, float *y, const float *a, const float *b, int64_t count)
{
    return sc_elt<SC_ADD_RELU>(state, y, a, b, count);
}

supcon_status sc_cuda_accumulate(void *state, float *dst, const float *src, int64_t count)
{
    return sc_elt<SC_ACC>(state, dst, src, NULL, count);
}
