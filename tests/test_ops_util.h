/* Helpers shared by the layer tests (test_ops_*.c): a CPU backend state with a chosen number
 * of threads, random float arrays, widening to double and error measures. Header-only. */
#ifndef SUPCON_TEST_OPS_UTIL_H
#define SUPCON_TEST_OPS_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "registry.h"
#include "test_util.h"

/* A CPU backend state with `threads` workers and a supcon_precision, or NULL. */
static inline void *to_state_prec(int threads, int precision) {
    supcon_backend_init cfg = {.device = 0, .num_threads = threads, .precision = precision};
    void *st = NULL;
    char msg[SUPCON_BACKEND_MSG_LEN];
    if (sc_cpu_backend()->init(&cfg, &st, msg, sizeof msg) != SUPCON_OK) return NULL;
    return st;
}

static inline void *to_state(int threads) { return to_state_prec(threads, SUPCON_PRECISION_FP32); }

static inline void to_close(void *st) {
    if (st) sc_cpu_backend()->shutdown(st);
}

static inline const char *to_msg(void *st) { return sc_cpu_backend()->last_message(st); }

static inline float *to_floats(int64_t n) { return (float *)calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static inline double *to_doubles(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* n floats from N(0, scale^2). */
static inline void to_fill(tu_rng *r, float *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * tu_normal(r));
}

static inline double *to_widen(const float *x, int64_t n) {
    double *d = to_doubles(n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* ||got - want|| / max(||want||, 1e-30) with got float. */
static inline double to_err(const float *got, const double *want, int64_t n) {
    return tu_rel_norm_err_fd(got, want, n, 1e-30);
}

static inline double to_err_dd(const double *got, const double *want, int64_t n) {
    return tu_rel_norm_err_dd(got, want, n, 1e-30);
}

/* Central difference of f at x[i] with step h (x restored afterwards). */
#define TO_CENTRAL(f, x, i, h, out)                                                                \
    do {                                                                                           \
        const double to_keep_ = (x)[i];                                                            \
        (x)[i] = to_keep_ + (h);                                                                   \
        const double to_p_ = (f);                                                                  \
        (x)[i] = to_keep_ - (h);                                                                   \
        const double to_m_ = (f);                                                                  \
        (x)[i] = to_keep_;                                                                         \
        (out) = (to_p_ - to_m_) / (2.0 * (h));                                                     \
    } while (0)

#endif
