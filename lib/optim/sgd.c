/* SGD as torch.optim.SGD: parameter groups, per-parameter exclusion from weight decay, one
 * flat momentum buffer in backend memory, and each step handed to the backend's fused
 * sgd_update as a few runs (parameters that lie back to back in memory, with their gradients
 * back to back too, form one run). Saving and loading the state is sgd_state.c. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "context_internal.h"
#include "error.h"
#include "profile.h"
#include "optim_internal.h"
#include "supcon/model.h"
#include "tensor_internal.h"

supcon_sgd_config supcon_sgd_config_default(void) {
    return supcon_sgd_config_for_program(SUPCON_PROGRAM_CONTRASTIVE);
}

supcon_sgd_config supcon_sgd_config_for_program(supcon_program program) {
    supcon_sgd_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.momentum = 0.9;
    switch (program) {
    case SUPCON_PROGRAM_CROSS_ENTROPY:
        c.learning_rate = 0.2;
        c.weight_decay = 1e-4;
        break;
    case SUPCON_PROGRAM_LINEAR:
        c.learning_rate = 0.1;
        c.weight_decay = 0.0;
        break;
    case SUPCON_PROGRAM_CONTRASTIVE:
    default:
        c.learning_rate = 0.05;
        c.weight_decay = 1e-4;
        break;
    }
    return c;
}

static supcon_status sc_sgd_check_cfg(supcon_context *ctx, const char *fn, const supcon_sgd_config *c) {
    if (c->struct_size != sizeof *c)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg->struct_size is %zu, expected %zu", fn,
                        c->struct_size, sizeof *c);
    const struct {
        const char *name;
        double v;
    } f[] = {{"learning_rate", c->learning_rate},
             {"momentum", c->momentum},
             {"weight_decay", c->weight_decay},
             {"dampening", c->dampening}};
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
        if (!isfinite(f[k].v) || f[k].v < 0.0)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg->%s = %g must be finite and >= 0", fn,
                            f[k].name, f[k].v);
    if (c->nesterov != 0 && c->nesterov != 1)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg->nesterov = %d is not 0 or 1", fn, c->nesterov);
    if (c->nesterov && (c->momentum <= 0.0 || c->dampening != 0.0))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "%s: Nesterov momentum requires momentum > 0 and dampening 0 (momentum %g, dampening %g)",
                        fn, c->momentum, c->dampening);
    return SUPCON_OK;
}

static void sc_sgd_set_group(sc_sgd_group *g, const supcon_sgd_config *c) {
    g->lr = c->learning_rate;
    g->momentum = c->momentum;
    g->weight_decay = c->weight_decay;
    g->dampening = c->dampening;
    g->nesterov = c->nesterov;
}

static supcon_status sc_sgd_push_group(supcon_sgd *opt, const supcon_sgd_config *c) {
    if (opt->ngroups == opt->gcap) {
        int cap = opt->gcap ? opt->gcap * 2 : 4;
        sc_sgd_group *g = realloc(opt->groups, (size_t)cap * sizeof *g);
        if (!g) return SUPCON_ERR_OUT_OF_MEMORY;
        opt->groups = g;
        opt->gcap = cap;
    }
    sc_sgd_set_group(&opt->groups[opt->ngroups++], c);
    return SUPCON_OK;
}

supcon_status supcon_sgd_create(supcon_context *ctx, const supcon_sgd_config *cfg, supcon_sgd **out) {
    static const char fn[] = "supcon_sgd_create";
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    supcon_sgd_config d = supcon_sgd_config_default();
    if (!cfg) cfg = &d;
    supcon_status s = sc_sgd_check_cfg(ctx, fn, cfg);
    if (s != SUPCON_OK) return s;
    supcon_sgd *opt = calloc(1, sizeof *opt);
    if (!opt || sc_sgd_push_group(opt, cfg) != SUPCON_OK) {
        free(opt);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    opt->ctx = ctx;
    *out = opt;
    return SUPCON_OK;
}

void supcon_sgd_free(supcon_sgd *opt) {
    if (!opt) return;
    sc_free(opt->ctx, opt->buf, opt->buf_bytes);
    for (int64_t i = 0; i < opt->nparams; i++) free(opt->params[i].name);
    free(opt->params);
    free(opt->groups);
    free(opt->segs);
    free(opt);
}

supcon_status supcon_sgd_add_group(supcon_sgd *opt, const supcon_sgd_config *cfg, int *group) {
    static const char fn[] = "supcon_sgd_add_group";
    if (!opt || !cfg || !group)
        return sc_error(opt ? opt->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        !opt ? "opt" : !cfg ? "cfg" : "group");
    supcon_status s = sc_sgd_check_cfg(opt->ctx, fn, cfg);
    if (s != SUPCON_OK) return s;
    if (opt->prepared)
        return sc_error(opt->ctx, SUPCON_ERR_STATE, "%s: groups cannot be added after the first step or state load",
                        fn);
    if (sc_sgd_push_group(opt, cfg) != SUPCON_OK)
        return sc_error(opt->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *group = opt->ngroups - 1;
    return SUPCON_OK;
}

int supcon_sgd_group_count(const supcon_sgd *opt) { return opt ? opt->ngroups : 0; }

static int sc_overlap(const void *a, int64_t na, const void *b, int64_t nb) {
    if (na <= 0 || nb <= 0) return 0;
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + (uintptr_t)na * sizeof(float);
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + (uintptr_t)nb * sizeof(float);
    return a0 < b1 && b0 < a1;
}

#define SC_SGD_FLAGS (SUPCON_SGD_NO_WEIGHT_DECAY | SUPCON_SGD_NO_WEIGHT_DECAY_1D)

supcon_status supcon_sgd_add_param(supcon_sgd *opt, int group, const char *name, supcon_tensor *param,
                                   const supcon_tensor *grad, unsigned flags) {
    static const char fn[] = "supcon_sgd_add_param";
    if (!opt) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: opt is NULL", fn);
    supcon_context *ctx = opt->ctx;
    if (!name || !*name) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: name is NULL or empty", fn);
    if (!param || !grad)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s': %s is NULL", fn, name, param ? "grad" : "param");
    if (opt->prepared)
        return sc_error(ctx, SUPCON_ERR_STATE, "%s: '%s': parameters cannot be added after the first step or state load",
                        fn, name);
    if (group < 0 || group >= opt->ngroups)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s': group %d is not in 0..%d", fn, name, group,
                        opt->ngroups - 1);
    if (flags & ~SC_SGD_FLAGS)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s': unknown flags 0x%x", fn, name, flags & ~SC_SGD_FLAGS);
    if (param->ctx != ctx || grad->ctx != ctx)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s': %s belongs to another context", fn, name,
                        param->ctx != ctx ? "param" : "grad");
    if (param->dtype != SUPCON_FLOAT32 || grad->dtype != SUPCON_FLOAT32)
        return sc_error(ctx, SUPCON_ERR_DTYPE, "%s: '%s': %s is not float32", fn, name,
                        param->dtype != SUPCON_FLOAT32 ? "param" : "grad");
    int same = param->ndim == grad->ndim;
    for (int d = 0; same && d < param->ndim; d++) same = param->shape[d] == grad->shape[d];
    if (!same) return sc_error(ctx, SUPCON_ERR_SHAPE, "%s: '%s': grad's shape differs from param's", fn, name);
    if (sc_overlap(param->data, param->numel, grad->data, grad->numel))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s': param and grad share memory", fn, name);
    for (int64_t i = 0; i < opt->nparams; i++) {
        const sc_sgd_param *q = &opt->params[i];
        if (strcmp(q->name, name) == 0)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: the name '%s' is already used", fn, name);
        if (sc_overlap(param->data, param->numel, q->w, q->numel) ||
            sc_overlap(param->data, param->numel, q->g, q->numel) || sc_overlap(grad->data, grad->numel, q->w, q->numel))
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s' shares memory with parameter '%s'", fn, name,
                            q->name);
    }
    if (opt->nparams == opt->pcap) {
        int64_t cap = opt->pcap ? opt->pcap * 2 : 64;
        sc_sgd_param *p = realloc(opt->params, (size_t)cap * sizeof *p);
        if (!p) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        opt->params = p;
        opt->pcap = cap;
    }
    sc_sgd_param *p = &opt->params[opt->nparams];
    memset(p, 0, sizeof *p);
    size_t n = strlen(name) + 1;
    p->name = malloc(n);
    if (!p->name) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    memcpy(p->name, name, n);
    p->w = param->data;
    p->g = grad->data;
    p->numel = param->numel;
    p->ndim = param->ndim;
    for (int d = 0; d < param->ndim; d++) p->shape[d] = param->shape[d];
    p->group = group;
    p->no_decay = (flags & SUPCON_SGD_NO_WEIGHT_DECAY) || ((flags & SUPCON_SGD_NO_WEIGHT_DECAY_1D) && param->ndim < 2);
    p->buf_off = -1;
    opt->nparams++;
    return SUPCON_OK;
}

supcon_status supcon_sgd_add_model(supcon_sgd *opt, int group, supcon_model *model, const char *prefix,
                                   unsigned flags) {
    static const char fn[] = "supcon_sgd_add_model";
    if (!opt || !model)
        return sc_error(opt ? opt->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        opt ? "model" : "opt");
    const size_t plen = prefix ? strlen(prefix) : 0;
    const int64_t first = opt->nparams;
    int64_t added = 0;
    for (int64_t i = 0; i < supcon_model_param_count(model); i++) {
        const supcon_param_info *info = supcon_model_param(model, i);
        if (!info || info->kind != SUPCON_PARAM_PARAMETER || !info->trainable || !info->grad) continue;
        if (plen && strncmp(info->name, prefix, plen) != 0) continue;
        supcon_status s = supcon_sgd_add_param(opt, group, info->name, info->value, info->grad, flags);
        if (s != SUPCON_OK) {
            /* all or nothing */
            for (int64_t k = first; k < opt->nparams; k++) free(opt->params[k].name);
            opt->nparams = first;
            return s;
        }
        added++;
    }
    if (!added)
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: the model has no trainable parameter%s%s%s", fn,
                        plen ? " whose name starts with '" : "", plen ? prefix : "", plen ? "'" : "");
    return SUPCON_OK;
}

/* The momentum buffer (parameters of groups with momentum, in order) and the run table.
 * After this, the parameter list is fixed. */
supcon_status sc_sgd_prepare(supcon_sgd *opt, const char *fn) {
    if (opt->prepared) return SUPCON_OK;
    int64_t total = 0;
    for (int64_t i = 0; i < opt->nparams; i++) {
        sc_sgd_param *p = &opt->params[i];
        if (opt->groups[p->group].momentum != 0.0) {
            p->buf_off = total;
            total += p->numel;
        }
    }
    supcon_sgd_segment *segs = malloc((size_t)(opt->nparams ? opt->nparams : 1) * sizeof *segs);
    if (!segs) return sc_error(opt->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    void *buf = NULL;
    size_t bytes = (size_t)total * sizeof(float);
    if (total) {
        supcon_status s = sc_alloc(opt->ctx, bytes, &buf);
        if (s != SUPCON_OK) {
            free(segs);
            return sc_error(opt->ctx, s, "%s: cannot allocate the momentum buffer (%zu bytes): %s", fn, bytes,
                            supcon_context_last_error(opt->ctx));
        }
    }
    opt->segs = segs;
    opt->buf = buf;
    opt->buf_bytes = bytes;
    opt->prepared = 1;
    return SUPCON_OK;
}

supcon_status supcon_sgd_step(supcon_sgd *opt) {
    static const char fn[] = "supcon_sgd_step";
    if (!opt) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: opt is NULL", fn);
    supcon_context *ctx = opt->ctx;
    if (!ctx->ops->sgd_update)
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED, "%s: the %s backend has no SGD kernel", fn, ctx->ops->name);
    supcon_status s = sc_sgd_prepare(opt, fn);
    if (s != SUPCON_OK) return s;
    int64_t n = 0;
    for (int64_t i = 0; i < opt->nparams; i++) {
        const sc_sgd_param *p = &opt->params[i];
        const sc_sgd_group *g = &opt->groups[p->group];
        if (p->numel == 0) continue;
        supcon_sgd_segment seg;
        memset(&seg, 0, sizeof seg);
        seg.param = p->w;
        seg.grad = p->g;
        seg.momentum_buffer = p->buf_off >= 0 ? opt->buf + p->buf_off : NULL;
        seg.count = p->numel;
        /* PyTorch hands these to its kernels as float scalars. */
        seg.lr = (float)g->lr;
        seg.weight_decay = p->no_decay ? 0.0f : (float)g->weight_decay;
        seg.momentum = (float)g->momentum;
        seg.one_minus_dampening = (float)(1.0 - g->dampening);
        seg.nesterov = g->nesterov;
        seg.first = seg.momentum_buffer && !p->has_buf;
        if (n > 0) {
            supcon_sgd_segment *prev = &opt->segs[n - 1];
            if (prev->param + prev->count == seg.param && prev->grad + prev->count == seg.grad &&
                ((!prev->momentum_buffer && !seg.momentum_buffer) ||
                 (prev->momentum_buffer && prev->momentum_buffer + prev->count == seg.momentum_buffer)) &&
                prev->lr == seg.lr && prev->weight_decay == seg.weight_decay && prev->momentum == seg.momentum &&
                prev->one_minus_dampening == seg.one_minus_dampening && prev->nesterov == seg.nesterov &&
                prev->first == seg.first) {
                prev->count += seg.count;
                continue;
            }
        }
        opt->segs[n++] = seg;
    }
    opt->last_runs = n;
    const double t0 = sc_prof_begin(ctx);
    s = ctx->ops->sgd_update(ctx->state, opt->segs, n);
    sc_prof_end(ctx, "sgd update", t0);
    if (s != SUPCON_OK) return sc_backend_error(ctx, s, fn);
    for (int64_t i = 0; i < opt->nparams; i++)
        if (opt->params[i].buf_off >= 0) opt->params[i].has_buf = 1;
    opt->steps++;
    return SUPCON_OK;
}

supcon_status supcon_sgd_set_learning_rate(supcon_sgd *opt, double lr) {
    if (!opt) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_sgd_set_learning_rate: opt is NULL");
    if (!isfinite(lr) || lr < 0)
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_sgd_set_learning_rate: lr = %g must be finite and >= 0", lr);
    for (int g = 0; g < opt->ngroups; g++) opt->groups[g].lr = lr;
    return SUPCON_OK;
}

supcon_status supcon_sgd_set_group_learning_rate(supcon_sgd *opt, int group, double lr) {
    static const char fn[] = "supcon_sgd_set_group_learning_rate";
    if (!opt) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: opt is NULL", fn);
    if (group < 0 || group >= opt->ngroups)
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: group %d is not in 0..%d", fn, group,
                        opt->ngroups - 1);
    if (!isfinite(lr) || lr < 0)
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: lr = %g must be finite and >= 0", fn, lr);
    opt->groups[group].lr = lr;
    return SUPCON_OK;
}

double supcon_sgd_learning_rate(const supcon_sgd *opt, int group) {
    return (opt && group >= 0 && group < opt->ngroups) ? opt->groups[group].lr : -1.0;
}

int64_t supcon_sgd_steps(const supcon_sgd *opt) { return opt ? opt->steps : 0; }
int64_t supcon_sgd_param_count(const supcon_sgd *opt) { return opt ? opt->nparams : 0; }

const char *supcon_sgd_param_name(const supcon_sgd *opt, int64_t i) {
    return (opt && i >= 0 && i < opt->nparams) ? opt->params[i].name : NULL;
}

supcon_status supcon_sgd_get_momentum(const supcon_sgd *opt, int64_t i, float *dst, size_t bytes) {
    static const char fn[] = "supcon_sgd_get_momentum";
    if (!opt) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: opt is NULL", fn);
    if (i < 0 || i >= opt->nparams)
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: index %lld is not in 0..%lld", fn, (long long)i,
                        (long long)opt->nparams - 1);
    const sc_sgd_param *p = &opt->params[i];
    if ((!dst && bytes) || bytes != (size_t)p->numel * sizeof(float))
        return sc_error(opt->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s' holds %zu bytes, %zu asked%s", fn, p->name,
                        (size_t)p->numel * sizeof(float), bytes, dst ? "" : " (dst NULL)");
    if (!p->has_buf)
        return sc_error(opt->ctx, SUPCON_ERR_STATE, "%s: '%s' has no momentum buffer (%s)", fn, p->name,
                        opt->groups[p->group].momentum == 0.0 ? "its group has momentum 0" : "no step yet");
    if (!bytes) return SUPCON_OK;
    supcon_status s = opt->ctx->ops->download(opt->ctx->state, dst, opt->buf + p->buf_off, bytes);
    return s == SUPCON_OK ? s : sc_backend_error(opt->ctx, s, fn);
}
