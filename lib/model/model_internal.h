/* The model's private layout, shared by the files of lib/model: the layer descriptions (offsets into
 * the flat parameter, buffer and activation memory), the parameter table and the plan of the
 * activation arena for one batch shape. Backend-independent: all compute goes through
 * ctx->ops. */
#ifndef SUPCON_LIB_MODEL_INTERNAL_H
#define SUPCON_LIB_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "context_internal.h"
#include "supcon/model.h"
#include "tensor_internal.h"

/* Arena offsets are in floats, each tensor aligned to 16 floats (64 bytes). */
#define SC_MODEL_ALIGN 16

typedef struct sc_conv_layer {
    int64_t c_in, c_out, k, stride, pad;
    int64_t weight;       /* offset in the flat parameters */
    supcon_conv_desc d;   /* for the planned batch shape */
} sc_conv_layer;

typedef struct sc_bn_layer {
    int64_t c;
    int64_t gamma, beta;  /* offsets in the flat parameters */
    int64_t rmean, rvar;  /* offsets in the float buffers */
    int64_t nbt;          /* index in the int64 buffers (num_batches_tracked) */
    int64_t save;         /* arena: save_mean (c) then save_invstd (c) */
} sc_bn_layer;

/* A residual block: nconv convolutions, each followed by BN (ReLU after all but the last),
 * the shortcut, the join and its ReLU. Arena tensors per planned shape:
 *   conv_out[j] (conv j's output, BN j's input), relu_out[j] (j < nconv - 1: BN j's output
 *   after the in-place ReLU, conv j+1's input), out (BN last, then add + ReLU in place),
 *   sc_conv_out / sc_bn_out (projection shortcut only). */
typedef struct sc_block {
    int nconv; /* 2 basic, 3 bottleneck */
    sc_conv_layer conv[3];
    sc_bn_layer bn[3];
    int proj;
    sc_conv_layer sconv;
    sc_bn_layer sbn;
    int64_t conv_out[3], relu_out[2], out, sc_conv_out, sc_bn_out; /* arena offsets */
    int64_t out_numel;
} sc_block;

typedef struct sc_linear {
    int64_t in, out;
    int64_t weight, bias; /* offsets in the flat parameters */
} sc_linear;

/* An entry of the table with where its memory is. */
typedef struct sc_entry {
    supcon_param_info info;
    supcon_tensor value_view, grad_view;
    int64_t buf_offset; /* BUFFER: offset in the float buffers, or the int64 index */
} sc_entry;

struct supcon_model {
    supcon_context *ctx;
    supcon_model_config cfg;
    int64_t feat;     /* encoder output dimension d */
    int training;

    /* Architecture. */
    sc_conv_layer stem_conv;
    sc_bn_layer stem_bn;
    sc_block *blocks;
    int nblocks;
    int64_t stem_conv_out, stem_relu_out; /* arena */
    sc_linear head0, head2, fc;          /* head0 only for MLP, head2 is the linear head */

    /* Parameter table and flat memory. */
    sc_entry *entries;
    int64_t nentries, entries_cap;
    char **names;
    int64_t nparams;   /* floats of all PARAMETER entries */
    int64_t nenc;      /* of which the encoder's (a prefix) */
    int64_t nfbuf;     /* floats of running statistics */
    int64_t nibuf;     /* num_batches_tracked counters */
    float *params, *grads, *fbuf;
    int64_t *ibuf;
    supcon_tensor flat_params, flat_grads;

    /* Plan for one batch shape; the arena only grows. */
    int64_t plan_n, plan_h, plan_w; /* 0 before any plan */
    int plan_lean;                  /* the encoder's activations rotate (inference layout) */
    int64_t final_h, final_w;       /* spatial size of the last stage */
    float *arena;
    size_t arena_bytes;
    void *ws;
    size_t ws_bytes;
    int64_t *host_labels;           /* host scratch for label conversion, plan_n entries */
    int64_t host_labels_cap;
    int64_t gbuf[3], gbuf_numel;    /* activation-gradient buffers */
    int64_t input, feats, h1, h2, z, norms, dh2, dr1, df, df2, logits, probs, labels; /* arena */

    /* The last forward. */
    int have_forward;
    int fwd_enc_train; /* encoder BN ran in training mode */
    int64_t fwd_n;
    supcon_tensor out_features, out_head, out_logits;
};

/* build.c */
supcon_status sc_model_build(supcon_model *m);
void sc_model_refresh_frozen(supcon_model *m);
/* plan.c: lay out the arena for (n, h, w), growing it if needed; updates the conv
 * descriptors and output views. With the encoder in inference mode the layout is lean (its
 * activations rotate through four buffers, no gradient buffers). */
supcon_status sc_model_plan(supcon_model *m, int64_t n, int64_t h, int64_t w, const char *fn);
/* From the lean layout to the full one for the same shape, keeping the input copy, the
 * head's tensors and the last forward (the encoder's activations must then be recomputed). */
supcon_status sc_model_plan_full(supcon_model *m, const char *fn);
void sc_model_release_plan(supcon_model *m);
/* The spatial size after the stem and the four stages: h -> ceil(h / 8) for CIFAR strides. */
int64_t sc_model_final_extent(const supcon_model *m, int64_t h);
/* run.c: the passes over the planned shape (plan_n rows); arguments already checked. */
supcon_status sc_model_run_forward(supcon_model *m, const float *x);
/* dz: d head output or NULL; dlogits or NULL; x the forward's input. */
supcon_status sc_model_run_backward(supcon_model *m, const float *x, const float *dz, const float *dlogits,
                                    float *grad_input);
supcon_status sc_model_run_xent(supcon_model *m, const int64_t *host_labels, float *loss, int64_t *top1,
                                int64_t *top5, float *grad_logits);
/* Zeroes backend memory through a small bounce buffer, for any backend. */
supcon_status sc_model_fill_zero(supcon_model *m, void *dst, size_t bytes);

static inline int sc_model_encoder_train(const supcon_model *m) {
    return m->training && !m->cfg.freeze_encoder;
}

#endif
