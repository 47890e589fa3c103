/* Forward and backward through the planned model, layer by layer through the backend table,
 * plus the cross-entropy on the classifier's logits. Argument checks are in model.c's
 * public wrappers; here every pointer is already the arena's or the caller's checked tensor. */
#include <string.h>

#include <stdio.h>

#include "error.h"
#include "model_internal.h"
#include "profile.h"

/* One backend call: timed under `what` when profiling is on, its failure reported as `what`. */
#define SC_CALL_AS(m, what, prof_name, call)                                                           \
    do {                                                                                               \
        const double t_ = sc_prof_begin((m)->ctx);                                                     \
        supcon_status s_ = (call);                                                                     \
        sc_prof_end((m)->ctx, prof_name, t_);                                                          \
        if (s_ != SUPCON_OK) return sc_backend_error((m)->ctx, s_, what);                              \
    } while (0)
#define SC_CALL(m, what, call) SC_CALL_AS(m, what, what, call)

/* A convolution's profile name: the call and the layer's shape (the batch left out). */
static const char *sc_conv_prof_name(const supcon_model *m, char *buf, size_t len, const char *what,
                                     const supcon_conv_desc *d) {
    if (!sc_prof_on(m->ctx)) return what;
    snprintf(buf, len, "%s %lldx%lldx%lld -> %lld k%lld s%lld", what, (long long)d->c_in, (long long)d->h,
             (long long)d->w, (long long)d->c_out, (long long)d->kh, (long long)d->stride_h);
    return buf;
}

#define A(off) (m->arena + (off))
#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

/* ---- forward ------------------------------------------------------------------------------ */

static supcon_status sc_conv_fwd(supcon_model *m, const sc_conv_layer *cv, float *y, const float *x) {
    char name[SC_PROF_NAME_LEN];
    SC_CALL_AS(m, "conv2d forward", sc_conv_prof_name(m, name, sizeof name, "conv2d forward", &cv->d),
               m->ctx->ops->conv2d_forward(m->ctx->state, &cv->d, y, x, P(cv->weight), m->ws, m->ws_bytes));
    return SUPCON_OK;
}

/* y = BN(x), or with relu set y = relu(BN(x) + residual) (residual may be NULL): one fused
 * call where the backend has it, else the batch norm and then the element-wise layer. */
static supcon_status sc_bn_fwd(supcon_model *m, const sc_bn_layer *bn, float *y, const float *x, int64_t hw,
                               int train, int relu, const float *residual) {
    const supcon_backend_ops *o = m->ctx->ops;
    float *mean = A(bn->save), *invstd = A(bn->save) + bn->c;
    const int64_t n = m->plan_n;
    if (relu && train && o->batchnorm_relu_forward_train) {
        SC_CALL(m, "batchnorm+relu forward",
                o->batchnorm_relu_forward_train(m->ctx->state, y, mean, invstd, m->fbuf + bn->rmean,
                                                m->fbuf + bn->rvar, m->ibuf + bn->nbt, x, P(bn->gamma), P(bn->beta),
                                                residual, n, bn->c, hw, m->cfg.bn_momentum, m->cfg.bn_eps));
        return SUPCON_OK;
    }
    if (relu && !train && o->batchnorm_relu_forward_infer) {
        SC_CALL(m, "batchnorm+relu forward",
                o->batchnorm_relu_forward_infer(m->ctx->state, y, mean, invstd, x, P(bn->gamma), P(bn->beta),
                                                m->fbuf + bn->rmean, m->fbuf + bn->rvar, residual, n, bn->c, hw,
                                                m->cfg.bn_eps));
        return SUPCON_OK;
    }
    if (train)
        SC_CALL(m, "batchnorm forward",
                o->batchnorm_forward_train(m->ctx->state, y, mean, invstd, m->fbuf + bn->rmean, m->fbuf + bn->rvar,
                                           m->ibuf + bn->nbt, x, P(bn->gamma), P(bn->beta), n, bn->c, hw,
                                           m->cfg.bn_momentum, m->cfg.bn_eps));
    else
        SC_CALL(m, "batchnorm forward",
                o->batchnorm_forward_infer(m->ctx->state, y, mean, invstd, x, P(bn->gamma), P(bn->beta),
                                           m->fbuf + bn->rmean, m->fbuf + bn->rvar, n, bn->c, hw, m->cfg.bn_eps));
    if (relu && residual)
        SC_CALL(m, "add+relu forward", o->add_relu_forward(m->ctx->state, y, y, residual, n * bn->c * hw));
    else if (relu)
        SC_CALL(m, "relu forward", o->relu_forward(m->ctx->state, y, y, n * bn->c * hw));
    return SUPCON_OK;
}

static int64_t sc_out_hw(const sc_conv_layer *cv) { return supcon_conv_out_h(&cv->d) * supcon_conv_out_w(&cv->d); }

/* The projection shortcut: its convolution and batch norm, into sc_bn_out. */
static supcon_status sc_shortcut_fwd(supcon_model *m, sc_block *b, const float *x, int train) {
    supcon_status s = sc_conv_fwd(m, &b->sconv, A(b->sc_conv_out), x);
    if (s != SUPCON_OK) return s;
    return sc_bn_fwd(m, &b->sbn, A(b->sc_bn_out), A(b->sc_conv_out), sc_out_hw(&b->sconv), train, 0, NULL);
}

/* With the fused batch norm the shortcut comes first, so the last batch norm adds it and
 * applies the block's ReLU in its one pass: out = relu(bn_last(conv_last(...)) + shortcut).
 * Without it, the separate layers in the reference's order: the last batch norm, then the
 * shortcut, then add+relu (the lean inference layout of plan.c lets the shortcut's
 * convolution reuse the last convolution's buffer, so that order is required). */
static supcon_status sc_block_fwd(supcon_model *m, sc_block *b, const float *x, int train) {
    const supcon_backend_ops *o = m->ctx->ops;
    const int fused = train ? o->batchnorm_relu_forward_train != NULL : o->batchnorm_relu_forward_infer != NULL;
    const float *shortcut = b->proj ? A(b->sc_bn_out) : x;
    supcon_status s;
    if (b->proj && fused && (s = sc_shortcut_fwd(m, b, x, train)) != SUPCON_OK) return s;
    const float *in = x;
    for (int j = 0; j < b->nconv; j++) {
        const int last = j == b->nconv - 1;
        float *y = last ? A(b->out) : A(b->relu_out[j]);
        if ((s = sc_conv_fwd(m, &b->conv[j], A(b->conv_out[j]), in)) != SUPCON_OK) return s;
        /* the last one's ReLU, with the shortcut, waits for the shortcut when not fused */
        const int relu = !last || fused;
        if ((s = sc_bn_fwd(m, &b->bn[j], y, A(b->conv_out[j]), sc_out_hw(&b->conv[j]), train, relu,
                           last && fused ? shortcut : NULL)) != SUPCON_OK)
            return s;
        in = y;
    }
    if (fused) return SUPCON_OK;
    if (b->proj && (s = sc_shortcut_fwd(m, b, x, train)) != SUPCON_OK) return s;
    SC_CALL(m, "add+relu forward", o->add_relu_forward(m->ctx->state, A(b->out), A(b->out), shortcut, b->out_numel));
    return SUPCON_OK;
}

/* Stem, blocks and the average pool into feats. */
static supcon_status sc_encoder_fwd(supcon_model *m, const float *x, int train) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int64_t n = m->plan_n, hw0 = m->plan_h * m->plan_w;
    supcon_status s;
    if ((s = sc_conv_fwd(m, &m->stem_conv, A(m->stem_conv_out), x)) != SUPCON_OK) return s;
    if ((s = sc_bn_fwd(m, &m->stem_bn, A(m->stem_relu_out), A(m->stem_conv_out), hw0, train, 1, NULL)) != SUPCON_OK)
        return s;
    const float *cur = A(m->stem_relu_out);
    for (int bi = 0; bi < m->nblocks; bi++) {
        if ((s = sc_block_fwd(m, &m->blocks[bi], cur, train)) != SUPCON_OK) return s;
        cur = A(m->blocks[bi].out);
    }
    SC_CALL(m, "average pool", o->avgpool_forward(st, A(m->feats), cur, n, m->feat, m->final_h * m->final_w));
    return SUPCON_OK;
}

supcon_status sc_model_run_forward(supcon_model *m, const float *x) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int train = sc_model_encoder_train(m);
    const int64_t n = m->plan_n, d = m->feat;
    supcon_status s = sc_encoder_fwd(m, x, train);
    if (s != SUPCON_OK) return s;

    if (m->cfg.head != SUPCON_HEAD_NONE) {
        const float *hin = A(m->feats);
        if (m->cfg.head == SUPCON_HEAD_MLP) {
            SC_CALL(m, "head.0 forward",
                    o->linear_forward(st, A(m->h1), hin, P(m->head0.weight), P(m->head0.bias), n, d, d));
            SC_CALL(m, "head relu", o->relu_forward(st, A(m->h1), A(m->h1), n * d));
            hin = A(m->h1);
        }
        SC_CALL(m, "head forward",
                o->linear_forward(st, A(m->h2), hin, P(m->head2.weight), P(m->head2.bias), n, d, m->head2.out));
        SC_CALL(m, "l2norm forward", o->l2norm_forward(st, A(m->z), A(m->norms), A(m->h2), n, m->head2.out));
    }
    if (m->cfg.num_classes > 0)
        SC_CALL(m, "fc forward",
                o->linear_forward(st, A(m->logits), A(m->feats), P(m->fc.weight), P(m->fc.bias), n, d, m->fc.out));
    m->fwd_enc_train = train;
    return SUPCON_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */

/* (ReLU,) BN then conv backward: dy in `dy`, the BN's input gradient into `tmp`, the conv's
 * input gradient into dx (= or += by accumulate; dx NULL: not wanted). relu_y: the output of
 * a ReLU after the BN (its mask applies to dy, which may then be changed in place), or NULL. */
static supcon_status sc_conv_bn_bwd(supcon_model *m, const sc_conv_layer *cv, const sc_bn_layer *bn,
                                    const float *conv_in, const float *conv_out, float *tmp, float *dy,
                                    const float *relu_y, float *dx, int accumulate, int pgrads) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int64_t hw = sc_out_hw(cv);
    float *dgamma = pgrads ? G(bn->gamma) : NULL, *dbeta = pgrads ? G(bn->beta) : NULL;
    if (relu_y && o->batchnorm_relu_backward) {
        SC_CALL(m, "batchnorm+relu backward",
                o->batchnorm_relu_backward(st, tmp, dgamma, dbeta, dy, relu_y, conv_out, P(bn->gamma), A(bn->save),
                                           A(bn->save) + bn->c, m->plan_n, bn->c, hw, m->fwd_enc_train));
    } else {
        if (relu_y)
            SC_CALL(m, "relu backward", o->relu_backward(st, dy, dy, relu_y, m->plan_n * bn->c * hw));
        SC_CALL(m, "batchnorm backward",
                o->batchnorm_backward(st, tmp, dgamma, dbeta, dy, conv_out, P(bn->gamma), A(bn->save),
                                      A(bn->save) + bn->c, m->plan_n, bn->c, hw, m->fwd_enc_train));
    }
    char name[SC_PROF_NAME_LEN];
    if (pgrads)
        SC_CALL_AS(m, "conv2d backward (filter)",
                   sc_conv_prof_name(m, name, sizeof name, "conv2d backward (filter)", &cv->d),
                   o->conv2d_backward_filter(st, &cv->d, G(cv->weight), tmp, conv_in, m->ws, m->ws_bytes));
    if (dx)
        SC_CALL_AS(m, "conv2d backward (data)",
                   sc_conv_prof_name(m, name, sizeof name, "conv2d backward (data)", &cv->d),
                   o->conv2d_backward_data(st, &cv->d, dx, tmp, P(cv->weight), accumulate, m->ws, m->ws_bytes));
    return SUPCON_OK;
}

/* The block's output gradient is in buffer *a; on return *a names the buffer holding the
 * gradient of the block's input. */
static supcon_status sc_block_bwd(supcon_model *m, sc_block *b, const float *x, int *a, int pgrads) {
    const supcon_backend_ops *o = m->ctx->ops;
    float *g[3] = {A(m->gbuf[0]), A(m->gbuf[1]), A(m->gbuf[2])};
    const int ia = *a, ib = (ia + 1) % 3, ic = (ia + 2) % 3;
    supcon_status s;
    SC_CALL(m, "relu backward", o->relu_backward(m->ctx->state, g[ia], g[ia], A(b->out), b->out_numel));
    int target, pbuf, qbuf;
    if (b->proj) {
        s = sc_conv_bn_bwd(m, &b->sconv, &b->sbn, x, A(b->sc_conv_out), g[ib], g[ia], NULL, g[ic], 0, pgrads);
        if (s != SUPCON_OK) return s;
        target = ic, pbuf = ib, qbuf = ia; /* g[ia] is free once the shortcut has read it */
    } else {
        target = ia, pbuf = ib, qbuf = ic; /* g[ia] is the identity path's gradient */
    }
    int cur = ia;
    for (int j = b->nconv - 1; j >= 0; j--) {
        /* the ReLU between this conv's BN and the next conv, undone with the BN */
        const float *relu_y = j < b->nconv - 1 ? A(b->relu_out[j]) : NULL;
        const float *in = j == 0 ? x : A(b->relu_out[j - 1]);
        float *dx = j == 0 ? g[target] : g[qbuf];
        s = sc_conv_bn_bwd(m, &b->conv[j], &b->bn[j], in, A(b->conv_out[j]), g[pbuf], g[cur], relu_y, dx, j == 0,
                           pgrads);
        if (s != SUPCON_OK) return s;
        cur = qbuf;
    }
    *a = target;
    return SUPCON_OK;
}

/* Encoder backward from d features (in df) to the input (grad_input may be NULL). */
static supcon_status sc_encoder_bwd(supcon_model *m, const float *x, float *grad_input, int pgrads) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int64_t n = m->plan_n;
    int a = 0;
    SC_CALL(m, "average pool backward",
            o->avgpool_backward(st, A(m->gbuf[0]), A(m->df), n, m->feat, m->final_h * m->final_w, 0));
    for (int bi = m->nblocks - 1; bi >= 0; bi--) {
        const float *bx = bi == 0 ? A(m->stem_relu_out) : A(m->blocks[bi - 1].out);
        supcon_status s = sc_block_bwd(m, &m->blocks[bi], bx, &a, pgrads);
        if (s != SUPCON_OK) return s;
    }
    float *ga = A(m->gbuf[a]), *gb = A(m->gbuf[(a + 1) % 3]);
    return sc_conv_bn_bwd(m, &m->stem_conv, &m->stem_bn, x, A(m->stem_conv_out), gb, ga, A(m->stem_relu_out),
                          grad_input, 0, pgrads);
}

supcon_status sc_model_run_backward(supcon_model *m, const float *x, const float *dz, const float *dlogits,
                                    float *grad_input) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int64_t n = m->plan_n, d = m->feat;
    const int enc_grads = !m->cfg.freeze_encoder;
    const int need_df = enc_grads || grad_input;
    int have_df = 0;
    if (dz) {
        const int64_t f = m->head2.out;
        SC_CALL(m, "l2norm backward", o->l2norm_backward(st, A(m->dh2), dz, A(m->h2), A(m->norms), n, f));
        if (m->cfg.head == SUPCON_HEAD_MLP) {
            SC_CALL(m, "head.2 backward",
                    o->linear_backward(st, A(m->dr1), G(m->head2.weight), G(m->head2.bias), A(m->dh2), A(m->h1),
                                       P(m->head2.weight), n, d, f));
            SC_CALL(m, "head relu backward", o->relu_backward(st, A(m->dr1), A(m->dr1), A(m->h1), n * d));
            SC_CALL(m, "head.0 backward",
                    o->linear_backward(st, need_df ? A(m->df) : NULL, G(m->head0.weight), G(m->head0.bias),
                                       A(m->dr1), A(m->feats), P(m->head0.weight), n, d, d));
        } else {
            SC_CALL(m, "head backward",
                    o->linear_backward(st, need_df ? A(m->df) : NULL, G(m->head2.weight), G(m->head2.bias),
                                       A(m->dh2), A(m->feats), P(m->head2.weight), n, d, f));
        }
        have_df = need_df;
    }
    if (dlogits) {
        float *dst = have_df ? A(m->df2) : A(m->df);
        SC_CALL(m, "fc backward",
                o->linear_backward(st, need_df ? dst : NULL, G(m->fc.weight), G(m->fc.bias), dlogits, A(m->feats),
                                   P(m->fc.weight), n, d, m->fc.out));
        if (have_df) SC_CALL(m, "accumulate", o->accumulate(st, A(m->df), A(m->df2), n * d));
        have_df = need_df;
    }
    if (!have_df) return SUPCON_OK;
    if (m->plan_lean) {
        /* The inference layout kept no activations: lay out the full arena (keeping the input
         * and the head's tensors) and run the encoder again, in inference mode as before,
         * which gives the same activations and leaves the running statistics alone. */
        supcon_status s = sc_model_plan_full(m, "supcon_model_backward");
        if (s != SUPCON_OK) return s;
        x = A(m->input); /* the arena may have moved */
        if ((s = sc_encoder_fwd(m, x, m->fwd_enc_train)) != SUPCON_OK) return s;
    }
    return sc_encoder_bwd(m, x, grad_input, enc_grads);
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

supcon_status sc_model_run_xent(supcon_model *m, const int64_t *host_labels, float *loss, int64_t *top1,
                                int64_t *top5, float *grad_logits) {
    const supcon_backend_ops *o = m->ctx->ops;
    void *st = m->ctx->state;
    const int64_t n = m->fwd_n, k = m->fc.out;
    int64_t *labels = (int64_t *)A(m->labels);
    SC_CALL(m, "uploading labels", o->upload(st, labels, host_labels, (size_t)n * sizeof(int64_t)));
    double value = 0.0;
    int64_t t1 = 0, t5 = 0;
    SC_CALL_AS(m, "supcon_model_cross_entropy", "cross-entropy forward",
               o->xent_forward(st, &value, &t1, &t5, A(m->probs), A(m->logits), labels, n, k));
    if (grad_logits)
        SC_CALL_AS(m, "supcon_model_cross_entropy", "cross-entropy backward",
                   o->xent_backward(st, grad_logits, A(m->probs), labels, n, k, 1.0f));
    *loss = (float)value;
    if (top1) *top1 = t1;
    if (top5) *top5 = t5;
    return SUPCON_OK;
}
