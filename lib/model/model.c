/* The public model API: creation, modes, planning, the checked forward/backward wrappers,
 * the parameter table accessors. The network itself is built in build.c and run in run.c. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_internal.h"

static int sc_has_layers(const supcon_backend_ops *o) {
    return o->conv2d_workspace_bytes && o->conv2d_forward && o->conv2d_backward_data && o->conv2d_backward_filter &&
           o->batchnorm_forward_train && o->batchnorm_forward_infer && o->batchnorm_backward && o->relu_forward &&
           o->relu_backward && o->add_relu_forward && o->accumulate && o->avgpool_forward && o->avgpool_backward &&
           o->linear_forward && o->linear_backward && o->l2norm_forward && o->l2norm_backward && o->xent_forward &&
           o->xent_backward && o->upload && o->copy;
}

supcon_status supcon_model_create(supcon_context *ctx, const supcon_model_config *cfg, supcon_model **out) {
    static const char fn[] = "supcon_model_create";
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    supcon_model_config c = supcon_model_config_default();
    if (cfg) {
        if (cfg->struct_size < offsetof(supcon_model_config, bn_eps) + sizeof(float) || cfg->struct_size > 4096)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "%s: cfg->struct_size %zu is not a supcon_model_config size (use "
                            "supcon_model_config_default())", fn, cfg->struct_size);
        memcpy(&c, cfg, cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c);
        c.struct_size = sizeof c;
    }
    if ((unsigned)c.arch > SUPCON_RESNET101)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: arch %d is not a supcon_arch", fn, (int)c.arch);
    if ((unsigned)c.head > SUPCON_HEAD_MLP)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: head %d is not a supcon_head_kind", fn, (int)c.head);
    if (c.in_channels < 1 || c.in_channels > 4096)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: in_channels %d is not in 1..4096", fn, c.in_channels);
    if (c.width < 1 || c.width > 4096)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: width %d is not in 1..4096", fn, c.width);
    if (c.head != SUPCON_HEAD_NONE && (c.feat_dim < 1 || c.feat_dim > (1 << 20)))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: feat_dim %d is not in 1..2^20", fn, c.feat_dim);
    if (c.head == SUPCON_HEAD_NONE) c.feat_dim = 0;
    if (c.num_classes < 0 || c.num_classes > (1 << 24))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: num_classes %d is not in 0..2^24", fn, c.num_classes);
    if (!(c.bn_eps > 0.0f) || !(c.bn_eps < 1e30f))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: bn_eps %g must be finite and > 0", fn, (double)c.bn_eps);
    if (!(c.bn_momentum >= 0.0f && c.bn_momentum <= 1.0f))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: bn_momentum %g is not in [0, 1]", fn,
                        (double)c.bn_momentum);
    c.freeze_encoder = c.freeze_encoder != 0;
    c.zero_init_residual = c.zero_init_residual != 0;
    if (!sc_has_layers(ctx->ops))
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED, "%s: backend %s has no network layers", fn, ctx->ops->name);
    supcon_model *m = calloc(1, sizeof *m);
    if (!m) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    m->ctx = ctx;
    m->cfg = c;
    m->training = 1;
    supcon_status s = sc_model_build(m);
    if (s != SUPCON_OK) {
        supcon_model_free(m);
        return s;
    }
    *out = m;
    return SUPCON_OK;
}

void supcon_model_free(supcon_model *m) {
    if (!m) return;
    supcon_context *ctx = m->ctx;
    sc_model_release_plan(m);
    sc_free(ctx, m->params, (size_t)m->nparams * sizeof(float));
    sc_free(ctx, m->grads, (size_t)m->nparams * sizeof(float));
    sc_free(ctx, m->fbuf, (size_t)m->nfbuf * sizeof(float));
    sc_free(ctx, m->ibuf, (size_t)m->nibuf * sizeof(int64_t));
    for (int64_t i = 0; i < m->nentries; i++) free(m->names[i]);
    free(m->names);
    free(m->entries);
    free(m->blocks);
    free(m);
}

supcon_model_config supcon_model_get_config(const supcon_model *m) {
    if (!m) return supcon_model_config_default();
    return m->cfg;
}

int64_t supcon_model_feature_dim(const supcon_model *m) { return m ? m->feat : 0; }

/* ---- modes -------------------------------------------------------------------------------- */

supcon_status supcon_model_set_training(supcon_model *m, int training) {
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_model_set_training: m is NULL");
    m->training = training != 0;
    m->have_forward = 0;
    return SUPCON_OK;
}

int supcon_model_is_training(const supcon_model *m) { return m ? m->training : 0; }

supcon_status supcon_model_set_encoder_frozen(supcon_model *m, int frozen) {
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_model_set_encoder_frozen: m is NULL");
    m->cfg.freeze_encoder = frozen != 0;
    m->have_forward = 0;
    sc_model_refresh_frozen(m);
    return SUPCON_OK;
}

/* ---- memory ------------------------------------------------------------------------------- */

static supcon_status sc_check_extent(supcon_model *m, int64_t n, int64_t h, int64_t w, const char *fn) {
    if (n < 1 || h < 1 || w < 1)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: batch %lld x %lld x %lld has an empty dimension", fn,
                        (long long)n, (long long)h, (long long)w);
    /* Keep every activation's element count well inside int64 and size_t. */
    const double big = (double)n * (double)h * (double)w * (double)(m->cfg.width > m->cfg.in_channels
                                                                          ? 4 * m->cfg.width
                                                                          : m->cfg.in_channels);
    if (big > 1e15)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: batch %lld x %lld x %lld is too large", fn, (long long)n,
                        (long long)h, (long long)w);
    return SUPCON_OK;
}

supcon_status supcon_model_reserve(supcon_model *m, int64_t n, int64_t h, int64_t w) {
    static const char fn[] = "supcon_model_reserve";
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: m is NULL", fn);
    if (n < 1 || h < 1 || w < 1)
        return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: n %lld, h %lld, w %lld must all be >= 1", fn,
                        (long long)n, (long long)h, (long long)w);
    supcon_status s = sc_check_extent(m, n, h, w, fn);
    return s != SUPCON_OK ? s : sc_model_plan(m, n, h, w, fn);
}

size_t supcon_model_activation_bytes(const supcon_model *m) { return m ? m->arena_bytes + m->ws_bytes : 0; }

size_t supcon_model_bytes(const supcon_model *m) {
    if (!m) return 0;
    return (size_t)m->nparams * 2 * sizeof(float) + (size_t)m->nfbuf * sizeof(float) +
           (size_t)m->nibuf * sizeof(int64_t) + supcon_model_activation_bytes(m);
}

/* ---- forward / backward ------------------------------------------------------------------- */

static supcon_status sc_check_tensor(supcon_model *m, const supcon_tensor *t, const char *fn, const char *name) {
    if (t->ctx != m->ctx)
        return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s belongs to another context than the model", fn,
                        name);
    if (t->dtype != SUPCON_FLOAT32) return sc_error(m->ctx, SUPCON_ERR_DTYPE, "%s: %s must be float32", fn, name);
    return SUPCON_OK;
}

supcon_status supcon_model_forward(supcon_model *m, const supcon_tensor *input) {
    static const char fn[] = "supcon_model_forward";
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: m is NULL", fn);
    m->have_forward = 0;
    if (!input) return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: input is NULL", fn);
    supcon_status s = sc_check_tensor(m, input, fn, "input");
    if (s != SUPCON_OK) return s;
    if (input->ndim != 4)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: input must be [N, C, H, W] (rank 4), got rank %d", fn,
                        input->ndim);
    const int64_t n = input->shape[0], c = input->shape[1], h = input->shape[2], w = input->shape[3];
    if (c != m->cfg.in_channels)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: input has %lld channels, the model takes %d", fn,
                        (long long)c, m->cfg.in_channels);
    if ((s = sc_check_extent(m, n, h, w, fn)) != SUPCON_OK) return s;
    if (sc_model_encoder_train(m)) {
        const int64_t fh = sc_model_final_extent(m, h), fw = sc_model_final_extent(m, w);
        if (n * fh * fw < 2)
            return sc_error(m->ctx, SUPCON_ERR_SHAPE,
                            "%s: in training mode BatchNorm needs more than one value per channel; the last stage "
                            "sees %lld x %lld x %lld (use a batch of 2 or more, or inference mode)",
                            fn, (long long)n, (long long)fh, (long long)fw);
    }
    if ((s = sc_model_plan(m, n, h, w, fn)) != SUPCON_OK) return s;
    const supcon_backend_ops *o = m->ctx->ops;
    s = o->copy(m->ctx->state, m->arena + m->input, input->data, input->bytes);
    if (s != SUPCON_OK) return sc_backend_error(m->ctx, s, fn);
    if ((s = sc_model_run_forward(m, m->arena + m->input)) != SUPCON_OK) return s;
    sc_note_peak(m->ctx);
    m->fwd_n = n;
    m->out_features.shape[0] = n;
    m->out_head.shape[0] = n;
    m->out_logits.shape[0] = n;
    supcon_tensor *outs[3] = {&m->out_features, &m->out_head, &m->out_logits};
    for (int i = 0; i < 3; i++) {
        outs[i]->numel = n * outs[i]->shape[1];
        outs[i]->bytes = (size_t)outs[i]->numel * sizeof(float);
    }
    m->have_forward = 1;
    return SUPCON_OK;
}

const supcon_tensor *supcon_model_features(const supcon_model *m) { return m ? &m->out_features : NULL; }
const supcon_tensor *supcon_model_head_output(const supcon_model *m) {
    return m && m->cfg.head != SUPCON_HEAD_NONE ? &m->out_head : NULL;
}
const supcon_tensor *supcon_model_logits(const supcon_model *m) {
    return m && m->cfg.num_classes > 0 ? &m->out_logits : NULL;
}

static supcon_status sc_check_grad(supcon_model *m, const supcon_tensor *g, int64_t cols, const char *fn,
                                   const char *name) {
    supcon_status s = sc_check_tensor(m, g, fn, name);
    if (s != SUPCON_OK) return s;
    if (g->ndim < 1 || g->numel != m->fwd_n * cols)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: %s has %lld elements, expected [%lld, %lld]", fn, name,
                        (long long)g->numel, (long long)m->fwd_n, (long long)cols);
    return SUPCON_OK;
}

supcon_status supcon_model_backward(supcon_model *m, const supcon_tensor *grad_head, const supcon_tensor *grad_logits,
                                    supcon_tensor *grad_input) {
    static const char fn[] = "supcon_model_backward";
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: m is NULL", fn);
    if (!grad_head && !grad_logits)
        return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: give grad_head, grad_logits or both", fn);
    if (!m->have_forward)
        return sc_error(m->ctx, SUPCON_ERR_STATE,
                        "%s: no forward to backpropagate through (none yet, or a mode change, re-plan or failed "
                        "call since)", fn);
    supcon_status s;
    if (grad_head) {
        if (m->cfg.head == SUPCON_HEAD_NONE)
            return sc_error(m->ctx, SUPCON_ERR_STATE, "%s: grad_head given but the model has no head", fn);
        if ((s = sc_check_grad(m, grad_head, m->cfg.feat_dim, fn, "grad_head")) != SUPCON_OK) return s;
    }
    if (grad_logits) {
        if (m->cfg.num_classes == 0)
            return sc_error(m->ctx, SUPCON_ERR_STATE, "%s: grad_logits given but the model has no classifier", fn);
        if ((s = sc_check_grad(m, grad_logits, m->cfg.num_classes, fn, "grad_logits")) != SUPCON_OK) return s;
    }
    if (grad_input) {
        if ((s = sc_check_tensor(m, grad_input, fn, "grad_input")) != SUPCON_OK) return s;
        if (grad_input->ndim != 4 || grad_input->shape[0] != m->plan_n || grad_input->shape[1] != m->cfg.in_channels ||
            grad_input->shape[2] != m->plan_h || grad_input->shape[3] != m->plan_w)
            return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: grad_input must be [%lld, %d, %lld, %lld] as the input", fn,
                            (long long)m->plan_n, m->cfg.in_channels, (long long)m->plan_h, (long long)m->plan_w);
    }
    s = sc_model_run_backward(m, m->arena + m->input, grad_head ? grad_head->data : NULL,
                              grad_logits ? grad_logits->data : NULL, grad_input ? grad_input->data : NULL);
    if (s != SUPCON_OK) m->have_forward = 0;
    return s;
}

supcon_status supcon_model_cross_entropy(supcon_model *m, const supcon_tensor *labels, float *loss, int64_t *top1,
                                         int64_t *top5, supcon_tensor *grad_logits) {
    static const char fn[] = "supcon_model_cross_entropy";
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: m is NULL", fn);
    if (!labels || !loss) return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: labels or loss is NULL", fn);
    if (m->cfg.num_classes == 0)
        return sc_error(m->ctx, SUPCON_ERR_STATE, "%s: the model has no classifier (num_classes 0)", fn);
    if (!m->have_forward) return sc_error(m->ctx, SUPCON_ERR_STATE, "%s: no forward to take the logits of", fn);
    if (labels->ctx != m->ctx)
        return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: labels belong to another context", fn);
    if (labels->dtype != SUPCON_INT32 && labels->dtype != SUPCON_INT64)
        return sc_error(m->ctx, SUPCON_ERR_DTYPE, "%s: labels must be int32 or int64", fn);
    const int64_t n = m->fwd_n, k = m->cfg.num_classes;
    if (labels->numel != n || labels->ndim != 1)
        return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: labels must be [%lld], got %lld elements in %d dims", fn,
                        (long long)n, (long long)labels->numel, labels->ndim);
    supcon_status s;
    if (grad_logits) {
        if ((s = sc_check_tensor(m, grad_logits, fn, "grad_logits")) != SUPCON_OK) return s;
        if (grad_logits->numel != n * k)
            return sc_error(m->ctx, SUPCON_ERR_SHAPE, "%s: grad_logits must be [%lld, %lld]", fn, (long long)n,
                            (long long)k);
    }
    /* Labels to host int64: read in place when int64, widened through the scratch otherwise. */
    int64_t *h = m->host_labels;
    if (labels->dtype == SUPCON_INT64) {
        s = m->ctx->ops->download(m->ctx->state, h, labels->data, (size_t)n * sizeof(int64_t));
    } else {
        int32_t *h32 = (int32_t *)h; /* int32 fits in the first half; widen from the back */
        s = m->ctx->ops->download(m->ctx->state, h32, labels->data, (size_t)n * sizeof(int32_t));
        if (s == SUPCON_OK)
            for (int64_t i = n - 1; i >= 0; i--) h[i] = h32[i];
    }
    if (s != SUPCON_OK) return sc_backend_error(m->ctx, s, fn);
    for (int64_t i = 0; i < n; i++)
        if (h[i] < 0 || h[i] >= k)
            return sc_error(m->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: label %lld of row %lld is not in [0, %lld)", fn,
                            (long long)h[i], (long long)i, (long long)k);
    return sc_model_run_xent(m, h, loss, top1, top5, grad_logits ? grad_logits->data : NULL);
}

supcon_status supcon_model_zero_grad(supcon_model *m) {
    if (!m) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_model_zero_grad: m is NULL");
    supcon_status s = sc_model_fill_zero(m, m->grads, (size_t)m->nparams * sizeof(float));
    return s == SUPCON_OK ? s : sc_backend_error(m->ctx, s, "supcon_model_zero_grad");
}

/* ---- the table ---------------------------------------------------------------------------- */

int64_t supcon_model_param_count(const supcon_model *m) { return m ? m->nentries : 0; }

const supcon_param_info *supcon_model_param(const supcon_model *m, int64_t i) {
    if (!m || i < 0 || i >= m->nentries) return NULL;
    return &m->entries[i].info;
}

/* Copies name without its "module." segments (at the start or after a '.') into buf. */
static int sc_strip_module(const char *name, char *buf, size_t cap) {
    size_t o = 0;
    const char *p = name;
    while (*p) {
        if (!strncmp(p, "module.", 7) && (p == name || p[-1] == '.')) {
            p += 7;
            continue;
        }
        if (o + 1 >= cap) return -1;
        buf[o++] = *p++;
    }
    buf[o] = 0;
    return 0;
}

int64_t supcon_model_param_find(const supcon_model *m, const char *name) {
    if (!m || !name) return -1;
    char buf[256];
    if (sc_strip_module(name, buf, sizeof buf) != 0) return -1;
    for (int64_t i = 0; i < m->nentries; i++)
        if (!strcmp(m->entries[i].info.name, buf)) return i;
    return -1;
}

supcon_tensor *supcon_model_flat_params(supcon_model *m) { return m ? &m->flat_params : NULL; }
supcon_tensor *supcon_model_flat_grads(supcon_model *m) { return m ? &m->flat_grads : NULL; }

supcon_status supcon_model_trainable_range(const supcon_model *m, int64_t *offset, int64_t *count) {
    if (!m || !offset || !count)
        return sc_error(m ? m->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_model_trainable_range: NULL argument");
    *offset = m->cfg.freeze_encoder ? m->nenc : 0;
    *count = m->nparams - *offset;
    return SUPCON_OK;
}
