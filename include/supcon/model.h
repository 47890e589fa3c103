/* libsupcon models: the CIFAR-style ResNet encoders of the reference (resnet18/34/50/101),
 * the projection head (linear or MLP, L2-normalised output) and the linear classifier, as one
 * handle with forward, backward and a table of its parameters under their PyTorch names.
 * Memory is planned per batch shape: nothing is allocated inside a training step. */
#ifndef SUPCON_MODEL_H
#define SUPCON_MODEL_H

#include "core.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Configuration ================================================================== */

typedef enum supcon_arch {
    SUPCON_RESNET18 = 0,  /* BasicBlock [2, 2, 2, 2], 8 * width features (512) */
    SUPCON_RESNET34 = 1,  /* BasicBlock [3, 4, 6, 3], 8 * width features (512) */
    SUPCON_RESNET50 = 2,  /* Bottleneck [3, 4, 6, 3], 32 * width features (2048) */
    SUPCON_RESNET101 = 3  /* Bottleneck [3, 4, 23, 3], 32 * width features (2048) */
} supcon_arch;

typedef enum supcon_head_kind {
    SUPCON_HEAD_NONE = 0,   /* no projection head (cross-entropy model, linear evaluation) */
    SUPCON_HEAD_LINEAR = 1, /* head = Linear(d, feat_dim) */
    SUPCON_HEAD_MLP = 2     /* head = Linear(d, d) - ReLU - Linear(d, feat_dim) (reference) */
} supcon_head_kind;

typedef struct supcon_model_config {
    size_t struct_size;     /* sizeof(supcon_model_config): set by _default() */
    supcon_arch arch;       /* default SUPCON_RESNET50 (the reference's --model default) */
    int in_channels;        /* image channels, default 3 (1 for grey images) */
    int width;              /* base planes of the first stage, default 64 (the reference) */
    supcon_head_kind head;  /* default SUPCON_HEAD_MLP */
    int feat_dim;           /* head output dimension, default 128 */
    int num_classes;        /* > 0 adds the classifier fc = Linear(d, num_classes); default 0 */
    int freeze_encoder;     /* 1: the encoder gets no gradient and its BatchNorms always use
                               their running statistics (linear evaluation). Default 0. */
    int zero_init_residual; /* 1: each block's last BN weight starts at 0. Default 0. */
    float bn_momentum;      /* running-statistics momentum, default 0.1 */
    float bn_eps;           /* default 1e-5 */
} supcon_model_config;

/** Defaults as documented per field, with struct_size filled in. */
SUPCON_API supcon_model_config supcon_model_config_default(void);

/** "resnet18", "resnet34", "resnet50", "resnet101"; "?" for an unknown value. */
SUPCON_API const char *supcon_arch_name(supcon_arch arch);
/** The arch of a --model name as above. Errors: ERR_INVALID_ARGUMENT (unknown name or NULL). */
SUPCON_API supcon_status supcon_arch_from_name(const char *name, supcon_arch *out);

typedef struct supcon_model supcon_model;

/** Build a model on ctx and initialise it as SPEC §2 from the context's seed: conv weights
 *  normal with std sqrt(2 / (out_channels kh kw)), BN weight 1 and bias 0, running mean 0 and
 *  variance 1, Linear weight and bias uniform in +-1/sqrt(fan_in). Each parameter draws from
 *  its own counter-based stream keyed by its name, so the same seed gives the same weights on
 *  every machine and thread count. The model starts in training mode.
 *  Errors: ERR_INVALID_ARGUMENT (NULL ctx/out, struct_size, unknown arch/head, in_channels or
 *  width < 1, feat_dim < 1 with a head, num_classes < 0, bn_eps <= 0, bn_momentum outside
 *  [0, 1]), ERR_UNSUPPORTED (the backend has no layers), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_model_create(supcon_context *ctx, const supcon_model_config *cfg,
                                             supcon_model **out);
/** Free the model and all its memory (tensors handed out by the model die with it).
 *  NULL is a no-op. */
SUPCON_API void supcon_model_free(supcon_model *m);

/** The configuration the model was built with (freeze_encoder as currently set). */
SUPCON_API supcon_model_config supcon_model_get_config(const supcon_model *m);
/** Encoder output dimension d (8 * width or 32 * width). */
SUPCON_API int64_t supcon_model_feature_dim(const supcon_model *m);

/* ==== Modes ========================================================================== */

/** 1: training (BN uses batch statistics and updates its running statistics, as
 *  model.train()); 0: inference (running statistics, as model.eval()). A frozen encoder is
 *  always in inference mode. Discards the last forward. Errors: ERR_INVALID_ARGUMENT. */
SUPCON_API supcon_status supcon_model_set_training(supcon_model *m, int training);
SUPCON_API int supcon_model_is_training(const supcon_model *m);
/** Freeze (1) or unfreeze (0) the encoder. Frozen encoder parameters get no gradient slot
 *  (their table entries show grad NULL and trainable 0) and the trainable range shrinks to
 *  the head and classifier. Discards the last forward. Errors: ERR_INVALID_ARGUMENT. */
SUPCON_API supcon_status supcon_model_set_encoder_frozen(supcon_model *m, int frozen);

/* ==== Memory planning ================================================================ */

/** Plan and allocate activations for batches of up to n images of h x w now, so that the
 *  first forward does not allocate. Optional: a forward with a larger batch than any seen
 *  re-plans by itself (allocating once); smaller or equal batches never allocate.
 *  Any h, w >= 1 works (padding keeps every stage at least 1 x 1, as in PyTorch).
 *  Errors: ERR_INVALID_ARGUMENT (m NULL, n, h or w < 1), ERR_SHAPE (a batch so large its
 *  sizes overflow), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_model_reserve(supcon_model *m, int64_t n, int64_t h, int64_t w);
/** Bytes the model holds now: parameters, gradients, buffers, activation arena and the
 *  convolution workspace (the same bytes also count in supcon_context_bytes_in_use). */
SUPCON_API size_t supcon_model_bytes(const supcon_model *m);
/** Of which the activation arena and the convolution workspace. */
SUPCON_API size_t supcon_model_activation_bytes(const supcon_model *m);

/* ==== Forward and backward =========================================================== */

/** Run input [N, in_channels, H, W] (float32, the model's context) through the model. In
 *  training mode BN running statistics are updated. Outputs are read with the accessors
 *  below. N >= 1; in training mode the deepest BN must see more than one value per channel
 *  (N * h4 * w4 > 1, as PyTorch).
 *  Errors: ERR_INVALID_ARGUMENT (NULL, tensor of another context), ERR_DTYPE, ERR_SHAPE
 *  (rank not 4, wrong channel count, image smaller than the network's strides allow, the
 *  single-value batch above), ERR_OUT_OF_MEMORY (re-planning for a larger batch).
 *  On error the last forward is discarded (backward then fails with ERR_STATE). */
SUPCON_API supcon_status supcon_model_forward(supcon_model *m, const supcon_tensor *input);

/** Outputs of the last successful forward, as tensors owned by the model and valid until the
 *  next forward, reserve, mode change or free. Do not free them. Before any forward they have
 *  0 rows.
 *  features: encoder output [N, d] (after the global average pool).
 *  head_output: [N, feat_dim], L2-normalised rows; NULL when the model has no head.
 *  logits: [N, num_classes]; NULL when the model has no classifier. */
SUPCON_API const supcon_tensor *supcon_model_features(const supcon_model *m);
SUPCON_API const supcon_tensor *supcon_model_head_output(const supcon_model *m);
SUPCON_API const supcon_tensor *supcon_model_logits(const supcon_model *m);

/** Softmax cross-entropy of the last forward's logits against labels [N] (int32 or int64):
 *  *loss = mean of -log softmax(logits)[label]; *top1 / *top5 count the rows whose label is
 *  among the 1 / 5 largest logits (either pointer may be NULL). grad_logits, when not NULL,
 *  receives d loss / d logits [N, num_classes], ready for supcon_model_backward.
 *  Errors: ERR_INVALID_ARGUMENT (NULL m/loss/labels, label outside [0, num_classes): the
 *  message names the row), ERR_STATE (no forward, or no classifier), ERR_SHAPE, ERR_DTYPE. */
SUPCON_API supcon_status supcon_model_cross_entropy(supcon_model *m, const supcon_tensor *labels,
                                                    float *loss, int64_t *top1, int64_t *top5,
                                                    supcon_tensor *grad_logits);

/** Backpropagate through the last forward: grad_head [N, feat_dim] (d loss / d head_output;
 *  any shape with N * feat_dim elements is accepted, e.g. [B, V, feat_dim] when the batch
 *  was laid out sample-major) and/or grad_logits [N, num_classes]; either may be NULL (not
 *  both). Gradients of every trainable parameter are ADDED to the gradient buffers (call
 *  supcon_model_zero_grad first); grad_input [N, C, H, W], when not NULL, is overwritten
 *  with d loss / d input. The forward's activations stay, so backward may be repeated.
 *  Errors: ERR_INVALID_ARGUMENT (m NULL, both gradients NULL, tensor of another context),
 *  ERR_STATE (no successful forward since the last mode change or re-plan; a gradient for
 *  a head or classifier the model lacks), ERR_SHAPE, ERR_DTYPE. */
SUPCON_API supcon_status supcon_model_backward(supcon_model *m, const supcon_tensor *grad_head,
                                               const supcon_tensor *grad_logits,
                                               supcon_tensor *grad_input);

/** Set every gradient to 0. Errors: ERR_INVALID_ARGUMENT (m NULL). */
SUPCON_API supcon_status supcon_model_zero_grad(supcon_model *m);

/* ==== Parameter table ================================================================ */

typedef enum supcon_param_kind {
    SUPCON_PARAM_PARAMETER = 0, /* learned: lives in the flat parameter tensor, has a gradient */
    SUPCON_PARAM_BUFFER = 1     /* BN running_mean / running_var / num_batches_tracked */
} supcon_param_kind;

/** One entry of the model's state, in the order of PyTorch's state_dict(). Owned by the
 *  model; fields may be appended in later versions (read them through the pointer). */
typedef struct supcon_param_info {
    const char *name;       /* exact state_dict name, e.g. "encoder.layer1.0.bn1.weight" */
    supcon_param_kind kind;
    supcon_dtype dtype;     /* FLOAT32; INT64 for num_batches_tracked */
    int ndim;               /* 0 for num_batches_tracked (a scalar, as in PyTorch) */
    int64_t shape[SUPCON_MAX_DIMS];
    int64_t numel;
    /** PARAMETER: element offset of this parameter in supcon_model_flat_params (and of its
     *  gradient in supcon_model_flat_grads). BUFFER: -1. */
    int64_t offset;
    int trainable;          /* 1: a PARAMETER that backward writes a gradient for */
    supcon_tensor *value;   /* view of the value (read, or upload to load weights) */
    supcon_tensor *grad;    /* view of the gradient; NULL for buffers and frozen parameters */
} supcon_param_info;

/** Number of entries (parameters and buffers), as len(model.state_dict()). */
SUPCON_API int64_t supcon_model_param_count(const supcon_model *m);
/** Entry i (0 <= i < count), or NULL when out of range. The pointer stays valid for the
 *  model's life; its grad and trainable fields follow supcon_model_set_encoder_frozen. */
SUPCON_API const supcon_param_info *supcon_model_param(const supcon_model *m, int64_t i);
/** Index of the entry called name. Also accepts names carrying "module." segments, as
 *  written by DataParallel runs ("encoder.module.conv1.weight", "module.encoder..."). A
 *  missing name is not an error of the model: the result is -1 (no message recorded). */
SUPCON_API int64_t supcon_model_param_find(const supcon_model *m, const char *name);

/** All PARAMETER entries, concatenated in table order: one float32 tensor [P]. */
SUPCON_API supcon_tensor *supcon_model_flat_params(supcon_model *m);
/** Their gradients, same layout [P]. Entries of frozen parameters stay 0. */
SUPCON_API supcon_tensor *supcon_model_flat_grads(supcon_model *m);
/** The trainable parameters are always one contiguous range [*offset, *offset + *count) of
 *  the flat tensors (the encoder comes first, so freezing it leaves head + classifier), so an
 *  optimizer can update them in one pass. Values may be written through the views or the
 *  flat tensor at any time between calls (the model caches nothing derived from them).
 *  Errors: ERR_INVALID_ARGUMENT (NULL). */
SUPCON_API supcon_status supcon_model_trainable_range(const supcon_model *m, int64_t *offset,
                                                      int64_t *count);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_MODEL_H */
