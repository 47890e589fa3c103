/* BatchNorm2d on the CPU, as PyTorch computes it: batch statistics over (n, h, w) per
 * channel in training (biased variance to normalise, unbiased in the running update, sums
 * in double as PyTorch's CPU kernel), running statistics in inference. One channel per task,
 * so every sum has one fixed order whatever the thread count. Leaves out affine=False and
 * cumulative averaging (momentum None), which the reference does not use. */
#include <math.h>

#include "cpu_backend.h"
#include "ops.h"

/* Float partial sums over chunks this long (vector lanes), added into doubles: near float
 * epsilon at any plane size without paying for double arithmetic in the inner loops. */
#define SC_BN_CHUNK 512

static double sc_sum(const float *x, int64_t len) {
    double acc = 0.0;
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = c0; i < c1; i++) s += x[i];
        acc += s;
    }
    return acc;
}

static double sc_sq_dev(const float *x, int64_t len, float mean) {
    double acc = 0.0;
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = c0; i < c1; i++) s += (x[i] - mean) * (x[i] - mean);
        acc += s;
    }
    return acc;
}

/* sum dy and sum dy (x - mean) over one plane. */
static void sc_dot_dev(const float *dy, const float *x, int64_t len, float mean, double *sdy, double *sdyx) {
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
        for (int64_t i = c0; i < c1; i++) {
            a += dy[i];
            b += dy[i] * (x[i] - mean);
        }
        *sdy += a;
        *sdyx += b;
    }
}

/* y = x scale + shift over the n planes of one channel. */
static void sc_affine(float *y, const float *x, int64_t n, int64_t stride, int64_t hw, float scale, float shift) {
    for (int64_t img = 0; img < n; img++) {
        const float *xp = x + img * stride;
        float *yp = y + img * stride;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) yp[i] = xp[i] * scale + shift;
    }
}

typedef struct sc_bn_job {
    float *y, *dx, *dgamma, *dbeta;
    float *save_mean, *save_invstd, *running_mean, *running_var;
    const float *x, *dy, *gamma, *beta, *mean_in, *invstd_in, *rmean_in, *rvar_in;
    int64_t n, c, hw;
    double momentum, eps;
    int training;
} sc_bn_job;

static void sc_bn_train_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bn_job *j = arg;
    const int64_t stride = j->c * j->hw, m = j->n * j->hw;
    for (int64_t ch = begin; ch < end; ch++) {
        const float *x = j->x + ch * j->hw;
        double sum = 0.0;
        for (int64_t img = 0; img < j->n; img++) sum += sc_sum(x + img * stride, j->hw);
        const double mean = sum / (double)m;
        double ss = 0.0;
        for (int64_t img = 0; img < j->n; img++) ss += sc_sq_dev(x + img * stride, j->hw, (float)mean);
        /* the deviations were taken from the float mean; move them to the exact one */
        const double dm = mean - (double)(float)mean;
        double var = ss / (double)m - dm * dm;
        if (var < 0.0) var = 0.0;
        const double invstd = 1.0 / sqrt(var + j->eps);
        j->save_mean[ch] = (float)mean;
        j->save_invstd[ch] = (float)invstd;
        if (j->running_mean)
            j->running_mean[ch] = (float)((1.0 - j->momentum) * j->running_mean[ch] + j->momentum * mean);
        if (j->running_var) {
            const double unbiased = var * (double)m / (double)(m - 1);
            j->running_var[ch] = (float)((1.0 - j->momentum) * j->running_var[ch] + j->momentum * unbiased);
        }
        const double scale = (double)j->gamma[ch] * invstd;
        sc_affine(j->y + ch * j->hw, x, j->n, stride, j->hw, (float)scale,
                  (float)((double)j->beta[ch] - mean * scale));
    }
}

static int64_t sc_bn_grain(int64_t n, int64_t hw) {
    const int64_t g = ((int64_t)8 << 10) / (n * hw > 0 ? n * hw : 1);
    return g < 1 ? 1 : g;
}

supcon_status sc_cpu_batchnorm_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                             float *running_mean, float *running_var,
                                             int64_t *num_batches_tracked, const float *x, const float *gamma,
                                             const float *beta, int64_t n, int64_t c, int64_t hw,
                                             double momentum, double eps) {
    sc_cpu *st = state;
    if (n * hw <= 1)
        return sc_cpu_fail(st, SUPCON_ERR_SHAPE,
                           "batch norm in training needs more than 1 value per channel, got %lld x %lld",
                           (long long)n, (long long)hw);
    sc_bn_job j = {.y = y, .save_mean = save_mean, .save_invstd = save_invstd, .running_mean = running_mean,
                   .running_var = running_var, .x = x, .gamma = gamma, .beta = beta, .n = n, .c = c, .hw = hw,
                   .momentum = momentum, .eps = eps};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_train_task, &j);
    if (num_batches_tracked) ++*num_batches_tracked;
    return SUPCON_OK;
}

static void sc_bn_infer_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bn_job *j = arg;
    for (int64_t ch = begin; ch < end; ch++) {
        const double invstd = 1.0 / sqrt((double)j->rvar_in[ch] + j->eps);
        const double scale = (double)j->gamma[ch] * invstd;
        if (j->save_mean) j->save_mean[ch] = j->rmean_in[ch];
        if (j->save_invstd) j->save_invstd[ch] = (float)invstd;
        sc_affine(j->y + ch * j->hw, j->x + ch * j->hw, j->n, j->c * j->hw, j->hw, (float)scale,
                  (float)((double)j->beta[ch] - (double)j->rmean_in[ch] * scale));
    }
}

supcon_status sc_cpu_batchnorm_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                             const float *x, const float *gamma, const float *beta,
                                             const float *running_mean, const float *running_var, int64_t n,
                                             int64_t c, int64_t hw, double eps) {
    sc_cpu *st = state;
    sc_bn_job j = {.y = y, .save_mean = save_mean, .save_invstd = save_invstd, .x = x, .gamma = gamma,
                   .beta = beta, .rmean_in = running_mean, .rvar_in = running_var, .n = n, .c = c, .hw = hw,
                   .eps = eps};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_infer_task, &j);
    return SUPCON_OK;
}

/* Training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); inference: gamma invstd dy. */
static void sc_bn_backward_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bn_job *j = arg;
    const int64_t stride = j->c * j->hw, m = j->n * j->hw;
    for (int64_t ch = begin; ch < end; ch++) {
        const float *x = j->x + ch * j->hw, *dy = j->dy + ch * j->hw;
        const float mean = j->mean_in[ch];
        const double invstd = j->invstd_in[ch];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t img = 0; img < j->n; img++)
            sc_dot_dev(dy + img * stride, x + img * stride, j->hw, mean, &sdy, &sdyx);
        if (j->dbeta) j->dbeta[ch] += (float)sdy;
        if (j->dgamma) j->dgamma[ch] += (float)(sdyx * invstd);
        if (!j->dx) continue;
        const double k1 = (double)j->gamma[ch] * invstd;
        /* training: dx = k1 dy + k2 (x - mean) + k3 */
        const float a = (float)k1;
        const float b = j->training ? (float)(-k1 * invstd * invstd * sdyx / (double)m) : 0.0f;
        const float c3 = j->training ? (float)(-k1 * sdy / (double)m) : 0.0f;
        for (int64_t img = 0; img < j->n; img++) {
            const float *xp = x + img * stride, *dyp = dy + img * stride;
            float *dxp = j->dx + ch * j->hw + img * stride;
#pragma omp simd
            for (int64_t i = 0; i < j->hw; i++) dxp[i] = a * dyp[i] + b * (xp[i] - mean) + c3;
        }
    }
}

supcon_status sc_cpu_batchnorm_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                        const float *x, const float *gamma, const float *save_mean,
                                        const float *save_invstd, int64_t n, int64_t c, int64_t hw,
                                        int training) {
    sc_cpu *st = state;
    sc_bn_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .x = x, .dy = dy, .gamma = gamma,
                   .mean_in = save_mean, .invstd_in = save_invstd, .n = n, .c = c, .hw = hw,
                   .training = training};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_backward_task, &j);
    return SUPCON_OK;
}
