/* The CPU backend's table: host memory, copies, checks, the loss and the layers (ops.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "ops.h"
#include "registry.h"
#include "sgd.h"

supcon_status sc_cpu_fail(sc_cpu *st, supcon_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    return s;
}

static supcon_status cpu_init(const supcon_backend_init *cfg, void **state, char *msg, size_t len) {
    sc_cpu *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(msg, len, "out of memory");
        return SUPCON_ERR_OUT_OF_MEMORY;
    }
    st->pool = sc_pool_create(cfg->num_threads);
    if (!st->pool) {
        free(st);
        snprintf(msg, len, "could not start %d worker threads", cfg->num_threads);
        return SUPCON_ERR_OUT_OF_MEMORY;
    }
    st->gemm.floats = sc_gemm_ws_floats(sc_pool_size(st->pool));
    st->gemm.mem = aligned_alloc(64, (st->gemm.floats * sizeof(float) + 63) & ~(size_t)63);
    if (!st->gemm.mem) {
        sc_pool_destroy(st->pool);
        free(st);
        snprintf(msg, len, "out of memory for GEMM workspaces");
        return SUPCON_ERR_OUT_OF_MEMORY;
    }
    st->bf16_convs = cfg->precision == SUPCON_PRECISION_BF16;
    *state = st;
    return SUPCON_OK;
}

static void cpu_shutdown(void *state) {
    sc_cpu *st = state;
    sc_pool_destroy(st->pool);
    free(st->block);
    free(st->row_terms);
    free(st->gemm.mem);
    free(st);
}

static const char *cpu_last_message(void *state) { return ((sc_cpu *)state)->msg; }

static supcon_status cpu_alloc(void *state, size_t bytes, void **out) {
    /* 64-byte alignment suits AVX-512 loads and keeps rows of a tensor off shared lines. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    *out = aligned_alloc(64, rounded ? rounded : 64);
    if (!*out) return sc_cpu_fail(state, SUPCON_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", bytes);
    return SUPCON_OK;
}

static void cpu_release(void *state, void *ptr) { free(ptr); }

static supcon_status cpu_copy(void *state, void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
    return SUPCON_OK;
}

static supcon_status cpu_fill_zero(void *state, void *dst, size_t bytes) {
    if (bytes) memset(dst, 0, bytes);
    return SUPCON_OK;
}

static supcon_status cpu_find_nonfinite(void *state, const float *x, int64_t n, int64_t *first) {
    *first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            *first = i;
            break;
        }
    return SUPCON_OK;
}

static supcon_status cpu_swap_bv(void *state, float *dst, const float *src, int64_t b, int64_t v, int64_t d,
                                 int to_view_major) {
    const size_t row = (size_t)d * sizeof(float);
    for (int64_t i = 0; i < b; i++)
        for (int64_t k = 0; k < v; k++) {
            const int64_t bv = i * v + k, vb = k * b + i;
            if (to_view_major)
                memcpy(dst + vb * d, src + bv * d, row);
            else
                memcpy(dst + bv * d, src + vb * d, row);
        }
    return SUPCON_OK;
}

static size_t cpu_workspace_bytes(void *state) {
    sc_cpu *st = state;
    return (st->block_cap + st->gemm.floats) * sizeof(float) + st->row_terms_cap * sizeof(double);
}

static const supcon_backend_ops sc_cpu_ops = {
    .abi = SUPCON_BACKEND_ABI,
    .name = "cpu",
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .last_message = cpu_last_message,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .find_nonfinite = cpu_find_nonfinite,
    .swap_bv = cpu_swap_bv,
    .loss = sc_cpu_loss,
    .workspace_bytes = cpu_workspace_bytes,
    .conv2d_workspace_bytes = sc_cpu_conv2d_workspace_bytes,
    .conv2d_forward = sc_cpu_conv2d_forward,
    .conv2d_backward_data = sc_cpu_conv2d_backward_data,
    .conv2d_backward_filter = sc_cpu_conv2d_backward_filter,
    .batchnorm_forward_train = sc_cpu_batchnorm_forward_train,
    .batchnorm_forward_infer = sc_cpu_batchnorm_forward_infer,
    .batchnorm_backward = sc_cpu_batchnorm_backward,
    .relu_forward = sc_cpu_relu_forward,
    .relu_backward = sc_cpu_relu_backward,
    .add_forward = sc_cpu_add_forward,
    .add_relu_forward = sc_cpu_add_relu_forward,
    .accumulate = sc_cpu_accumulate,
    .avgpool_forward = sc_cpu_avgpool_forward,
    .avgpool_backward = sc_cpu_avgpool_backward,
    .linear_forward = sc_cpu_linear_forward,
    .linear_backward = sc_cpu_linear_backward,
    .l2norm_forward = sc_cpu_l2norm_forward,
    .l2norm_backward = sc_cpu_l2norm_backward,
    .xent_forward = sc_cpu_xent_forward,
    .xent_backward = sc_cpu_xent_backward,
    .sgd_update = sc_cpu_sgd_update,
    /* ABI 4; synchronize stays NULL: every call here is done when it returns */
    .batchnorm_relu_forward_train = sc_cpu_batchnorm_relu_forward_train,
    .batchnorm_relu_forward_infer = sc_cpu_batchnorm_relu_forward_infer,
    .batchnorm_relu_backward = sc_cpu_batchnorm_relu_backward,
    .fill_zero = cpu_fill_zero, /* ABI 7 */
};

const supcon_backend_ops *sc_cpu_backend(void) { return &sc_cpu_ops; }
