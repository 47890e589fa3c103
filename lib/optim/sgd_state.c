/* The SGD state in a safetensors file, as PyTorch's optimizer.state_dict() keeps it:
 * momentum buffers per parameter (by name here, not by index), the step count and each
 * group's hyper-parameters (metadata). Loading checks everything before changing anything. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint_internal.h"
#include "context_internal.h"
#include "error.h"
#include "optim_internal.h"

#define SC_MOMENTUM_PREFIX "optimizer.momentum_buffer."

static supcon_status sc_meta_set(supcon_safetensors *f, const char *key, const char *value) {
    return supcon_safetensors_set_metadata(f, key, value);
}

supcon_status supcon_sgd_save_state(const supcon_sgd *opt, supcon_safetensors *file) {
    static const char fn[] = "supcon_sgd_save_state";
    if (!opt || !file)
        return sc_error(opt ? opt->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, opt ? "file" : "opt");
    supcon_context *ctx = opt->ctx;
    /* names first, so that a clash changes nothing */
    const size_t plen = strlen(SC_MOMENTUM_PREFIX);
    size_t longest = 0;
    for (int64_t i = 0; i < opt->nparams; i++) {
        size_t n = strlen(opt->params[i].name);
        if (n > longest) longest = n;
    }
    char *key = malloc(plen + longest + 1);
    if (!key) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int64_t i = 0; i < opt->nparams; i++) {
        if (!opt->params[i].has_buf) continue;
        snprintf(key, plen + longest + 1, "%s%s", SC_MOMENTUM_PREFIX, opt->params[i].name);
        const int64_t clash = supcon_safetensors_find(file, key);
        if (clash >= 0) {
            free(key);
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: the file already holds '%s'", fn,
                            supcon_safetensors_name(file, clash));
        }
    }
    supcon_status s = SUPCON_OK;
    float *host = NULL;
    size_t host_cap = 0;
    for (int64_t i = 0; i < opt->nparams && s == SUPCON_OK; i++) {
        const sc_sgd_param *p = &opt->params[i];
        if (!p->has_buf) continue;
        size_t bytes = (size_t)p->numel * sizeof(float);
        if (bytes > host_cap) {
            free(host);
            host = malloc(bytes);
            host_cap = host ? bytes : 0;
            if (!host) {
                s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
                break;
            }
        }
        if (bytes && (s = ctx->ops->download(ctx->state, host, opt->buf + p->buf_off, bytes)) != SUPCON_OK) {
            s = sc_backend_error(ctx, s, fn);
            break;
        }
        snprintf(key, plen + longest + 1, "%s%s", SC_MOMENTUM_PREFIX, p->name);
        s = supcon_safetensors_add(file, key, SUPCON_FLOAT32, p->ndim, p->shape, host, bytes);
    }
    free(host);
    free(key);
    if (s != SUPCON_OK) return s;

    char k[96], v[64];
    snprintf(v, sizeof v, "%" PRId64, opt->steps);
    if ((s = sc_meta_set(file, "optimizer.steps", v)) != SUPCON_OK) return s;
    snprintf(v, sizeof v, "%d", opt->ngroups);
    if ((s = sc_meta_set(file, "optimizer.groups", v)) != SUPCON_OK) return s;
    for (int g = 0; g < opt->ngroups && s == SUPCON_OK; g++) {
        const sc_sgd_group *gr = &opt->groups[g];
        const struct {
            const char *field;
            double value;
        } f[] = {{"lr", gr->lr}, {"momentum", gr->momentum}, {"weight_decay", gr->weight_decay},
                 {"dampening", gr->dampening}, {"nesterov", (double)gr->nesterov}};
        for (size_t j = 0; j < sizeof f / sizeof *f && s == SUPCON_OK; j++) {
            snprintf(k, sizeof k, "optimizer.group.%d.%s", g, f[j].field);
            snprintf(v, sizeof v, "%.17g", f[j].value);
            s = sc_meta_set(file, k, v);
        }
    }
    return s;
}

/* Strict numbers from metadata: the whole string, finite. */
static int sc_parse_double(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int sc_parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end) return 0;
    *out = (int64_t)v;
    return 1;
}

/* Index of the parameter called name (exact, else without "module." components), or -1. */
static int64_t sc_sgd_find(const supcon_sgd *opt, const char *name) {
    for (int64_t i = 0; i < opt->nparams; i++)
        if (strcmp(opt->params[i].name, name) == 0) return i;
    size_t n = strlen(name);
    char *cn = malloc(n + 1);
    if (!cn) return -1;
    sc_st_canonical(name, cn);
    int64_t hit = -1;
    for (int64_t i = 0; i < opt->nparams && hit < 0; i++) {
        const char *pn = opt->params[i].name;
        char *cp = malloc(strlen(pn) + 1);
        if (!cp) break;
        sc_st_canonical(pn, cp);
        if (strcmp(cp, cn) == 0) hit = i;
        free(cp);
    }
    free(cn);
    return hit;
}

supcon_status supcon_sgd_load_state(supcon_sgd *opt, const supcon_safetensors *file) {
    static const char fn[] = "supcon_sgd_load_state";
    if (!opt || !file)
        return sc_error(opt ? opt->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, opt ? "file" : "opt");
    supcon_context *ctx = opt->ctx;
    int64_t steps, ngroups;
    const char *sv = supcon_safetensors_metadata(file, "optimizer.steps");
    if (!sv) return sc_error(ctx, SUPCON_ERR_FORMAT, "%s: the file has no optimizer state (metadata 'optimizer.steps')", fn);
    if (!sc_parse_i64(sv, &steps) || steps < 0)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "%s: metadata 'optimizer.steps' = '%.40s' is not a count", fn, sv);
    const char *gv = supcon_safetensors_metadata(file, "optimizer.groups");
    if (!gv || !sc_parse_i64(gv, &ngroups) || ngroups != opt->ngroups)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "%s: metadata 'optimizer.groups' = '%.40s', this optimizer has %d group(s)",
                        fn, gv ? gv : "(absent)", opt->ngroups);

    sc_sgd_group *groups = malloc((size_t)opt->ngroups * sizeof *groups);
    int64_t *entry_of = malloc((size_t)(opt->nparams ? opt->nparams : 1) * sizeof *entry_of);
    supcon_status s = SUPCON_OK;
    if (!groups || !entry_of) {
        s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out;
    }
    for (int g = 0; g < opt->ngroups && s == SUPCON_OK; g++) {
        static const char *const fields[] = {"lr", "momentum", "weight_decay", "dampening", "nesterov"};
        double v[5];
        for (int j = 0; j < 5; j++) {
            char k[96];
            snprintf(k, sizeof k, "optimizer.group.%d.%s", g, fields[j]);
            const char *t = supcon_safetensors_metadata(file, k);
            if (!sc_parse_double(t, &v[j]) || v[j] < 0) {
                s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: metadata '%s' is %s", fn, k, t ? "not a number >= 0" : "absent");
                break;
            }
        }
        if (s != SUPCON_OK) break;
        if ((v[4] != 0 && v[4] != 1) || (v[4] == 1 && (v[1] <= 0 || v[3] != 0))) {
            s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: group %d: nesterov %g with momentum %g, dampening %g", fn, g, v[4],
                         v[1], v[3]);
            break;
        }
        groups[g] = (sc_sgd_group){v[0], v[1], v[2], v[3], (int)v[4]};
        if (opt->prepared && (groups[g].momentum != 0.0) != (opt->groups[g].momentum != 0.0))
            s = sc_error(ctx, SUPCON_ERR_STATE,
                         "%s: group %d has momentum %g in the file and %g here, after the buffers were laid out", fn, g,
                         groups[g].momentum, opt->groups[g].momentum);
    }
    if (s != SUPCON_OK) goto out;

    /* buffers by name */
    for (int64_t i = 0; i < opt->nparams; i++) entry_of[i] = -1;
    const size_t plen = strlen(SC_MOMENTUM_PREFIX);
    char pn[160];
    for (int64_t e = 0; e < supcon_safetensors_count(file) && s == SUPCON_OK; e++) {
        const char *en = supcon_safetensors_name(file, e);
        if (strncmp(en, SC_MOMENTUM_PREFIX, plen) != 0) continue;
        int64_t i = sc_sgd_find(opt, en + plen);
        if (i < 0) {
            s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: entry '%s' names no parameter of this optimizer", fn,
                         sc_st_printable(en, pn, sizeof pn));
            break;
        }
        const sc_sgd_param *p = &opt->params[i];
        if (groups[p->group].momentum == 0.0) {
            s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: entry '%s': parameter '%s' is in group %d, which has no momentum",
                         fn, sc_st_printable(en, pn, sizeof pn), p->name, p->group);
            break;
        }
        if (supcon_safetensors_dtype(file, e) != SUPCON_FLOAT32) {
            s = sc_error(ctx, SUPCON_ERR_DTYPE, "%s: entry '%s' is not F32", fn, sc_st_printable(en, pn, sizeof pn));
            break;
        }
        int same = supcon_safetensors_ndim(file, e) == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = supcon_safetensors_dim(file, e, d) == p->shape[d];
        if (!same) {
            s = sc_error(ctx, SUPCON_ERR_SHAPE, "%s: entry '%s' does not have the shape of parameter '%s'", fn,
                         sc_st_printable(en, pn, sizeof pn), p->name);
            break;
        }
        entry_of[i] = e;
    }
    if (s != SUPCON_OK) goto out;
    for (int64_t i = 0; i < opt->nparams; i++) {
        const sc_sgd_param *p = &opt->params[i];
        if (groups[p->group].momentum == 0.0) continue;
        if (steps > 0 && entry_of[i] < 0) {
            s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: no entry '%s%s' for parameter '%s' after %" PRId64 " step(s)", fn,
                         SC_MOMENTUM_PREFIX, p->name, p->name, steps);
            goto out;
        }
        if (steps == 0 && entry_of[i] >= 0) {
            s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s: a momentum buffer for '%s', but 0 steps taken", fn, p->name);
            goto out;
        }
    }

    /* apply: hyper-parameters first (they decide the buffer layout), then the buffers */
    for (int g = 0; g < opt->ngroups; g++) {
        const sc_sgd_group old = opt->groups[g];
        opt->groups[g] = groups[g];
        groups[g] = old;
    }
    if ((s = sc_sgd_prepare(opt, fn)) != SUPCON_OK) {
        for (int g = 0; g < opt->ngroups; g++) opt->groups[g] = groups[g]; /* back as they were */
        goto out;
    }
    for (int64_t i = 0; i < opt->nparams; i++) {
        sc_sgd_param *p = &opt->params[i];
        p->has_buf = entry_of[i] >= 0;
        if (!p->has_buf || !p->numel) continue;
        s = ctx->ops->upload(ctx->state, opt->buf + p->buf_off, supcon_safetensors_data(file, entry_of[i]),
                             (size_t)p->numel * sizeof(float));
        if (s != SUPCON_OK) {
            s = sc_backend_error(ctx, s, fn);
            goto out;
        }
    }
    opt->steps = steps;
out:
    free(groups);
    free(entry_of);
    return s;
}
