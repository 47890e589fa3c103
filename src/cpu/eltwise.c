/* Element-wise layers on the CPU: ReLU, the residual add (also fused with the block's final
 * ReLU) and gradient accumulation where two paths join. Split over the pool in large
 * chunks; each element's result is independent of the split. */
#include "cpu_backend.h"
#include "ops.h"

/* Elements per pool chunk: large enough that waking a worker pays off. */
#define SC_ELT_GRAIN ((int64_t)32 << 10)

typedef enum { SC_RELU, SC_RELU_BWD, SC_ADD, SC_ADD_RELU, SC_ACC } sc_elt_kind;

typedef struct sc_elt_job {
    sc_elt_kind kind;
    float *out;
    const float *a, *b;
} sc_elt_job;

static void sc_elt_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_elt_job *j = arg;
    float *out = j->out + begin;
    const float *a = j->a + begin, *b = j->b ? j->b + begin : NULL;
    const int64_t len = end - begin;
    switch (j->kind) {
    case SC_RELU:
#pragma omp simd
        for (int64_t i = 0; i < len; i++) out[i] = a[i] <= 0.0f ? 0.0f : a[i]; /* NaN stays NaN */
        break;
    case SC_RELU_BWD: /* a = dy, b = y */
#pragma omp simd
        for (int64_t i = 0; i < len; i++) {
            /* dy loaded whatever the mask: a conditional load would keep the loop from
             * vectorising, and a branch on the signs mispredicts half the time */
            const float d = a[i];
            out[i] = b[i] <= 0.0f ? 0.0f : d; /* as PyTorch's threshold_backward: NaN passes */
        }
        break;
    case SC_ADD:
#pragma omp simd
        for (int64_t i = 0; i < len; i++) out[i] = a[i] + b[i];
        break;
    case SC_ADD_RELU:
#pragma omp simd
        for (int64_t i = 0; i < len; i++) {
            const float s = a[i] + b[i];
            out[i] = s <= 0.0f ? 0.0f : s;
        }
        break;
    case SC_ACC:
#pragma omp simd
        for (int64_t i = 0; i < len; i++) out[i] += a[i];
        break;
    }
}

static supcon_status sc_elt(void *state, sc_elt_kind kind, float *out, const float *a, const float *b,
                            int64_t count) {
    sc_cpu *st = state;
    sc_elt_job j = {kind, out, a, b};
    if (count > 0) sc_pool_run(st->pool, count, SC_ELT_GRAIN, sc_elt_task, &j);
    return SUPCON_OK;
}

supcon_status sc_cpu_relu_forward(void *state, float *y, const float *x, int64_t count) {
    return sc_elt(state, SC_RELU, y, x, NULL, count);
}

supcon_status sc_cpu_relu_backward(void *state, float *dx, const float *dy, const float *y, int64_t count) {
    return sc_elt(state, SC_RELU_BWD, dx, dy, y, count);
}

supcon_status sc_cpu_add_forward(void *state, float *y, const float *a, const float *b, int64_t count) {
    return sc_elt(state, SC_ADD, y, a, b, count);
}

supcon_status sc_cpu_add_relu_forward(void *state, float *y, const float *a, const float *b, int64_t count) {
    return sc_elt(state, SC_ADD_RELU, y, a, b, count);
}

supcon_status sc_cpu_accumulate(void *state, float *dst, const float *src, int64_t count) {
    return sc_elt(state, SC_ACC, dst, src, NULL, count);
}
