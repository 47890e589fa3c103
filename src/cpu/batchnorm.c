/* BatchNorm2d on the CPU, as PyTorch computes it: batch statistics over (n, h, w) per
 * channel in training (biased variance to normalise, unbiased in the running update, sums
 * in double as PyTorch's CPU kernel), running statistics in inference. One channel per task,
 * so every sum has one fixed order whatever the thread count. The _relu variants fold the
 * ReLU that follows (and the residual add before it) into the affine pass, and the ReLU's
 * mask into the backward's passes: the same bits as the separate layers, fewer passes over
 * memory. Leaves out affine=False and cumulative averaging (momentum None), which the
 * reference does not use. */
#include <math.h>

#include "cpu_backend.h"
#include "ops.h"

/* Float partial sums over chunks this long, added into doubles: near float epsilon at any
 * plane size without paying for double arithmetic in the inner loops. */
#define SC_BN_CHUNK 512
/* Each chunk is summed in SC_BN_LANES interleaved float accumulators, added up in a fixed
 * order: the order of every addition is the source's, not the vectoriser's, so a sum comes
 * out the same bits in every variant of a loop (the fused ReLU's masked sums included). */
#define SC_BN_LANES 16

static float sc_lanes_total(const float *acc) {
    float t = 0.0f;
    for (int l = 0; l < SC_BN_LANES; l++) t += acc[l];
    return t;
}

static double sc_sum(const float *x, int64_t len) {
    double total = 0.0;
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float acc[SC_BN_LANES] = {0};
        int64_t i = c0;
        for (; i + SC_BN_LANES <= c1; i += SC_BN_LANES)
#pragma omp simd
            for (int l = 0; l < SC_BN_LANES; l++) acc[l] += x[i + l];
        for (int l = 0; i < c1; i++, l++) acc[l] += x[i];
        total += sc_lanes_total(acc);
    }
    return total;
}

static double sc_sq_dev(const float *x, int64_t len, float mean) {
    double total = 0.0;
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float acc[SC_BN_LANES] = {0};
        int64_t i = c0;
        for (; i + SC_BN_LANES <= c1; i += SC_BN_LANES)
#pragma omp simd
            for (int l = 0; l < SC_BN_LANES; l++) acc[l] += (x[i + l] - mean) * (x[i + l] - mean);
        for (int l = 0; i < c1; i++, l++) acc[l] += (x[i] - mean) * (x[i] - mean);
        total += sc_lanes_total(acc);
    }
    return total;
}

/* sum g and sum g (x - mean) over one plane, g = dy, or with relu_y, dy zeroed where
 * relu_y <= 0 (the ReLU after the batch norm, as relu_backward would). */
static void sc_dot_dev(const float *dy, const float *relu_y, const float *x, int64_t len, float mean, double *sdy,
                       double *sdyx) {
    for (int64_t c0 = 0; c0 < len; c0 += SC_BN_CHUNK) {
        const int64_t c1 = len - c0 < SC_BN_CHUNK ? len : c0 + SC_BN_CHUNK;
        float a[SC_BN_LANES] = {0}, b[SC_BN_LANES] = {0};
        int64_t i = c0;
        if (relu_y) {
            for (; i + SC_BN_LANES <= c1; i += SC_BN_LANES)
#pragma omp simd
                for (int l = 0; l < SC_BN_LANES; l++) {
                    const float d = dy[i + l]; /* loaded whatever the mask: a select, no branch */
                    const float g = relu_y[i + l] <= 0.0f ? 0.0f : d; /* through NaN, as PyTorch */
                    a[l] += g;
                    b[l] += g * (x[i + l] - mean);
                }
            for (int l = 0; i < c1; i++, l++) {
                const float d = dy[i];
                const float g = relu_y[i] <= 0.0f ? 0.0f : d;
                a[l] += g;
                b[l] += g * (x[i] - mean);
            }
        } else {
            for (; i + SC_BN_LANES <= c1; i += SC_BN_LANES)
#pragma omp simd
                for (int l = 0; l < SC_BN_LANES; l++) {
                    a[l] += dy[i + l];
                    b[l] += dy[i + l] * (x[i + l] - mean);
                }
            for (int l = 0; i < c1; i++, l++) {
                a[l] += dy[i];
                b[l] += dy[i] * (x[i] - mean);
            }
        }
        *sdy += sc_lanes_total(a);
        *sdyx += sc_lanes_total(b);
    }
}

/* What follows the normalisation in a ResNet block, fused into its pass over memory. */
typedef struct sc_bn_tail {
    const float *residual; /* (n, c, hw) added before the ReLU, or NULL */
    int relu;
} sc_bn_tail;

/* y = x scale + shift (+ residual, then ReLU, as the tail says) over the n planes of one
 * channel; the same float operations, in the same order, as the separate passes. */
static void sc_affine(float *y, const float *x, int64_t n, int64_t stride, int64_t hw, float scale, float shift,
                      const float *residual, int relu) {
    for (int64_t img = 0; img < n; img++) {
        const float *xp = x + img * stride;
        float *yp = y + img * stride;
        if (!relu) {
#pragma omp simd
            for (int64_t i = 0; i < hw; i++) yp[i] = xp[i] * scale + shift;
        } else if (!residual) {
#pragma omp simd
            for (int64_t i = 0; i < hw; i++) {
                const float t = xp[i] * scale + shift;
                yp[i] = t <= 0.0f ? 0.0f : t; /* NaN stays NaN, as PyTorch's relu */
            }
        } else {
            const float *rp = residual + img * stride;
#pragma omp simd
            for (int64_t i = 0; i < hw; i++) {
                const float t = xp[i] * scale + shift;
                const float u = t + rp[i];
                yp[i] = u <= 0.0f ? 0.0f : u;
            }
        }
    }
}

typedef struct sc_bn_job {
    float *y, *dx, *dgamma, *dbeta;
    float *save_mean, *save_invstd, *running_mean, *running_var;
    const float *x, *dy, *gamma, *beta, *mean_in, *invstd_in, *rmean_in, *rvar_in;
    const float *residual; /* forward: added before the ReLU (relu set), or NULL */
    const float *relu_y;   /* backward: the ReLU's output, whose mask applies to dy, or NULL */
    int relu;
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
                  (float)((double)j->beta[ch] - mean * scale), j->residual ? j->residual + ch * j->hw : NULL,
                  j->relu);
    }
}

static int64_t sc_bn_grain(int64_t n, int64_t hw) {
    const int64_t g = ((int64_t)8 << 10) / (n * hw > 0 ? n * hw : 1);
    return g < 1 ? 1 : g;
}

static supcon_status sc_bn_train(sc_cpu *st, float *y, float *save_mean, float *save_invstd, float *running_mean,
                                 float *running_var, int64_t *num_batches_tracked, const float *x, const float *gamma,
                                 const float *beta, sc_bn_tail tail, int64_t n, int64_t c, int64_t hw,
                                 double momentum, double eps) {
    if (n * hw <= 1)
        return sc_cpu_fail(st, SUPCON_ERR_SHAPE,
                           "batch norm in training needs more than 1 value per channel, got %lld x %lld",
                           (long long)n, (long long)hw);
    sc_bn_job j = {.y = y, .save_mean = save_mean, .save_invstd = save_invstd, .running_mean = running_mean,
                   .running_var = running_var, .x = x, .gamma = gamma, .beta = beta, .residual = tail.residual,
                   .relu = tail.relu, .n = n, .c = c, .hw = hw, .momentum = momentum, .eps = eps};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_train_task, &j);
    if (num_batches_tracked) ++*num_batches_tracked;
    return SUPCON_OK;
}

supcon_status sc_cpu_batchnorm_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                             float *running_mean, float *running_var,
                                             int64_t *num_batches_tracked, const float *x, const float *gamma,
                                             const float *beta, int64_t n, int64_t c, int64_t hw,
                                             double momentum, double eps) {
    return sc_bn_train(state, y, save_mean, save_invstd, running_mean, running_var, num_batches_tracked, x, gamma,
                       beta, (sc_bn_tail){NULL, 0}, n, c, hw, momentum, eps);
}

supcon_status sc_cpu_batchnorm_relu_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                                  float *running_mean, float *running_var,
                                                  int64_t *num_batches_tracked, const float *x, const float *gamma,
                                                  const float *beta, const float *residual, int64_t n, int64_t c,
                                                  int64_t hw, double momentum, double eps) {
    return sc_bn_train(state, y, save_mean, save_invstd, running_mean, running_var, num_batches_tracked, x, gamma,
                       beta, (sc_bn_tail){residual, 1}, n, c, hw, momentum, eps);
}

static void sc_bn_infer_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bn_job *j = arg;
    for (int64_t ch = begin; ch < end; ch++) {
        const double invstd = 1.0 / sqrt((double)j->rvar_in[ch] + j->eps);
        const double scale = (double)j->gamma[ch] * invstd;
        if (j->save_mean) j->save_mean[ch] = j->rmean_in[ch];
        if (j->save_invstd) j->save_invstd[ch] = (float)invstd;
        sc_affine(j->y + ch * j->hw, j->x + ch * j->hw, j->n, j->c * j->hw, j->hw, (float)scale,
                  (float)((double)j->beta[ch] - (double)j->rmean_in[ch] * scale),
                  j->residual ? j->residual + ch * j->hw : NULL, j->relu);
    }
}

static supcon_status sc_bn_infer(sc_cpu *st, float *y, float *save_mean, float *save_invstd, const float *x,
                                 const float *gamma, const float *beta, const float *running_mean,
                                 const float *running_var, sc_bn_tail tail, int64_t n, int64_t c, int64_t hw,
                                 double eps) {
    sc_bn_job j = {.y = y, .save_mean = save_mean, .save_invstd = save_invstd, .x = x, .gamma = gamma,
                   .beta = beta, .rmean_in = running_mean, .rvar_in = running_var, .residual = tail.residual,
                   .relu = tail.relu, .n = n, .c = c, .hw = hw, .eps = eps};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_infer_task, &j);
    return SUPCON_OK;
}

supcon_status sc_cpu_batchnorm_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                             const float *x, const float *gamma, const float *beta,
                                             const float *running_mean, const float *running_var, int64_t n,
                                             int64_t c, int64_t hw, double eps) {
    return sc_bn_infer(state, y, save_mean, save_invstd, x, gamma, beta, running_mean, running_var,
                       (sc_bn_tail){NULL, 0}, n, c, hw, eps);
}

supcon_status sc_cpu_batchnorm_relu_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                                  const float *x, const float *gamma, const float *beta,
                                                  const float *running_mean, const float *running_var,
                                                  const float *residual, int64_t n, int64_t c, int64_t hw,
                                                  double eps) {
    return sc_bn_infer(state, y, save_mean, save_invstd, x, gamma, beta, running_mean, running_var,
                       (sc_bn_tail){residual, 1}, n, c, hw, eps);
}

/* Training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); inference: gamma invstd dy. */
static void sc_bn_backward_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bn_job *j = arg;
    const int64_t stride = j->c * j->hw, m = j->n * j->hw;
    for (int64_t ch = begin; ch < end; ch++) {
        const float *x = j->x + ch * j->hw, *dy = j->dy + ch * j->hw;
        const float *ry = j->relu_y ? j->relu_y + ch * j->hw : NULL;
        const float mean = j->mean_in[ch];
        const double invstd = j->invstd_in[ch];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t img = 0; img < j->n; img++)
            sc_dot_dev(dy + img * stride, ry ? ry + img * stride : NULL, x + img * stride, j->hw, mean, &sdy, &sdyx);
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
            if (ry) {
                const float *ryp = ry + img * stride;
#pragma omp simd
                for (int64_t i = 0; i < j->hw; i++) {
                    const float d = dyp[i];
                    const float g = ryp[i] <= 0.0f ? 0.0f : d;
                    dxp[i] = a * g + b * (xp[i] - mean) + c3;
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < j->hw; i++) dxp[i] = a * dyp[i] + b * (xp[i] - mean) + c3;
            }
        }
    }
}

supcon_status sc_cpu_batchnorm_relu_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                             const float *relu_y, const float *x, const float *gamma,
                                             const float *save_mean, const float *save_invstd, int64_t n, int64_t c,
                                             int64_t hw, int training) {
    sc_cpu *st = state;
    sc_bn_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .x = x, .dy = dy, .relu_y = relu_y, .gamma = gamma,
                   .mean_in = save_mean, .invstd_in = save_invstd, .n = n, .c = c, .hw = hw,
                   .training = training};
    sc_pool_run(st->pool, c, sc_bn_grain(n, hw), sc_bn_backward_task, &j);
    return SUPCON_OK;
}

supcon_status sc_cpu_batchnorm_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                        const float *x, const float *gamma, const float *save_mean,
                                        const float *save_invstd, int64_t n, int64_t c, int64_t hw,
                                        int training) {
    return sc_cpu_batchnorm_relu_backward(state, dx, dgamma, dbeta, dy, NULL, x, gamma, save_mean, save_invstd, n,
                                          c, hw, training);
}
