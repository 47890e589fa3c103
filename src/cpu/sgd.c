/* SGD on the CPU: every segment of a step in one parallel region, split into fixed chunks of
 * the concatenated elements. Each element is updated on its own, so results never depend
 * on the split or the number of threads. Built with -ffp-contract=off (src/cpu/CMakeLists):
 * the rounding of each operation is the one PyTorch's scalar kernels make, in any build. */
#include "sgd.h"

#include "cpu_backend.h"

/* Elements per pool chunk: the update is memory-bound, so chunks are large. */
#define SC_SGD_GRAIN ((int64_t)64 << 10)

typedef struct sc_sgd_job {
    const supcon_sgd_segment *segs;
    int64_t count;
} sc_sgd_job;

/* Elements [b, e) of one segment, for one case. Called with constant flags only, so that
 * each case is its own branch-free loop the compiler vectorises; temporaries are separate
 * statements so that no compiler fuses a multiply and an add. */
static inline __attribute__((always_inline)) void sc_sgd_loop(const supcon_sgd_segment *s, int64_t b, int64_t e,
                                                              const int decay, const int momentum, const int first,
                                                              const int nesterov) {
    float *restrict w = s->param;
    const float *restrict g = s->grad;
    float *restrict buf = s->momentum_buffer;
    const float lr = s->lr, wd = s->weight_decay, mu = s->momentum, keep = s->one_minus_dampening;
#pragma omp simd
    for (int64_t i = b; i < e; i++) {
        float d = g[i];
        if (decay) {
            const float t = wd * w[i];
            d = d + t;
        }
        if (momentum) {
            float nb;
            if (first) {
                nb = d;
            } else {
                const float old = mu * buf[i];
                const float add = keep * d;
                nb = old + add;
            }
            buf[i] = nb;
            if (nesterov) {
                const float t = mu * nb;
                d = d + t;
            } else {
                d = nb;
            }
        }
        const float step = lr * d;
        w[i] = w[i] - step;
    }
}

static void sc_sgd_range(const supcon_sgd_segment *s, int64_t b, int64_t e) {
    const int decay = s->weight_decay != 0.0f;
    if (s->momentum == 0.0f || !s->momentum_buffer) {
        if (decay) sc_sgd_loop(s, b, e, 1, 0, 0, 0);
        else sc_sgd_loop(s, b, e, 0, 0, 0, 0);
        return;
    }
    const int case_ = (decay << 2) | ((s->first != 0) << 1) | (s->nesterov != 0);
    switch (case_) {
    case 0: sc_sgd_loop(s, b, e, 0, 1, 0, 0); break;
    case 1: sc_sgd_loop(s, b, e, 0, 1, 0, 1); break;
    case 2: sc_sgd_loop(s, b, e, 0, 1, 1, 0); break;
    case 3: sc_sgd_loop(s, b, e, 0, 1, 1, 1); break;
    case 4: sc_sgd_loop(s, b, e, 1, 1, 0, 0); break;
    case 5: sc_sgd_loop(s, b, e, 1, 1, 0, 1); break;
    case 6: sc_sgd_loop(s, b, e, 1, 1, 1, 0); break;
    default: sc_sgd_loop(s, b, e, 1, 1, 1, 1); break;
    }
}

/* Items [begin, end) of the concatenation of all segments. */
static void sc_sgd_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_sgd_job *j = arg;
    int64_t base = 0;
    for (int64_t k = 0; k < j->count && base < end; k++) {
        const supcon_sgd_segment *s = &j->segs[k];
        const int64_t lo = begin > base ? begin - base : 0;
        const int64_t hi = end - base < s->count ? end - base : s->count;
        if (lo < hi) sc_sgd_range(s, lo, hi);
        base += s->count;
    }
}

supcon_status sc_cpu_sgd_update(void *state, const supcon_sgd_segment *segs, int64_t count) {
    sc_cpu *st = state;
    int64_t total = 0;
    for (int64_t k = 0; k < count; k++) {
        if (segs[k].count < 0 || (segs[k].count && (!segs[k].param || !segs[k].grad)))
            return sc_cpu_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "sgd_update: segment %lld is malformed",
                               (long long)k);
        total += segs[k].count;
    }
    sc_sgd_job j = {segs, count};
    if (total > 0) sc_pool_run(st->pool, total, SC_SGD_GRAIN, sc_sgd_task, &j);
    return SUPCON_OK;
}
