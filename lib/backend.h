/* The internal backend table: what a backend (src/cpu, src/cuda) must provide to the core.
 * Not public. The CUDA backend lives in a separately loaded module, so this table is an
 * ABI between libsupcon.so and libsupcon_cuda.so: bump SUPCON_BACKEND_ABI on any change.
 * A NULL slot means "not supported by this backend"; the core turns it into ERR_UNSUPPORTED. */
#ifndef SUPCON_LIB_BACKEND_H
#define SUPCON_LIB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "supcon/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SUPCON_BACKEND_ABI 7u

/* How a backend's state reports why a call failed: the backend writes a message here and
 * returns a status; the core copies the message into the context's last error. */
#define SUPCON_BACKEND_MSG_LEN 512

typedef struct supcon_backend_init {
    int device;      /* CUDA ordinal; ignored by the CPU backend */
    int num_threads; /* CPU worker threads, 0 = one per core */
    int precision;   /* ABI 6: a supcon_precision. TF32 lets the products use TF32 tensor
                        cores; BF16 makes the three conv2d calls round their operands and
                        results to bfloat16 (every backend, the CPU included) */
} supcon_backend_init;

/* Positives of the loss problem: equal labels, or a sample-level weight matrix. */
typedef enum supcon_positive_kind {
    SUPCON_POSITIVE_LABELS = 0, /* P[a][c] = anchor_labels[a] == contrast_labels[c] */
    SUPCON_POSITIVE_MASK = 1    /* P[a][c] = mask[(a % mask_n) * mask_n + (c % mask_n)] */
} supcon_positive_kind;

/* One loss evaluation, fully resolved by the core (lib/loss.c). All pointers are backend
 * memory, rows are contiguous with stride dim. */
typedef struct supcon_loss_problem {
    const float *anchors;  /* (n_anchors, dim) */
    const float *contrast; /* (n_contrast, dim) */
    int64_t n_anchors;
    int64_t n_contrast;
    int64_t dim;
    int exclude_self; /* 1: anchor a is not contrasted with contrast row a (a < n_anchors) */

    supcon_positive_kind positive_kind;
    const int64_t *anchor_labels;   /* (n_anchors), LABELS only */
    const int64_t *contrast_labels; /* (n_contrast), LABELS only */
    const float *mask;              /* (mask_n, mask_n), MASK only */
    int64_t mask_n;

    float temperature;
    float base_temperature;
    int denominator; /* supcon_loss_denominator */
    int aggregation; /* supcon_loss_aggregation */

    /* Gradient outputs, either may be NULL (not wanted). grad_contrast (n_contrast, dim) is
     * overwritten with dL/dcontrast. grad_anchors (n_anchors, dim) is overwritten with
     * dL/danchors, except when grad_anchors == grad_contrast: then dL/danchors is added into
     * the first n_anchors rows (anchors are those rows, as in the batch form). */
    float *grad_anchors;
    float *grad_contrast;
} supcon_loss_problem;

/* A 2-d convolution without bias (the reference has none), NCHW, cross-correlation as
 * PyTorch's Conv2d: x (n, c_in, h, w), weight (c_out, c_in, kh, kw), y (n, c_out, oh, ow) with
 * oh = (h + 2 pad_h - kh) / stride_h + 1 and ow likewise (both >= 1). */
typedef struct supcon_conv_desc {
    int64_t n, c_in, h, w, c_out;
    int64_t kh, kw, stride_h, stride_w, pad_h, pad_w;
} supcon_conv_desc;

static inline int64_t supcon_conv_out_h(const supcon_conv_desc *d) {
    return (d->h + 2 * d->pad_h - d->kh) / d->stride_h + 1;
}
static inline int64_t supcon_conv_out_w(const supcon_conv_desc *d) {
    return (d->w + 2 * d->pad_w - d->kw) / d->stride_w + 1;
}

/* One run of an SGD update (ABI 3): count parameters with their gradients and momentum
 * buffers, contiguous, under one set of hyper-parameters already rounded to float as
 * PyTorch's kernels round them. Per element, in float, as torch.optim.SGD (1.13):
 *   d = grad + weight_decay * param                      (skipped when weight_decay == 0)
 *   momentum != 0:  buf = first ? d : momentum * buf + one_minus_dampening * d
 *                   d = nesterov ? d + momentum * buf : buf
 *   param = param - lr * d
 * Pointers are backend memory; momentum_buffer is NULL when momentum == 0. */
typedef struct supcon_sgd_segment {
    float *param;
    const float *grad;
    float *momentum_buffer;
    int64_t count;
    float lr;
    float weight_decay;
    float momentum;
    float one_minus_dampening;
    int nesterov;
    int first; /* 1: the buffer holds nothing yet (PyTorch's first step: buf = clone(d)) */
} supcon_sgd_segment;

typedef struct supcon_backend_ops {
    uint32_t abi; /* SUPCON_BACKEND_ABI the backend was built against */
    const char *name;

    /* Lifetime. init fills *state; on failure writes msg and returns a status. */
    supcon_status (*init)(const supcon_backend_init *cfg, void **state, char *msg, size_t len);
    void (*shutdown)(void *state);
    /* Message of the last failed call on this state ("" if none). */
    const char *(*last_message)(void *state);

    /* Memory. alloc of 0 bytes returns a unique non-NULL pointer or NULL with OK. */
    supcon_status (*alloc)(void *state, size_t bytes, void **out);
    void (*release)(void *state, void *ptr);
    supcon_status (*upload)(void *state, void *dst, const void *host_src, size_t bytes);
    supcon_status (*download)(void *state, void *host_dst, const void *src, size_t bytes);
    /* Between two buffers of backend memory: ordered with the backend's other calls on this
     * state, and (like them) it may still be running when it returns. */
    supcon_status (*copy)(void *state, void *dst, const void *src, size_t bytes);

    /* Index of the first non-finite element of x[0..n), or -1 when all are finite. */
    supcon_status (*find_nonfinite)(void *state, const float *x, int64_t n, int64_t *first);

    /* (b, v, d) <-> (v, b, d): to_view_major 1 moves src (b, v, d) to dst (v, b, d);
     * 0 moves src (v, b, d) to dst (b, v, d). dst and src never overlap. */
    supcon_status (*swap_bv)(void *state, float *dst, const float *src, int64_t b, int64_t v,
                             int64_t d, int to_view_major);

    /* The loss value (in double on the host) and, where asked, its gradients. */
    supcon_status (*loss)(void *state, const supcon_loss_problem *p, double *value);

    /* Bytes the backend holds in its own workspaces (reported in the context's memory
     * figures). NULL means none. */
    size_t (*workspace_bytes)(void *state);

    /* ---- Layers (ABI 2). Outputs first, then inputs, then sizes; every pointer is backend
     * memory with its shape beside it in the CPU backend's src/cpu/ops.h, which documents
     * each call. Parameter gradients accumulate (+=); activation gradients are overwritten
     * unless an accumulate flag says otherwise. ws is caller-owned scratch of ws_bytes, at
     * least conv2d_workspace_bytes(d); the layers never allocate. */
    size_t (*conv2d_workspace_bytes)(void *state, const supcon_conv_desc *d);
    supcon_status (*conv2d_forward)(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                    const float *weight, void *ws, size_t ws_bytes);
    supcon_status (*conv2d_backward_data)(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                          const float *weight, int accumulate, void *ws, size_t ws_bytes);
    supcon_status (*conv2d_backward_filter)(void *state, const supcon_conv_desc *d, float *dweight,
                                            const float *dy, const float *x, void *ws, size_t ws_bytes);
    supcon_status (*batchnorm_forward_train)(void *state, float *y, float *save_mean, float *save_invstd,
                                             float *running_mean, float *running_var,
                                             int64_t *num_batches_tracked, const float *x, const float *gamma,
                                             const float *beta, int64_t n, int64_t c, int64_t hw,
                                             double momentum, double eps);
    supcon_status (*batchnorm_forward_infer)(void *state, float *y, float *save_mean, float *save_invstd,
                                             const float *x, const float *gamma, const float *beta,
                                             const float *running_mean, const float *running_var, int64_t n,
                                             int64_t c, int64_t hw, double eps);
    supcon_status (*batchnorm_backward)(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                        const float *x, const float *gamma, const float *save_mean,
                                        const float *save_invstd, int64_t n, int64_t c, int64_t hw,
                                        int training);
    supcon_status (*relu_forward)(void *state, float *y, const float *x, int64_t count);
    supcon_status (*relu_backward)(void *state, float *dx, const float *dy, const float *y, int64_t count);
    supcon_status (*add_forward)(void *state, float *y, const float *a, const float *b, int64_t count);
    supcon_status (*add_relu_forward)(void *state, float *y, const float *a, const float *b, int64_t count);
    supcon_status (*accumulate)(void *state, float *dst, const float *src, int64_t count);
    supcon_status (*avgpool_forward)(void *state, float *y, const float *x, int64_t n, int64_t c, int64_t hw);
    supcon_status (*avgpool_backward)(void *state, float *dx, const float *dy, int64_t n, int64_t c,
                                      int64_t hw, int accumulate);
    supcon_status (*linear_forward)(void *state, float *y, const float *x, const float *weight,
                                    const float *bias, int64_t n, int64_t in, int64_t out);
    supcon_status (*linear_backward)(void *state, float *dx, float *dweight, float *dbias, const float *dy,
                                     const float *x, const float *weight, int64_t n, int64_t in, int64_t out);
    supcon_status (*l2norm_forward)(void *state, float *y, float *norms, const float *x, int64_t n, int64_t d);
    supcon_status (*l2norm_backward)(void *state, float *dx, const float *dy, const float *x,
                                     const float *norms, int64_t n, int64_t d);
    supcon_status (*xent_forward)(void *state, double *loss, int64_t *top1, int64_t *top5, float *probs,
                                  const float *logits, const int64_t *labels, int64_t n, int64_t classes);
    supcon_status (*xent_backward)(void *state, float *dlogits, const float *probs, const int64_t *labels,
                                   int64_t n, int64_t classes, float dloss);

    /* ---- Optimiser (ABI 3). Every segment of segs[0..count) updated in place; segments
     * never overlap one another. Results do not depend on how the work is split. */
    supcon_status (*sgd_update)(void *state, const supcon_sgd_segment *segs, int64_t count);

    /* ---- ABI 4. Wait until every call made so far has finished (for profiling; reports a
     * fault of an earlier asynchronous call). NULL: the backend's calls are synchronous. */
    supcon_status (*synchronize)(void *state);

    /* ABI 4, optional (NULL: the core makes the separate calls). Batch norm fused with what
     * follows it in a ResNet block, each the same bits as the separate calls:
     * y = relu(BN(x) + residual) (residual NULL: relu(BN(x)); y may be residual), and the
     * backward of y = relu(BN(x)) from dy and that y, whose mask applies to dy (dy itself is
     * left as it is). Arguments otherwise as batchnorm_forward_train / _infer / _backward. */
    supcon_status (*batchnorm_relu_forward_train)(void *state, float *y, float *save_mean, float *save_invstd,
                                                  float *running_mean, float *running_var,
                                                  int64_t *num_batches_tracked, const float *x, const float *gamma,
                                                  const float *beta, const float *residual, int64_t n, int64_t c,
                                                  int64_t hw, double momentum, double eps);
    supcon_status (*batchnorm_relu_forward_infer)(void *state, float *y, float *save_mean, float *save_invstd,
                                                  const float *x, const float *gamma, const float *beta,
                                                  const float *running_mean, const float *running_var,
                                                  const float *residual, int64_t n, int64_t c, int64_t hw,
                                                  double eps);
    supcon_status (*batchnorm_relu_backward)(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                             const float *relu_y, const float *x, const float *gamma,
                                             const float *save_mean, const float *save_invstd, int64_t n, int64_t c,
                                             int64_t hw, int training);

    /* ---- ABI 5, optional (all four set, or all NULL: the core then uploads synchronously).
     * Staged uploads for supcon_uploader: a stage is a page-locked host buffer plus a copy
     * stream's ordering, for one device destination the core reuses every other push.
     * stage_release marks the calls queued so far as the last that may read the stage's
     * destination; stage_upload copies host src to dst through the stage's buffer on a copy
     * stream that waits for those calls only (not for work queued after the release), and
     * makes every later call wait for the copy. src may be reused when it returns.
     * stage_destroy waits for the stage's copy and frees its buffer. */
    supcon_status (*stage_create)(void *state, void **stage);
    void (*stage_destroy)(void *state, void *stage);
    supcon_status (*stage_release)(void *state, void *stage);
    supcon_status (*stage_upload)(void *state, void *stage, void *dst, const void *src, size_t bytes);

    /* ---- ABI 7, optional (NULL: the core uploads zeros). bytes of backend memory at dst set
     * to zero, ordered like copy: the model's zero_grad runs it every step, where uploads
     * from the host would wait for the device once per chunk. */
    supcon_status (*fill_zero)(void *state, void *dst, size_t bytes);
} supcon_backend_ops;

/* The entry point a backend module exports (the CUDA module as a dlsym-able symbol). */
typedef const supcon_backend_ops *(*supcon_backend_entry_fn)(void);
#define SUPCON_CUDA_ENTRY_SYMBOL "supcon_cuda_backend_entry"

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_LIB_BACKEND_H */
