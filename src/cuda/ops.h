/* The network layers of the CUDA backend: the same calls, shapes and results as the CPU
 * backend's src/cpu/ops.h (read that file for each layer's contract); only what differs on a
 * GPU is written here. Leaves out the loss (loss.cu) and the optimiser.
 *
 * Memory: every pointer is device memory, including the int64 ones (num_batches_tracked,
 * labels), except the results the CPU contract marks "host": xent_forward's loss, top1 and
 * top5. The layers run asynchronously on the context's stream and never allocate; a kernel
 * fault shows up at the next call that synchronises (copies, the loss, xent_forward).
 * Scalar results and label checks synchronise. */
#ifndef SUPCON_CUDA_OPS_H
#define SUPCON_CUDA_OPS_H

#include "cuda_backend.h"

/* ---- Conv2d (conv.cu): cuDNN, float32 NCHW ------------------------------------------------
 * The algorithms are chosen once per descriptor by cuDNN's heuristics (or by timing runs
 * with SUPCON_CUDA_CONV_FIND=1, see cuda_backend.h) and cached in the state; deterministic
 * ones first unless SUPCON_CUDA_CONV_DETERMINISTIC=0. conv2d_workspace_bytes is the largest workspace the preferred algorithms of the
 * three calls need (capped at SC_CUDA_CONV_WS_CAP); it is 0 when cuDNN cannot plan the shape,
 * and then the calls report why. Each call then takes the preferred algorithm that fits the
 * ws_bytes it is given, so a smaller (even empty: ws NULL, ws_bytes 0) workspace is slower
 * but not an error while some algorithm fits. */
size_t sc_cuda_conv2d_workspace_bytes(void *state, const supcon_conv_desc *d);
supcon_status sc_cuda_conv2d_forward(void *state, const supcon_conv_desc *d, float *y, const float *x,
                                     const float *weight, void *ws, size_t ws_bytes);
supcon_status sc_cuda_conv2d_backward_data(void *state, const supcon_conv_desc *d, float *dx, const float *dy,
                                           const float *weight, int accumulate, void *ws, size_t ws_bytes);
supcon_status sc_cuda_conv2d_backward_filter(void *state, const supcon_conv_desc *d, float *dweight,
                                             const float *dy, const float *x, void *ws, size_t ws_bytes);

/* ---- BatchNorm2d (batchnorm.cu): own kernels, double sums -------------------------------
 * num_batches_tracked is device memory (an int64 in the model's buffers) and is incremented
 * by a kernel. Channels are limited by the layer scratch: c <= 131072. */
supcon_status sc_cuda_batchnorm_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                              float *running_mean, float *running_var,
                                              int64_t *num_batches_tracked, const float *x, const float *gamma,
                                              const float *beta, int64_t n, int64_t c, int64_t hw,
                                              double momentum, double eps);
supcon_status sc_cuda_batchnorm_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                              const float *x, const float *gamma, const float *beta,
                                              const float *running_mean, const float *running_var, int64_t n,
                                              int64_t c, int64_t hw, double eps);
supcon_status sc_cuda_batchnorm_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *gamma, const float *save_mean,
                                         const float *save_invstd, int64_t n, int64_t c, int64_t hw,
                                         int training);

/* Fused with the ReLU after it (and the residual add before it): lib/backend.h, ABI 4. */
supcon_status sc_cuda_batchnorm_relu_forward_train(void *state, float *y, float *save_mean, float *save_invstd,
                                                   float *running_mean, float *running_var,
                                                   int64_t *num_batches_tracked, const float *x, const float *gamma,
                                                   const float *beta, const float *residual, int64_t n, int64_t c,
                                                   int64_t hw, double momentum, double eps);
supcon_status sc_cuda_batchnorm_relu_forward_infer(void *state, float *y, float *save_mean, float *save_invstd,
                                                   const float *x, const float *gamma, const float *beta,
                                                   const float *running_mean, const float *running_var,
                                                   const float *residual, int64_t n, int64_t c, int64_t hw,
                                                   double eps);
supcon_status sc_cuda_batchnorm_relu_backward(void *state, float *dx, float *dgamma, float *dbeta, const float *dy,
                                              const float *relu_y, const float *x, const float *gamma,
                                              const float *save_mean, const float *save_invstd, int64_t n, int64_t c,
                                              int64_t hw, int training);

/* ---- Element-wise (eltwise.cu); in place allowed ------------------------------------------ */
supcon_status sc_cuda_relu_forward(void *state, float *y, const float *x, int64_t count);
supcon_status sc_cuda_relu_backward(void *state, float *dx, const float *dy, const float *y, int64_t count);
supcon_status sc_cuda_add_forward(void *state, float *y, const float *a, const float *b, int64_t count);
supcon_status sc_cuda_add_relu_forward(void *state, float *y, const float *a, const float *b, int64_t count);
supcon_status sc_cuda_accumulate(void *state, float *dst, const float *src, int64_t count);

/* ---- Global average pool (pool2d.cu) ------------------------------------------------------ */
supcon_status sc_cuda_avgpool_forward(void *state, float *y, const float *x, int64_t n, int64_t c, int64_t hw);
supcon_status sc_cuda_avgpool_backward(void *state, float *dx, const float *dy, int64_t n, int64_t c,
                                       int64_t hw, int accumulate);

/* ---- Linear with bias (linear.cu): cuBLAS SGEMM (pure float32 math mode) ------------------ */
supcon_status sc_cuda_linear_forward(void *state, float *y, const float *x, const float *weight,
                                     const float *bias, int64_t n, int64_t in, int64_t out);
supcon_status sc_cuda_linear_backward(void *state, float *dx, float *dweight, float *dbias, const float *dy,
                                      const float *x, const float *weight, int64_t n, int64_t in, int64_t out);

/* ---- L2 normalisation of rows (l2norm.cu) -------------------------------------------------- */
supcon_status sc_cuda_l2norm_forward(void *state, float *y, float *norms, const float *x, int64_t n, int64_t d);
supcon_status sc_cuda_l2norm_backward(void *state, float *dx, const float *dy, const float *x,
                                      const float *norms, int64_t n, int64_t d);

/* ---- Softmax cross-entropy (xent.cu) --------------------------------------------------------
 * labels are device memory. Both calls check them first (one small kernel and a wait) and
 * write nothing when one is out of range; xent_forward waits for its host results. */
supcon_status sc_cuda_xent_forward(void *state, double *loss, int64_t *top1, int64_t *top5, float *probs,
                                   const float *logits, const int64_t *labels, int64_t n, int64_t classes);
supcon_status sc_cuda_xent_backward(void *state, float *dlogits, const float *probs, const int64_t *labels,
                                    int64_t n, int64_t classes, float dloss);

/* ---- SGD (sgd.cu): the CPU's update, rounded the same way (no fused multiply-add) ---------- */
supcon_status sc_cuda_sgd_update(void *state, const supcon_sgd_segment *segs, int64_t count);

/* ---- Staged uploads (stage.cu, ABI 5): pinned buffer + copy stream, see backend.h --------- */
typedef struct sc_cuda_stage sc_cuda_stage;
supcon_status sc_cuda_stage_create(void *state, void **stage);
void sc_cuda_stage_destroy(void *state, void *stage);
supcon_status sc_cuda_stage_release(void *state, void *stage);
supcon_status sc_cuda_stage_upload(void *state, void *stage, void *dst, const void *src, size_t bytes);

#endif /* SUPCON_CUDA_OPS_H */
