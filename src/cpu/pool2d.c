/* Global average pooling on the CPU: each (n, c) plane of hw values to its mean, and back.
 * Leaves out windowed pooling (the CIFAR ResNets have no max-pool). */
#include "cpu_backend.h"
#include "ops.h"

typedef struct sc_gap_job {
    float *out;
    const float *in;
    int64_t hw;
    int accumulate;
} sc_gap_job;

static void sc_gap_fwd_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gap_job *j = arg;
    for (int64_t p = begin; p < end; p++) {
        const float *x = j->in + p * j->hw;
        double s = 0.0; /* planes are short; a double sum keeps it exact enough at any size */
        for (int64_t i = 0; i < j->hw; i++) s += x[i];
        j->out[p] = (float)(s / (double)j->hw);
    }
}

static void sc_gap_bwd_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gap_job *j = arg;
    const float inv = 1.0f / (float)j->hw;
    for (int64_t p = begin; p < end; p++) {
        float *dx = j->out + p * j->hw;
        const float g = j->in[p] * inv;
        if (j->accumulate) {
#pragma omp simd
            for (int64_t i = 0; i < j->hw; i++) dx[i] += g;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < j->hw; i++) dx[i] = g;
        }
    }
}

static int64_t sc_gap_grain(int64_t hw) {
    const int64_t g = ((int64_t)16 << 10) / (hw > 0 ? hw : 1);
    return g < 1 ? 1 : g;
}

supcon_status sc_cpu_avgpool_forward(void *state, float *y, const float *x, int64_t n, int64_t c, int64_t hw) {
    sc_cpu *st = state;
    sc_gap_job j = {y, x, hw, 0};
    if (n * c > 0) sc_pool_run(st->pool, n * c, sc_gap_grain(hw), sc_gap_fwd_task, &j);
    return SUPCON_OK;
}

supcon_status sc_cpu_avgpool_backward(void *state, float *dx, const float *dy, int64_t n, int64_t c, int64_t hw,
                                      int accumulate) {
    sc_cpu *st = state;
    sc_gap_job j = {dx, dy, hw, accumulate};
    if (n * c > 0) sc_pool_run(st->pool, n * c, sc_gap_grain(hw), sc_gap_bwd_task, &j);
    return SUPCON_OK;
}
