/* Linear with bias on the CPU (torch.nn.Linear: weight (out, in)), as three sc_sgemm calls
 * and a column sum for the bias gradient. */
#include <string.h>

#include "cpu_backend.h"
#include "ops.h"

supcon_status sc_cpu_linear_forward(void *state, float *y, const float *x, const float *weight,
                                    const float *bias, int64_t n, int64_t in, int64_t out) {
    sc_cpu *st = state;
    if (n <= 0 || out <= 0) return SUPCON_OK;
    /* Start from the bias in each row, then y += x W^T. */
    for (int64_t i = 0; i < n; i++) {
        if (bias)
            memcpy(y + i * out, bias, (size_t)out * sizeof(float));
        else
            memset(y + i * out, 0, (size_t)out * sizeof(float));
    }
    sc_sgemm(st->pool, &st->gemm, 0, 1, n, out, in, 1.0f, x, in, weight, in, 1.0f, y, out);
    return SUPCON_OK;
}

typedef struct sc_bias_job {
    float *dbias;
    const float *dy;
    int64_t n, out;
} sc_bias_job;

/* A band of bias columns per task; rows summed in order, so the split does not matter. */
static void sc_bias_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_bias_job *j = arg;
    double acc[64];
    for (int64_t c0 = begin; c0 < end; c0 += 64) {
        const int64_t c1 = end - c0 < 64 ? end : c0 + 64;
        for (int64_t c = c0; c < c1; c++) acc[c - c0] = 0.0;
        for (int64_t i = 0; i < j->n; i++) {
            const float *row = j->dy + i * j->out;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; c++) j->dbias[c] += (float)acc[c - c0];
    }
}

supcon_status sc_cpu_linear_backward(void *state, float *dx, float *dweight, float *dbias, const float *dy,
                                     const float *x, const float *weight, int64_t n, int64_t in, int64_t out) {
    sc_cpu *st = state;
    if (dweight) /* dW (out, in) += dy^T (out, n) x (n, in) */
        sc_sgemm(st->pool, &st->gemm, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dweight, in);
    if (dbias && n > 0) {
        sc_bias_job j = {dbias, dy, n, out};
        sc_pool_run(st->pool, out, 64, sc_bias_task, &j);
    }
    if (dx) { /* dx (n, in) = dy (n, out) W (out, in) */
        if (out <= 0)
            memset(dx, 0, (size_t)(n * in) * sizeof(float));
        else
            sc_sgemm(st->pool, &st->gemm, 0, 0, n, in, out, 1.0f, dy, out, weight, in, 0.0f, dx, in);
    }
    return SUPCON_OK;
}
