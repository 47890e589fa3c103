/* libsupcon optimisation: SGD exactly as torch.optim.SGD (momentum buffer started from the
 * first gradient, coupled weight decay, optional Nesterov) over groups of parameters, and the
 * reference programs' learning-rate schedules (cosine, step decay, linear warm-up) as pure
 * functions. Other optimisers (LARS, Adam) are not here. See docs/optim.md. */
#ifndef SUPCON_OPTIM_H
#define SUPCON_OPTIM_H

#include "core.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The three programs of the reference, whose defaults differ (SPEC §3). */
typedef enum supcon_program {
    SUPCON_PROGRAM_CONTRASTIVE = 0,   /* main_supcon.py: SupCon or SimCLR pre-training */
    SUPCON_PROGRAM_CROSS_ENTROPY = 1, /* main_ce.py: the cross-entropy baseline */
    SUPCON_PROGRAM_LINEAR = 2         /* main_linear.py: a classifier on a frozen encoder */
} supcon_program;

/* ==== Learning-rate schedules ======================================================== */

#define SUPCON_LR_MAX_DECAY_EPOCHS 16

/** A schedule as the reference programs define it. Epochs count from 1; the rate of epoch e
 *  is set at its start; warm-up then overrides it per iteration during epochs
 *  1..warm_epochs. */
typedef struct supcon_lr_config {
    size_t struct_size;   /* sizeof(supcon_lr_config): set by the _default functions */
    double learning_rate; /* base rate, >= 0. Default 0.05 */
    int epochs;           /* E >= 1, the cosine period. Default 1000 */
    int cosine;           /* 1: cosine annealing; 0: step decay. Default 0 */
    double decay_rate;    /* r >= 0: step factor, and eta_min = lr * r^3. Default 0.1 */
    int num_decay_epochs; /* 0..SUPCON_LR_MAX_DECAY_EPOCHS milestones. Default 3 */
    int decay_epochs[SUPCON_LR_MAX_DECAY_EPOCHS]; /* step milestones. Default 700,800,900 */
    int warm;             /* 1: linear warm-up (see supcon_lr_should_warm). Default 0 */
    int warm_epochs;      /* warm-up length in epochs, >= 1. Default 10 */
    double warmup_from;   /* rate at the first iteration of warm-up. Default 0.01 */
} supcon_lr_config;

/** Defaults of the contrastive program (lr 0.05, 1000 epochs, milestones 700/800/900,
 *  rate 0.1, step decay, no warm-up). */
SUPCON_API supcon_lr_config supcon_lr_config_default(void);
/** Defaults of a program: CONTRASTIVE as above; CROSS_ENTROPY lr 0.2, 500 epochs,
 *  350/400/450, rate 0.1; LINEAR lr 0.1, 100 epochs, 60/75/90, rate 0.2. An unknown
 *  program gives the CONTRASTIVE defaults. */
SUPCON_API supcon_lr_config supcon_lr_config_for_program(supcon_program program);

/** Whether a run warms up: the --warm flag, or automatically when batch_size > 256 in the
 *  CONTRASTIVE and CROSS_ENTROPY programs (not LINEAR), as the reference decides. */
SUPCON_API int supcon_lr_should_warm(supcon_program program, int64_t batch_size, int warm_flag);

/** Rate of epoch `epoch` (>= 0) without warm-up (the reference's adjust_learning_rate):
 *  cosine: eta_min + (lr - eta_min) * (1 + cos(pi * epoch / E)) / 2, eta_min = lr * r^3;
 *  step: lr * r^(number of milestones m with epoch > m). Computed in double in the same
 *  order as the Python reference, so the values agree bit for bit.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, bad struct_size or field, epoch < 0), recorded for
 *  supcon_context_last_error(NULL). */
SUPCON_API supcon_status supcon_lr_epoch(const supcon_lr_config *cfg, int epoch, double *lr);

/** Where warm-up ends: the cosine rate at epoch warm_epochs with cosine, else
 *  learning_rate. Errors as supcon_lr_epoch. */
SUPCON_API supcon_status supcon_lr_warmup_to(const supcon_lr_config *cfg, double *lr);

/** Rate of iteration `iter` (0-based, < iters_per_epoch) of epoch `epoch` (>= 1): during
 *  warm-up (warm and epoch <= warm_epochs) warmup_from + p * (warmup_to - warmup_from) with
 *  p = (iter + (epoch - 1) * iters_per_epoch) / (warm_epochs * iters_per_epoch); otherwise
 *  supcon_lr_epoch. Errors as supcon_lr_epoch, also for iter or iters_per_epoch out of
 *  range. */
SUPCON_API supcon_status supcon_lr_iteration(const supcon_lr_config *cfg, int epoch, int64_t iter,
                                             int64_t iters_per_epoch, double *lr);

/* ==== SGD ============================================================================= */

/** Hyper-parameters of one parameter group, as torch.optim.SGD's. They reach the update
 *  rounded to float, as PyTorch's kernels receive them. */
typedef struct supcon_sgd_config {
    size_t struct_size;   /* sizeof(supcon_sgd_config): set by the _default functions */
    double learning_rate; /* >= 0. Default 0.05 */
    double momentum;      /* >= 0. Default 0.9 */
    double weight_decay;  /* >= 0, coupled (added to the gradient). Default 1e-4 */
    double dampening;     /* applied to the gradient after the first step. Default 0 */
    int nesterov;         /* 1: Nesterov momentum (needs momentum > 0, dampening 0). Default 0 */
} supcon_sgd_config;

/** Defaults of the contrastive program: lr 0.05, momentum 0.9, weight decay 1e-4. */
SUPCON_API supcon_sgd_config supcon_sgd_config_default(void);
/** A program's defaults: CONTRASTIVE as above; CROSS_ENTROPY lr 0.2, momentum 0.9, wd 1e-4;
 *  LINEAR lr 0.1, momentum 0.9, wd 0. */
SUPCON_API supcon_sgd_config supcon_sgd_config_for_program(supcon_program program);

/** An optimiser over named float32 parameters, each with a gradient tensor of the same
 *  shape, grouped like torch.optim.SGD's param_groups. It owns one flat momentum buffer in
 *  the context's memory, allocated at the first step (or state load), never per step. */
typedef struct supcon_sgd supcon_sgd;

/** Create an optimiser whose group 0 has the hyper-parameters cfg (NULL: defaults).
 *  Errors: ERR_INVALID_ARGUMENT (NULL ctx/out, struct_size, a negative or non-finite
 *  value, nesterov without momentum or with dampening), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_sgd_create(supcon_context *ctx, const supcon_sgd_config *cfg,
                                           supcon_sgd **out);
/** Free the optimiser and its momentum buffer. NULL is a no-op. */
SUPCON_API void supcon_sgd_free(supcon_sgd *opt);

/** Add a parameter group with its own hyper-parameters; *group receives its index (1, 2...).
 *  Errors as supcon_sgd_create, ERR_STATE after the first step or state load. */
SUPCON_API supcon_status supcon_sgd_add_group(supcon_sgd *opt, const supcon_sgd_config *cfg,
                                              int *group);
SUPCON_API int supcon_sgd_group_count(const supcon_sgd *opt);

/** Flags of supcon_sgd_add_param and supcon_sgd_add_model. */
#define SUPCON_SGD_NO_WEIGHT_DECAY 1u    /* no weight decay for the parameter(s) */
#define SUPCON_SGD_NO_WEIGHT_DECAY_1D 2u /* none for those of rank < 2 (biases, BN weights) */

/** Add parameter `param` (float32, updated in place) with its gradient `grad` (float32, same
 *  shape, read by each step) to group `group`. Both tensors stay the caller's and must
 *  outlive the optimiser. `name` (copied; non-empty) names the parameter in messages and
 *  in saved state. Parameters laid out back to back in one flat buffer, with their gradients
 *  likewise in another, are updated as one run (see docs/optim.md).
 *  Errors: ERR_INVALID_ARGUMENT (NULL, empty name, name already used, group out of range,
 *  unknown flag, tensor of another context, param memory overlapping another parameter's
 *  or a gradient's), ERR_DTYPE (not float32), ERR_SHAPE (grad's shape differs), ERR_STATE
 *  (after the first step or state load), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_sgd_add_param(supcon_sgd *opt, int group, const char *name,
                                              supcon_tensor *param, const supcon_tensor *grad,
                                              unsigned flags);

typedef struct supcon_model supcon_model;

/** Add every trainable parameter of a model (those with a gradient: a frozen encoder's are
 *  left out) whose name starts with `prefix` (NULL or "": all), in the model's table order,
 *  to `group`, under the model's names. The model's flat layout makes them one run. Use
 *  prefix "fc." for the classifier alone in linear evaluation. All or nothing.
 *  Errors: those of supcon_sgd_add_param; ERR_INVALID_ARGUMENT when nothing matches. */
SUPCON_API supcon_status supcon_sgd_add_model(supcon_sgd *opt, int group, supcon_model *model,
                                              const char *prefix, unsigned flags);

/** One step of every parameter, from the gradients as they are now (they are not zeroed).
 *  A parameter without a momentum buffer yet (first step, or none in loaded state) starts
 *  it from this step's gradient, as PyTorch does.
 *  Errors: ERR_UNSUPPORTED (the backend has no SGD kernel), ERR_OUT_OF_MEMORY (first step),
 *  ERR_DEVICE. */
SUPCON_API supcon_status supcon_sgd_step(supcon_sgd *opt);

/** Set the rate of every group (what the reference's schedule does), or of one group.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, negative or non-finite lr, group out of range). */
SUPCON_API supcon_status supcon_sgd_set_learning_rate(supcon_sgd *opt, double lr);
SUPCON_API supcon_status supcon_sgd_set_group_learning_rate(supcon_sgd *opt, int group, double lr);
/** Rate of a group, or -1 when opt is NULL or group is out of range. */
SUPCON_API double supcon_sgd_learning_rate(const supcon_sgd *opt, int group);

/** Steps taken (or restored by state load); 0 for NULL. */
SUPCON_API int64_t supcon_sgd_steps(const supcon_sgd *opt);
SUPCON_API int64_t supcon_sgd_param_count(const supcon_sgd *opt);
/** Name of parameter i, or NULL when out of range. */
SUPCON_API const char *supcon_sgd_param_name(const supcon_sgd *opt, int64_t i);

/** Copy parameter i's momentum buffer (float32, the parameter's element count) into host
 *  memory dst of exactly `bytes` bytes. Errors: ERR_INVALID_ARGUMENT (NULL, i out of range,
 *  wrong size), ERR_STATE (no buffer yet: no step, or momentum 0 in its group). */
SUPCON_API supcon_status supcon_sgd_get_momentum(const supcon_sgd *opt, int64_t i, float *dst,
                                                 size_t bytes);

/* ---- State in checkpoints (see checkpoint.h) ------------------------------------------- */
typedef struct supcon_safetensors supcon_safetensors;

/** Add the optimiser's state to a tensor file: an F32 entry
 *  "optimizer.momentum_buffer.<param name>" per parameter that has a buffer, and metadata
 *  "optimizer.steps", "optimizer.groups" and per group "optimizer.group.<g>.lr" and its
 *  momentum, weight decay, dampening and Nesterov setting (decimal, round-trip exact).
 *  Errors: those of supcon_safetensors_add (a name already present), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_sgd_save_state(const supcon_sgd *opt, supcon_safetensors *file);

/** Restore what supcon_sgd_save_state wrote: buffers by parameter name (names with
 *  "module." components match), steps and each group's rate. Strict: every parameter of a
 *  group with momentum must have a buffer once steps > 0, every buffer entry must name a
 *  parameter, shapes and dtypes must match, the group count must equal the optimiser's;
 *  nothing changes unless all checks pass. Afterwards the parameter list is fixed.
 *  Errors: ERR_INVALID_ARGUMENT (NULL), ERR_STATE (the optimiser cannot take state now),
 *  ERR_FORMAT (missing, extra or malformed entries or metadata, each named), ERR_SHAPE,
 *  ERR_DTYPE, ERR_OUT_OF_MEMORY, ERR_DEVICE. */
SUPCON_API supcon_status supcon_sgd_load_state(supcon_sgd *opt, const supcon_safetensors *file);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_OPTIM_H */
