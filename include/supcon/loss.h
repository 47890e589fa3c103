/* libsupcon SupConLoss: the supervised contrastive loss of Khosla et al. (2020), and SimCLR's
 * NT-Xent when no labels are given. Logits are computed tile by tile and never held whole,
 * so memory grows as (anchors + contrast) x dim, not anchors x contrast. */
#ifndef SUPCON_LOSS_H
#define SUPCON_LOSS_H

#include "core.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum supcon_contrast_mode {
    SUPCON_CONTRAST_ALL = 0, /* every view of every sample is an anchor (reference default) */
    SUPCON_CONTRAST_ONE = 1  /* only view 0 of each sample is an anchor */
} supcon_contrast_mode;

/** What the log-probability of a positive is normalised over (Khosla et al., supplement). */
typedef enum supcon_loss_denominator {
    SUPCON_DENOMINATOR_ALL = 0,       /* every entry but the anchor itself (reference) */
    SUPCON_DENOMINATOR_POSITIVE = 1,  /* the negatives plus the one positive in the numerator */
    SUPCON_DENOMINATOR_NEGATIVES = 2  /* the negatives only (decoupled form) */
} supcon_loss_denominator;

/** How the positives of one anchor are combined. */
typedef enum supcon_loss_aggregation {
    SUPCON_AGGREGATE_OUT = 0, /* L_out: mean over positives of log p (reference) */
    SUPCON_AGGREGATE_IN = 1   /* L_in: log of the mean over positives of p */
} supcon_loss_aggregation;

typedef struct supcon_loss_config {
    size_t struct_size;                  /* set by supcon_loss_config_default() */
    float temperature;                   /* tau, default 0.07, must be > 0 */
    float base_temperature;              /* tau_b, default 0.07, must be > 0; loss scaled by tau/tau_b */
    supcon_contrast_mode contrast_mode;  /* default SUPCON_CONTRAST_ALL */
    supcon_loss_denominator denominator; /* default SUPCON_DENOMINATOR_ALL */
    supcon_loss_aggregation aggregation; /* default SUPCON_AGGREGATE_OUT */
    int forward_only;                    /* 1: forward skips all gradient work (evaluation);
                                            backward then fails with ERR_STATE. Default 0. */
} supcon_loss_config;

typedef struct supcon_loss supcon_loss;

/** Reference defaults: temperature 0.07, base_temperature 0.07, SUPCON_CONTRAST_ALL,
 *  denominator ALL, aggregation OUT, forward_only 0; struct_size set. */
SUPCON_API supcon_loss_config supcon_loss_config_default(void);

/** Create a loss object on ctx. cfg NULL means defaults. The object keeps workspaces sized
 *  to the largest batch seen, so repeated calls with one shape never allocate.
 *  Errors: ERR_INVALID_ARGUMENT (NULL ctx/out, struct_size, temperature <= 0 or not
 *  finite, unknown enum value), ERR_OUT_OF_MEMORY. Not thread-safe with respect to ctx. */
SUPCON_API supcon_status supcon_loss_create(supcon_context *ctx, const supcon_loss_config *cfg,
                                            supcon_loss **out);

/** Loss of features [B, V, D] (float32; more than 3 dims: trailing dims are flattened into
 *  D). Positives: labels [B] (int32 or int64: same label = positive), or mask [B, B]
 *  (float32, mask[i][j] > 0 weights j as a positive of i; may be asymmetric; entries must
 *  be finite and >= 0), or neither (SimCLR: only the other views of the same sample).
 *  Tensors belong to the loss's context. On success *value holds the loss and, unless the
 *  loss is forward_only, the gradient is ready for supcon_loss_backward.
 *  Errors: ERR_INVALID_ARGUMENT (NULL loss/features/value, labels and mask both given,
 *  tensor of another context), ERR_SHAPE (rank < 3, B or V or D zero, labels not [B], mask
 *  not [B, B]), ERR_DTYPE (features or mask not float32, labels not int32/int64),
 *  ERR_NON_FINITE (NaN/Inf in features or mask; the message gives the first index),
 *  ERR_OUT_OF_MEMORY, ERR_DEVICE. On error the previous gradient is discarded. */
SUPCON_API supcon_status supcon_loss_forward(supcon_loss *loss, const supcon_tensor *features,
                                             const supcon_tensor *labels,
                                             const supcon_tensor *mask, float *value);

/** d value / d features of the last successful supcon_loss_forward, written over
 *  grad_features, which must have the shape and dtype of those features.
 *  Errors: ERR_INVALID_ARGUMENT (NULL), ERR_STATE (no successful forward before it, the
 *  last forward was of the pair form, or forward_only), ERR_SHAPE, ERR_DTYPE. */
SUPCON_API supcon_status supcon_loss_backward(supcon_loss *loss, supcon_tensor *grad_features);

/** General form for a feature queue (MoCo-style): anchors [N_A, D] with labels [N_A] against
 *  a contrast set [N_C, D] with labels [N_C]; positives are entries with equal labels.
 *  When anchors and contrast are the same tensor, anchor a is excluded at contrast a
 *  (self-contrast); otherwise nothing is excluded. contrast_mode does not apply.
 *  The loss is -(tau/tau_b) times the mean over the N_A anchors, as in the batch form.
 *  Errors as supcon_loss_forward, plus ERR_INVALID_ARGUMENT when a label tensor is NULL
 *  and ERR_SHAPE when the two D differ. */
SUPCON_API supcon_status supcon_loss_forward_pair(supcon_loss *loss,
                                                  const supcon_tensor *anchors,
                                                  const supcon_tensor *anchor_labels,
                                                  const supcon_tensor *contrast,
                                                  const supcon_tensor *contrast_labels,
                                                  float *value);

/** Gradients of the last supcon_loss_forward_pair: grad_anchors [N_A, D] and
 *  grad_contrast [N_C, D], either may be NULL (e.g. a queue that gets no gradient).
 *  When anchors and contrast were the same tensor, each non-NULL output receives the whole
 *  gradient with respect to that tensor. Errors: ERR_STATE (no pair forward before it, or
 *  forward_only), ERR_SHAPE, ERR_DTYPE, ERR_INVALID_ARGUMENT (loss NULL). */
SUPCON_API supcon_status supcon_loss_backward_pair(supcon_loss *loss,
                                                   supcon_tensor *grad_anchors,
                                                   supcon_tensor *grad_contrast);

/** Free the loss and its workspaces. NULL is a no-op. */
SUPCON_API void supcon_loss_free(supcon_loss *loss);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_LOSS_H */
