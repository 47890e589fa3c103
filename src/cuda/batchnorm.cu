/* BatchNorm2d on CUDA with the CPU backend's semantics (src/cpu/batchnorm.c): batch mean and
 * biased variance to normalise, running statistics with momentum and the unbiased variance,
 * num_batches_tracked (device memory) += 1. Each channel's sums are split over a fixed number
 * of blocks (from the shape alone), added in double and combined in a fixed order, so the
 * results are the same bits on every run. The _relu variants fold the ReLU that follows (and
 * the residual add before it) into the affine pass, and its mask into the backward's two
 * passes. Leaves out affine=False and cumulative averaging. */
#include "block_reduce.h"
#include "cuda_backend.h"
#include "ops.h"

#define SC_BN_THREADS 256
/* Values one block sums at least, and the most blocks one channel is split over. */
#define SC_BN_PER_BLOCK 4096
#define SC_BN_MAX_SPLITS 64
/* Channels the layer scratch can hold partial sums and coefficients for (with one split). */
#define SC_BN_MAX_CHANNELS 131072

/* The layer scratch carved: partial sums (c, splits, 2) in double, then three float
 * coefficients per channel. */
typedef struct sc_bn_scratch {
    double *part;
    float *k0, *k1, *k2;
    int splits;
} sc_bn_scratch;

static supcon_status sc_bn_carve(sc_cuda_state *st, int64_t c, int64_t m, sc_bn_scratch *out)
{
    if (c > SC_BN_MAX_CHANNELS)
        return sc_cuda_fail(st, SUPCON_ERR_UNSUPPORTED, "batch norm over %lld channels: the CUDA backend takes %d at most",
                            (long long)c, SC_BN_MAX_CHANNELS);
    int64_t splits = (m + SC_BN_PER_BLOCK - 1) / SC_BN_PER_BLOCK;
    splits = splits < 1 ? 1 : splits > SC_BN_MAX_SPLITS ? SC_BN_MAX_SPLITS : splits;
    while (splits > 1 && (size_t)(c * splits * 2) * sizeof(double) + (size_t)(3 * c + 64) * sizeof(float) >
                             SC_CUDA_LAYER_SCRATCH_BYTES)
        splits--;
    out->splits = (int)splits;
    out->part = (double *)st->layer_scratch;
    out->k0 = (float *)(out->part + c * splits * 2);
    out->k1 = out->k0 + c;
    out->k2 = out->k1 + c;
    return SUPCON_OK;
}

/* Index arithmetic in I: 32-bit where the whole tensor fits (64-bit division is emulated
 * and would dominate these memory-bound kernels), 64-bit otherwise. */

/* Element e of channel ch over the (n, hw) planes, e in [0, n hw). */
template <typename I> __device__ __forceinline__ I sc_bn_at(I e, I ch, I c, I hw)
{
    const I img = e / hw;
    return (img * c + ch) * hw + (e - img * hw);
}

/* Training statistics: per (channel, split), sums of x - K and (x - K)^2 with K the channel's
 * first value, so that a large mean does not cancel the variance away. */
template <typename I>
__global__ void sc_bn_stats_kernel(double *part, const float *x, I n, I c, I hw, int splits)
{
    __shared__ double sh[SC_REDUCE_SLOTS];
    const I ch = blockIdx.x, m = n * hw;
    const double k = x[ch * hw];
    double s1 = 0.0, s2 = 0.0;
    for (I e = (I)blockIdx.y * blockDim.x + threadIdx.x; e < m; e += (I)splits * blockDim.x) {
        const double v = (double)x[sc_bn_at<I>(e, ch, c, hw)] - k;
        s1 += v;
        s2 += v * v;
    }
    s1 = sc_block_sum(s1, sh);
    s2 = sc_block_sum(s2, sh);
    if (threadIdx.x == 0) {
        part[(ch * splits + blockIdx.y) * 2] = s1;
        part[(ch * splits + blockIdx.y) * 2 + 1] = s2;
    }
}

/* One thread per channel: the statistics, the running update, and scale/shift for the
 * affine pass (k0, k1), as the CPU rounds them. */
__global__ void sc_bn_train_finish_kernel(float *k0, float *k1, float *save_mean, float *save_invstd,
                                          float *running_mean, float *running_var, int64_t *num_batches_tracked,
                                          const double *part, const float *x, const float *gamma,
                                          const float *beta, int64_t n, int64_t c, int64_t hw, int splits,
                                          double momentum, double eps)
{
    const int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch == 0 && num_batches_tracked)
        ++*num_batches_tracked;
    if (ch >= c)
        return;
    double s1 = 0.0, s2 = 0.0;
    for (int i = 0; i < splits; i++) {
        s1 += part[(ch * splits + i) * 2];
        s2 += part[(ch * splits + i) * 2 + 1];
    }
    const double m = (double)(n * hw), d1 = s1 / m;
    const double mean = (double)x[ch * hw] + d1;
    double var = s2 / m - d1 * d1;
    if (var < 0.0)
        var = 0.0;
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[ch] = (float)mean;
    save_invstd[ch] = (float)invstd;
    if (running_mean)
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
    if (running_var)
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * (var * m / (m - 1.0)));
    const double scale = (double)gamma[ch] * invstd;
    k0[ch] = (float)scale;
    k1[ch] = (float)((double)beta[ch] - mean * scale);
}

/* Inference: scale/shift from the running statistics. */
__global__ void sc_bn_infer_coef_kernel(float *k0, float *k1, float *save_mean, float *save_invstd,
                                        const float *gamma, const float *beta, const float *running_mean,
                                        const float *running_var, int64_t c, double eps)
{
    const int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    const double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
    const double scale = (double)gamma[ch] * invstd;
    if (save_mean)
        save_mean[ch] = running_mean[ch];
    if (save_invstd)
        save_invstd[ch] = (float)invstd;
    k0[ch] = (float)scale;
    k1[ch] = (float)((double)beta[ch] - (double)running_mean[ch] * scale);
}

/* y = x k0[ch] + k1[ch] over (n, c, hw); with relu, y = max(0, that (+ res)), the same float
 * operations as the separate affine, add and ReLU kernels. y may be res. */
template <typename I>
__global__ void sc_bn_affine_kernel(float *y, const float *x, const float *k0, const float *k1, const float *res,
                                    int relu, I total, I c, I hw)
{
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const I ch = (i / hw) % c;
        float v = x[i] * k0[ch] + k1[ch];
        if (res)
            v = v + res[i];
        y[i] = relu ? (v <= 0.0f ? 0.0f : v) : v; /* NaN stays NaN */
    }
}

/* dy where the ReLU after the batch norm let its value through (ry: that ReLU's output), as
 * relu_backward computes it; dy itself without ry. */
template <typename I> __device__ __forceinline__ float sc_bn_masked(const float *dy, const float *ry, I at)
{
    return ry ? (ry[at] <= 0.0f ? 0.0f : dy[at]) : dy[at]; /* through a NaN, as PyTorch */
}

/* Backward sums per (channel, split): sum dy and sum dy (x - mean). */
template <typename I>
__global__ void sc_bn_bwd_stats_kernel(double *part, const float *dy, const float *ry, const float *x,
                                       const float *save_mean, I n, I c, I hw, int splits)
{
    __shared__ double sh[SC_REDUCE_SLOTS];
    const I ch = blockIdx.x, m = n * hw;
    const double mean = save_mean[ch];
    double a = 0.0, b = 0.0;
    for (I e = (I)blockIdx.y * blockDim.x + threadIdx.x; e < m; e += (I)splits * blockDim.x) {
        const I at = sc_bn_at<I>(e, ch, c, hw);
        const double g = sc_bn_masked<I>(dy, ry, at);
        a += g;
        b += g * ((double)x[at] - mean);
    }
    a = sc_block_sum(a, sh);
    b = sc_block_sum(b, sh);
    if (threadIdx.x == 0) {
        part[(ch * splits + blockIdx.y) * 2] = a;
        part[(ch * splits + blockIdx.y) * 2 + 1] = b;
    }
}

/* Per channel: dbeta, dgamma accumulated; dx = k0 dy + k1 (x - mean) + k2 (training), or
 * k0 dy (inference: the statistics are constants). */
__global__ void sc_bn_bwd_finish_kernel(float *k0, float *k1, float *k2, float *dgamma, float *dbeta,
                                        const double *part, const float *gamma, const float *save_invstd,
                                        int64_t n, int64_t c, int64_t hw, int splits, int have_sums, int training)
{
    const int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c)
        return;
    double sdy = 0.0, sdyx = 0.0;
    if (have_sums)
        for (int i = 0; i < splits; i++) {
            sdy += part[(ch * splits + i) * 2];
            sdyx += part[(ch * splits + i) * 2 + 1];
        }
    const double invstd = save_invstd[ch], m = (double)(n * hw);
    if (dbeta)
        dbeta[ch] += (float)sdy;
    if (dgamma)
        dgamma[ch] += (float)(sdyx * invstd);
    const double g = (double)gamma[ch] * invstd;
    k0[ch] = (float)g;
    k1[ch] = training ? (float)(-g * invstd * invstd * sdyx / m) : 0.0f;
    k2[ch] = training ? (float)(-g * sdy / m) : 0.0f;
}

template <typename I>
__global__ void sc_bn_bwd_dx_kernel(float *dx, const float *dy, const float *ry, const float *x,
                                    const float *save_mean, const float *k0, const float *k1, const float *k2, I total,
                                    I c, I hw)
{
    const I stride = (I)gridDim.x * blockDim.x;
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const I ch = (i / hw) % c;
        dx[i] = k0[ch] * sc_bn_masked<I>(dy, ry, i) + k1[ch] * (x[i] - save_mean[ch]) + k2[ch];
    }
}

#define SC_LAUNCHED(name)                                                                            \
    do {                                                                                             \
        supcon_status sc_s_ = sc_cuda_launched(st, name);                                            \
        if (sc_s_ != SUPCON_OK)                                                                      \
            return sc_s_;                                                                            \
    } while (0)

static unsigned sc_bn_elt_grid(int64_t total) { return sc_cuda_grid(total, SC_BN_THREADS, 8192); }

/* 32-bit indices suffice: every index, and every index plus one grid stride, stays below 2^31. */
static int sc_bn_small(int64_t n, int64_t c, int64_t hw) { return n * c * hw < ((int64_t)1 << 31); }

/* What follows the normalisation in a ResNet block, fused into the affine pass. */
typedef struct sc_bn_tail {
    const float *res; /* added before the ReLU, or NULL */
    int relu;
} sc_bn_tail;

static supcon_status sc_bn_affine(sc_cuda_state *st, float *y, const float *x, const float *k0, const float *k1,
                                  sc_bn_tail tail, int64_t n, int64_t c, int64_t hw)
{
    const int64_t total = n * c * hw;
    if (sc_bn_small(n, c, hw))
        sc_bn_affine_kernel<uint32_t><<<sc_bn_elt_grid(total), SC_BN_THREADS, 0, st->stream>>>(
            y, x, k0, k1, tail.res, tail.relu, (uint32_t)total, (uint32_t)c, (uint32_t)hw);
    else
        sc_bn_affine_kernel<int64_t><<<sc_bn_elt_grid(total), SC_BN_THREADS, 0, st->stream>>>(
            y, x, k0, k1, tail.res, tail.relu, total, c, hw);
    return sc_cuda_launched(st, "sc_bn_affine_kernel");
}

static supcon_status sc_bn_train(sc_cuda_state *st, float *y, float *save_mean, float *save_invstd,
                                 float *running_mean, float *running_var, int64_t *num_batches_tracked,
                                 const float *x, const float *gamma, const float *beta, sc_bn_tail tail, int64_t n,
                                 int64_t c, int64_t hw, double momentum, double eps)
{
    if (n * hw <= 1)
        return sc_cuda_fail(st, SUPCON_ERR_SHAPE,
                            "batch norm in training needs more than 1 value per channel, got %lld x %lld",
                            (long long)n, (long long)hw);
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_bn_scratch w = {};
    s = sc_bn_carve(st, c, n * hw, &w);
    if (s != SUPCON_OK)
        return s;
    const dim3 grid((unsigned)c, (unsigned)w.splits);
    if (c > 0 && sc_bn_small(n, c, hw))
        sc_bn_stats_kernel<uint32_t><<<grid, SC_BN_THREADS, 0, st->stream>>>(w.part, x, (uint32_t)n, (uint32_t)c,
                                                                             (uint32_t)hw, w.splits);
    else if (c > 0)
        sc_bn_stats_kernel<int64_t><<<grid, SC_BN_THREADS, 0, st->stream>>>(w.part, x, n, c, hw, w.splits);
    if (c > 0)
        SC_LAUNCHED("sc_bn_stats_kernel");
    /* also when c == 0: the counter still counts the batch, as on the CPU */
    sc_bn_train_finish_kernel<<<sc_cuda_grid(c, 128, 1u << 20), 128, 0, st->stream>>>(
        w.k0, w.k1, save_mean, save_invstd, running_mean, running_var, num_batches_tracked, w.part, x, gamma, beta,
        n, c, hw, w.splits, momentum, eps);
    SC_LAUNCHED("sc_bn_train_finish_kernel");
    return c > 0 ? sc_bn_affine(st, y, x, w.k0, w.k1, tail, n, c, hw) : SUPCON_OK;
}

supcon_status sc_cuda_batchnorm_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                              float *running_mean, float *running_var,
                                              int64_t *num_batches_tracked, const float *x, const float *gamma,
                                              const float *beta, int64_t n, int64_t c, int64_t hw,
                                              double momentum, double eps)
{
    return sc_bn_train((sc_cuda_state *)state, y, save_mean, save_invstd, running_mean, running_var,
                       num_batches_tracked, x, gamma, beta, sc_bn_tail{NULL, 0}, n, c, hw, momentum, eps);
}

supcon_status sc_cuda_batchnorm_relu_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                                   float *running_mean, float *running_var,
                                                   int64_t *num_batches_tracked, const float *x, const float *gamma,
                                                   const float *beta, const float *residual, int64_t n, int64_t c,
                                                   int64_t hw, double momentum, double eps)
{
    return sc_bn_train((sc_cuda_state *)state, y, save_mean, save_invstd, running_mean, running_var,
                       num_batches_tracked, x, gamma, beta, sc_bn_tail{residual, 1}, n, c, hw, momentum, eps);
}

static supcon_status sc_bn_infer(sc_cuda_state *st, float *y, float *save_mean, float *save_invstd, const float *x,
                                 const float *gamma, const float *beta, const float *running_mean,
                                 const float *running_var, sc_bn_tail tail, int64_t n, int64_t c, int64_t hw,
                                 double eps)
{
    if (c <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_bn_scratch w = {};
    s = sc_bn_carve(st, c, n * hw, &w);
    if (s != SUPCON_OK)
        return s;
    sc_bn_infer_coef_kernel<<<sc_cuda_grid(c, 128, 1u << 20), 128, 0, st->stream>>>(
        w.k0, w.k1, save_mean, save_invstd, gamma, beta, running_mean, running_var, c, eps);
    SC_LAUNCHED("sc_bn_infer_coef_kernel");
    return n * hw > 0 ? sc_bn_affine(st, y, x, w.k0, w.k1, tail, n, c, hw) : SUPCON_OK;
}

supcon_status sc_cuda_batchnorm_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                              const float *x, const float *gamma, const float *beta,
                                              const float *running_mean, const float *running_var, int64_t n,
                                              int64_t c, int64_t hw, double eps)
{
    return sc_bn_infer((sc_cuda_state *)state, y, save_mean, save_invstd, x, gamma, beta, running_mean, running_var,
                       sc_bn_tail{NULL, 0}, n, c, hw, eps);
}

supcon_status sc_cuda_batchnorm_relu_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                                   const float *x, const float *gamma, const float *beta,
                                                   const float *running_mean, const float *running_var,
                                                   const float *residual, int64_t n, int64_t c, int64_t hw,
                                                   double eps)
{
    return sc_bn_infer((sc_cuda_state *)state, y, save_mean, save_invstd, x, gamma, beta, running_mean, running_var,
                       sc_bn_tail{residual, 1}, n, c, hw, eps);
}

supcon_status sc_cuda_batchnorm_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *gamma, const float *save_mean,
                                         const float *save_invstd, int64_t n, int64_t c, int64_t hw,
                                         int training)
{
    return sc_cuda_batchnorm_relu_backward(state, dx, dgamma, dbeta, dy, NULL, x, gamma, save_mean, save_invstd, n,
                                           c, hw, training);
}

supcon_status sc_cuda_batchnorm_relu_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                              const float *relu_y, const float *x, const float *gamma,
                                              const float *save_mean, const float *save_invstd, int64_t n, int64_t c,
                                              int64_t hw, int training)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (c <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    sc_bn_scratch w = {};
    s = sc_bn_carve(st, c, n * hw, &w);
    if (s != SUPCON_OK)
        return s;
    /* The sums are needed for the parameter gradients, and for dx in training only. */
    const int have_sums = n * hw > 0 && (dgamma || dbeta || (dx && training));
    const int small = sc_bn_small(n, c, hw);
    if (have_sums) {
        const dim3 grid((unsigned)c, (unsigned)w.splits);
        if (small)
            sc_bn_bwd_stats_kernel<uint32_t><<<grid, SC_BN_THREADS, 0, st->stream>>>(
                w.part, dy, relu_y, x, save_mean, (uint32_t)n, (uint32_t)c, (uint32_t)hw, w.splits);
        else
            sc_bn_bwd_stats_kernel<int64_t><<<grid, SC_BN_THREADS, 0, st->stream>>>(w.part, dy, relu_y, x, save_mean,
                                                                                    n, c, hw, w.splits);
        SC_LAUNCHED("sc_bn_bwd_stats_kernel");
    }
    sc_bn_bwd_finish_kernel<<<sc_cuda_grid(c, 128, 1u << 20), 128, 0, st->stream>>>(
        w.k0, w.k1, w.k2, dgamma, dbeta, w.part, gamma, save_invstd, n, c, hw, w.splits, have_sums, training);
    SC_LAUNCHED("sc_bn_bwd_finish_kernel");
    if (dx && n * hw > 0) {
        const int64_t total = n * c * hw;
        if (small)
            sc_bn_bwd_dx_kernel<uint32_t><<<sc_bn_elt_grid(total), SC_BN_THREADS, 0, st->stream>>>(
                dx, dy, relu_y, x, save_mean, w.k0, w.k1, w.k2, (uint32_t)total, (uint32_t)c, (uint32_t)hw);
        else
            sc_bn_bwd_dx_kernel<int64_t><<<sc_bn_elt_grid(total), SC_BN_THREADS, 0, st->stream>>>(
                dx, dy, relu_y, x, save_mean, w.k0, w.k1, w.k2, total, c, hw);
        SC_LAUNCHED("sc_bn_bwd_dx_kernel");
    }
    return SUPCON_OK;
}
