/* The network layers of the CPU backend: forward/backward pairs with every buffer passed in
 * and its shape beside it, float32, NCHW, row-major. Each function is also a slot of the
 * backend table (lib/backend.h) and takes the backend state first; they never allocate.
 * Conventions: outputs first; parameter gradients accumulate (+=); activation gradients are
 * overwritten unless `accumulate` is set (where two paths join). Results do not depend on
 * the number of worker threads. Shapes are the caller's to check (the core does). */
#ifndef SUPCON_CPU_OPS_H
#define SUPCON_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* ---- Conv2d (conv.c) ------------------------------------------------------------------
 * Sizes per supcon_conv_desc; oh, ow as supcon_conv_out_h/w. ws is scratch of at least
 * sc_cpu_conv2d_workspace_bytes(d) bytes (one size serves all three calls), else
 * ERR_INVALID_ARGUMENT. On a state made with SUPCON_PRECISION_BF16 the three calls round
 * their operands and results to bfloat16 (conv_bf16.c), and the workspace is larger. */
size_t sc_cpu_conv2d_workspace_bytes(void *state, const supcon_conv_desc *d);
supcon_status sc_cpu_conv2d_forward(void *state, const supcon_conv_desc *d,
                                     float *y,            /* (n, c_out, oh, ow) */
                                     const float *x,      /* (n, c_in, h, w) */
                                     const float *weight, /* (c_out, c_in, kh, kw) */
                                     void *ws, size_t ws_bytes);
/* dx = dL/dx, or dx += dL/dx when accumulate. */
supcon_status sc_cpu_conv2d_backward_data(void *state, const supcon_conv_desc *d,
                                          float *dx,           /* (n, c_in, h, w) */
                                          const float *dy,     /* (n, c_out, oh, ow) */
                                          const float *weight, /* (c_out, c_in, kh, kw) */
                                          int accumulate, void *ws, size_t ws_bytes);
/* dweight += dL/dweight. */
supcon_status sc_cpu_conv2d_backward_filter(void *state, const supcon_conv_desc *d,
                                            float *dweight,  /* (c_out, c_in, kh, kw) */
                                            const float *dy, /* (n, c_out, oh, ow) */
                                            const float *x,  /* (n, c_in, h, w) */
                                            void *ws, size_t ws_bytes);

/* ---- BatchNorm2d (batchnorm.c) ----------------------------------------------------------
 * Training: normalise with the batch mean and biased variance over (n, hw); save_mean and
 * save_invstd = 1/sqrt(var + eps) are kept for the backward; running_mean/var become
 * (1 - momentum) old + momentum new with the unbiased variance, *num_batches_tracked += 1
 * (either may be NULL to leave them alone). n * hw must be > 1 (ERR_SHAPE otherwise, as
 * PyTorch). */
supcon_status sc_cpu_batchnorm_forward_train(void *state,
                                             float *y,                    /* (n, c, hw) */
                                             float *save_mean,            /* (c) */
                                             float *save_invstd,          /* (c) */
                                             float *running_mean,         /* (c), updated, or NULL */
                                             float *running_var,          /* (c), updated, or NULL */
                                             int64_t *num_batches_tracked, /* (1), or NULL */
                                             const float *x,              /* (n, c, hw) */
                                             const float *gamma,          /* (c) */
                                             const float *beta,           /* (c) */
                                             int64_t n, int64_t c, int64_t hw, double momentum, double eps);
/* Inference: the running statistics; save_mean/save_invstd (may be NULL) receive
 * running_mean and 1/sqrt(running_var + eps) for a backward through a frozen BN. */
supcon_status sc_cpu_batchnorm_forward_infer(void *state,
                                             float *y,                  /* (n, c, hw) */
                                             float *save_mean,          /* (c) or NULL */
                                             float *save_invstd,        /* (c) or NULL */
                                             const float *x,            /* (n, c, hw) */
                                             const float *gamma,        /* (c) */
                                             const float *beta,         /* (c) */
                                             const float *running_mean, /* (c) */
                                             const float *running_var,  /* (c) */
                                             int64_t n, int64_t c, int64_t hw, double eps);
/* dx overwritten (NULL: not wanted), dgamma and dbeta accumulated (NULL: not wanted).
 * training 1: through the batch statistics; 0: the statistics are constants. */
supcon_status sc_cpu_batchnorm_backward(void *state,
                                        float *dx,                /* (n, c, hw) or NULL */
                                        float *dgamma,            /* (c) or NULL */
                                        float *dbeta,             /* (c) or NULL */
                                        const float *dy,          /* (n, c, hw) */
                                        const float *x,           /* (n, c, hw) */
                                        const float *gamma,       /* (c) */
                                        const float *save_mean,   /* (c) */
                                        const float *save_invstd, /* (c) */
                                        int64_t n, int64_t c, int64_t hw, int training);

/* Batch norm fused with the ReLU after it: y = relu(BN(x) + residual), residual (n, c, hw)
 * or NULL (y = relu(BN(x))); the statistics, running updates and saved values as the calls
 * above. y may be residual (in place). The same bits as batchnorm_forward_* then relu_forward
 * or add_relu_forward. */
supcon_status sc_cpu_batchnorm_relu_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                                  float *running_mean, float *running_var,
                                                  int64_t *num_batches_tracked, const float *x, const float *gamma,
                                                  const float *beta, const float *residual, int64_t n, int64_t c,
                                                  int64_t hw, double momentum, double eps);
supcon_status sc_cpu_batchnorm_relu_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                                  const float *x, const float *gamma, const float *beta,
                                                  const float *running_mean, const float *running_var,
                                                  const float *residual, int64_t n, int64_t c, int64_t hw,
                                                  double eps);
/* The backward of y = relu(BN(x)) from dy = dL/dy and that y (relu_y, whose mask applies to
 * dy): the same bits as relu_backward then batchnorm_backward, dy left as it is. */
supcon_status sc_cpu_batchnorm_relu_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                             const float *relu_y, const float *x, const float *gamma,
                                             const float *save_mean, const float *save_invstd, int64_t n, int64_t c,
                                             int64_t hw, int training);

/* ---- Element-wise (eltwise.c); in place allowed (y == x, dx == dy, y == a or b) -------- */
supcon_status sc_cpu_relu_forward(void *state, float *y, const float *x, int64_t count);
/* dx = dy where y > 0, else 0 (y is the forward output, as PyTorch's threshold_backward). */
supcon_status sc_cpu_relu_backward(void *state, float *dx, const float *dy, const float *y, int64_t count);
/* y = a + b: the residual join. Its backward passes dy to both branches unchanged. */
supcon_status sc_cpu_add_forward(void *state, float *y, const float *a, const float *b, int64_t count);
/* y = max(a + b, 0): the end of a residual block in one pass. */
supcon_status sc_cpu_add_relu_forward(void *state, float *y, const float *a, const float *b, int64_t count);
/* dst += src: where two gradient paths join. */
supcon_status sc_cpu_accumulate(void *state, float *dst, const float *src, int64_t count);

/* ---- Global average pool (pool2d.c) ---------------------------------------------------- */
supcon_status sc_cpu_avgpool_forward(void *state,
                                     float *y,       /* (n, c) */
                                     const float *x, /* (n, c, hw) */
                                     int64_t n, int64_t c, int64_t hw);
supcon_status sc_cpu_avgpool_backward(void *state,
                                      float *dx,       /* (n, c, hw), = or += dy / hw */
                                      const float *dy, /* (n, c) */
                                      int64_t n, int64_t c, int64_t hw, int accumulate);

/* ---- Linear with bias (linear.c): y = x weight^T + bias, as torch.nn.Linear ------------- */
supcon_status sc_cpu_linear_forward(void *state,
                                    float *y,            /* (n, out) */
                                    const float *x,      /* (n, in) */
                                    const float *weight, /* (out, in) */
                                    const float *bias,   /* (out) or NULL */
                                    int64_t n, int64_t in, int64_t out);
/* dx overwritten, dweight and dbias accumulated; any of the three may be NULL. */
supcon_status sc_cpu_linear_backward(void *state,
                                     float *dx,           /* (n, in) or NULL */
                                     float *dweight,      /* (out, in) or NULL */
                                     float *dbias,        /* (out) or NULL */
                                     const float *dy,     /* (n, out) */
                                     const float *x,      /* (n, in) */
                                     const float *weight, /* (out, in) */
                                     int64_t n, int64_t in, int64_t out);

/* ---- L2 normalisation of rows (l2norm.c): y = x / max(||x||, 1e-12) --------------------- */
supcon_status sc_cpu_l2norm_forward(void *state,
                                    float *y,       /* (n, d) */
                                    float *norms,   /* (n): ||x|| kept for the backward */
                                    const float *x, /* (n, d) */
                                    int64_t n, int64_t d);
supcon_status sc_cpu_l2norm_backward(void *state,
                                     float *dx,          /* (n, d) */
                                     const float *dy,    /* (n, d) */
                                     const float *x,     /* (n, d) */
                                     const float *norms, /* (n) */
                                     int64_t n, int64_t d);

/* ---- Softmax cross-entropy (xent.c) ------------------------------------------------------
 * loss = mean over the batch of -log softmax(logits)[label]; top1/top5 count the rows whose
 * label is among the 1 (5, or all when classes < 5) largest logits, a tie counting in the
 * label's favour. Labels outside [0, classes) give ERR_INVALID_ARGUMENT naming the first
 * offending row, with nothing written. probs (may be NULL) keeps the softmax. */
supcon_status sc_cpu_xent_forward(void *state,
                                  double *loss,          /* (1), host */
                                  int64_t *top1,         /* (1), host, or NULL */
                                  int64_t *top5,         /* (1), host, or NULL */
                                  float *probs,          /* (n, classes) or NULL */
                                  const float *logits,   /* (n, classes) */
                                  const int64_t *labels, /* (n) */
                                  int64_t n, int64_t classes);
/* dlogits = dloss (probs - onehot(label)) / n; dlogits may be probs. */
supcon_status sc_cpu_xent_backward(void *state,
                                   float *dlogits,        /* (n, classes) */
                                   const float *probs,    /* (n, classes) */
                                   const int64_t *labels, /* (n) */
                                   int64_t n, int64_t classes, float dloss);

#endif
