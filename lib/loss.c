/* SupConLoss front end: checks every argument, lays the batch out view-major, resolves the
 * positives (labels, mask or SimCLR identity) and hands one supcon_loss_problem to the
 * backend. The gradient is computed in the same pass as the value and kept until backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context_internal.h"
#include "error.h"
#include "profile.h"
#include "supcon/loss.h"
#include "tensor_internal.h"

enum sc_loss_state { SC_LOSS_NONE, SC_LOSS_BATCH, SC_LOSS_PAIR };

/* A backend buffer that only grows, so steady-state calls never allocate. */
typedef struct sc_workspace {
    void *ptr;
    size_t cap;
} sc_workspace;

struct supcon_loss {
    supcon_context *ctx;
    supcon_loss_config cfg;
    sc_workspace contrast; /* (V*B, D) view-major copy of the features */
    sc_workspace grad_c;   /* dL/d(contrast rows), batch form and pair contrast */
    sc_workspace grad_a;   /* dL/d(anchors), pair form with distinct tensors */
    sc_workspace labels_a; /* int64 anchor labels, pair form */
    sc_workspace labels_c; /* int64 contrast-row labels */
    int64_t *host_labels;  /* host scratch for label conversion */
    size_t host_labels_cap;
    enum sc_loss_state state;
    int ndim;                        /* batch: the features' shape, for backward's check */
    int64_t shape[SUPCON_MAX_DIMS];
    int64_t b, v, d, na, nc;
    int same_tensor;
};

static supcon_status sc_reserve(supcon_context *ctx, sc_workspace *w, size_t bytes) {
    if (w->cap >= bytes && w->ptr) return SUPCON_OK;
    sc_free(ctx, w->ptr, w->cap);
    w->ptr = NULL;
    w->cap = 0;
    supcon_status s = sc_alloc(ctx, bytes ? bytes : 1, &w->ptr);
    if (s == SUPCON_OK) w->cap = bytes ? bytes : 1;
    return s;
}

static void sc_release(supcon_context *ctx, sc_workspace *w) {
    sc_free(ctx, w->ptr, w->cap);
    w->ptr = NULL;
    w->cap = 0;
}

supcon_loss_config supcon_loss_config_default(void) {
    supcon_loss_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.temperature = 0.07f;
    c.base_temperature = 0.07f;
    c.contrast_mode = SUPCON_CONTRAST_ALL;
    c.denominator = SUPCON_DENOMINATOR_ALL;
    c.aggregation = SUPCON_AGGREGATE_OUT;
    c.forward_only = 0;
    return c;
}

supcon_status supcon_loss_create(supcon_context *ctx, const supcon_loss_config *cfg, supcon_loss **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_loss_create: out is NULL");
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_loss_create: ctx is NULL");
    supcon_loss_config c = supcon_loss_config_default();
    if (cfg) {
        /* The first version had the four fields the issue fixed; accept that size and up. */
        size_t min = offsetof(supcon_loss_config, contrast_mode) + sizeof(int);
        if (cfg->struct_size < min || cfg->struct_size > 4096)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "supcon_loss_create: cfg->struct_size %zu is not a supcon_loss_config "
                            "size (use supcon_loss_config_default())", cfg->struct_size);
        memcpy(&c, cfg, cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c);
        c.struct_size = sizeof c;
    }
    if (!(c.temperature > 0.0f) || !isfinite(c.temperature))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loss_create: temperature %g must be finite and > 0", (double)c.temperature);
    if (!(c.base_temperature > 0.0f) || !isfinite(c.base_temperature))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loss_create: base_temperature %g must be finite and > 0",
                        (double)c.base_temperature);
    if (c.contrast_mode != SUPCON_CONTRAST_ALL && c.contrast_mode != SUPCON_CONTRAST_ONE)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loss_create: contrast_mode %d is not ALL or ONE", (int)c.contrast_mode);
    if ((unsigned)c.denominator > SUPCON_DENOMINATOR_NEGATIVES)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loss_create: denominator %d is not a supcon_loss_denominator",
                        (int)c.denominator);
    if ((unsigned)c.aggregation > SUPCON_AGGREGATE_IN)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loss_create: aggregation %d is not a supcon_loss_aggregation",
                        (int)c.aggregation);
    if (!ctx->ops->loss)
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED, "supcon_loss_create: backend %s has no loss",
                        ctx->ops->name);
    supcon_loss *l = calloc(1, sizeof *l);
    if (!l) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "supcon_loss_create: out of memory");
    l->ctx = ctx;
    l->cfg = c;
    *out = l;
    return SUPCON_OK;
}

void supcon_loss_free(supcon_loss *l) {
    if (!l) return;
    sc_release(l->ctx, &l->contrast);
    sc_release(l->ctx, &l->grad_c);
    sc_release(l->ctx, &l->grad_a);
    sc_release(l->ctx, &l->labels_a);
    sc_release(l->ctx, &l->labels_c);
    free(l->host_labels);
    free(l);
}

/* ---- argument checks --------------------------------------------------------------------- */

static supcon_status sc_check_tensor(supcon_loss *l, const supcon_tensor *t, const char *fn,
                                     const char *name) {
    if (!t) return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, name);
    if (t->ctx != l->ctx)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "%s: %s belongs to another context than the loss", fn, name);
    return SUPCON_OK;
}

static supcon_status sc_check_finite(supcon_loss *l, const supcon_tensor *t, const char *fn,
                                     const char *name, int64_t row_len) {
    int64_t first = -1;
    supcon_status s = l->ctx->ops->find_nonfinite(l->ctx->state, t->data, t->numel, &first);
    if (s != SUPCON_OK) return sc_backend_error(l->ctx, s, fn);
    if (first >= 0)
        return sc_error(l->ctx, SUPCON_ERR_NON_FINITE,
                        "%s: %s holds NaN or infinity at flat index %lld (row %lld, column %lld)", fn,
                        name, (long long)first, (long long)(first / row_len), (long long)(first % row_len));
    return SUPCON_OK;
}

/* Labels of any integer dtype and numel n, downloaded and widened into l->host_labels. */
static supcon_status sc_read_labels(supcon_loss *l, const supcon_tensor *t, int64_t n, const char *fn,
                                    const char *name) {
    supcon_status s = sc_check_tensor(l, t, fn, name);
    if (s != SUPCON_OK) return s;
    if (t->dtype != SUPCON_INT32 && t->dtype != SUPCON_INT64)
        return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: %s must be int32 or int64", fn, name);
    if (t->numel != n || t->ndim < 1)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: %s has %lld elements, expected [%lld]", fn, name,
                        (long long)t->numel, (long long)n);
    size_t need = (size_t)n * sizeof(int64_t);
    if (l->host_labels_cap < need) {
        int64_t *p = realloc(l->host_labels, need ? need : 8);
        if (!p) return sc_error(l->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        l->host_labels = p;
        l->host_labels_cap = need;
    }
    s = supcon_tensor_download(t, l->host_labels, t->bytes);
    if (s != SUPCON_OK) return s;
    if (t->dtype == SUPCON_INT32) {
        const int32_t *src = (const int32_t *)l->host_labels;
        for (int64_t i = n - 1; i >= 0; i--) l->host_labels[i] = src[i]; /* widen in place, from the end */
    }
    return SUPCON_OK;
}

static supcon_status sc_upload(supcon_loss *l, sc_workspace *w, const void *src, size_t bytes) {
    supcon_status s = sc_reserve(l->ctx, w, bytes);
    if (s != SUPCON_OK) return s;
    s = l->ctx->ops->upload(l->ctx->state, w->ptr, src, bytes);
    return s == SUPCON_OK ? s : sc_backend_error(l->ctx, s, "uploading labels");
}

static supcon_status sc_check_mask(supcon_loss *l, const supcon_tensor *mask, int64_t b, const char *fn) {
    supcon_status s = sc_check_tensor(l, mask, fn, "mask");
    if (s != SUPCON_OK) return s;
    if (mask->dtype != SUPCON_FLOAT32) return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: mask must be float32", fn);
    if (mask->ndim != 2 || mask->shape[0] != b || mask->shape[1] != b)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: mask must be [%lld, %lld] (batch size squared)", fn,
                        (long long)b, (long long)b);
    s = sc_check_finite(l, mask, fn, "mask", b);
    if (s != SUPCON_OK) return s;
    float *host = malloc(mask->bytes);
    if (!host) return sc_error(l->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    s = supcon_tensor_download(mask, host, mask->bytes);
    for (int64_t i = 0; s == SUPCON_OK && i < mask->numel; i++)
        if (host[i] < 0.0f)
            s = sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                         "%s: mask[%lld][%lld] = %g is negative; weights must be >= 0", fn,
                         (long long)(i / b), (long long)(i % b), (double)host[i]);
    free(host);
    return s;
}

static supcon_status sc_run(supcon_loss *l, supcon_loss_problem *p, float *value, const char *fn) {
    p->temperature = l->cfg.temperature;
    p->base_temperature = l->cfg.base_temperature;
    p->denominator = (int)l->cfg.denominator;
    p->aggregation = (int)l->cfg.aggregation;
    double v = 0.0;
    const double t0 = sc_prof_begin(l->ctx);
    supcon_status s = l->ctx->ops->loss(l->ctx->state, p, &v);
    sc_prof_end(l->ctx, p->grad_anchors || p->grad_contrast ? "supcon loss with gradients" : "supcon loss", t0);
    sc_note_peak(l->ctx);
    if (s != SUPCON_OK) return sc_backend_error(l->ctx, s, fn);
    *value = (float)v;
    return SUPCON_OK;
}

/* ---- batch form ------------------------------------------------------------------------- */

supcon_status supcon_loss_forward(supcon_loss *l, const supcon_tensor *features, const supcon_tensor *labels,
                                  const supcon_tensor *mask, float *value) {
    static const char fn[] = "supcon_loss_forward";
    if (!l) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: loss is NULL", fn);
    l->state = SC_LOSS_NONE;
    if (!value) return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: value is NULL", fn);
    supcon_status s = sc_check_tensor(l, features, fn, "features");
    if (s != SUPCON_OK) return s;
    if (features->dtype != SUPCON_FLOAT32)
        return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: features must be float32", fn);
    if (features->ndim < 3)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE,
                        "%s: features must be [B, V, D] (at least 3 dims), got %d dims", fn, features->ndim);
    const int64_t b = features->shape[0], v = features->shape[1];
    int64_t d = 1;
    for (int i = 2; i < features->ndim; i++) d *= features->shape[i];
    if (b == 0 || v == 0 || d == 0)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: features [B=%lld, V=%lld, D=%lld] has an empty dimension",
                        fn, (long long)b, (long long)v, (long long)d);
    if (labels && mask)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: give labels or mask, not both", fn);
    s = sc_check_finite(l, features, fn, "features", d);
    if (s != SUPCON_OK) return s;

    const int64_t nc = b * v;
    const int64_t na = l->cfg.contrast_mode == SUPCON_CONTRAST_ONE ? b : nc;
    supcon_loss_problem p;
    memset(&p, 0, sizeof p);
    if (mask) {
        s = sc_check_mask(l, mask, b, fn);
        if (s != SUPCON_OK) return s;
        p.positive_kind = SUPCON_POSITIVE_MASK;
        p.mask = mask->data;
        p.mask_n = b;
    } else {
        if (labels) {
            s = sc_read_labels(l, labels, b, fn, "labels");
            if (s != SUPCON_OK) return s;
        } else if (l->host_labels_cap < (size_t)b * sizeof(int64_t)) {
            int64_t *q = realloc(l->host_labels, (size_t)b * sizeof(int64_t));
            if (!q) return sc_error(l->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
            l->host_labels = q;
            l->host_labels_cap = (size_t)b * sizeof(int64_t);
        }
        if (!labels) /* SimCLR: every sample is its own class */
            for (int64_t i = 0; i < b; i++) l->host_labels[i] = i;
        /* Row v*B + i of the contrast set is view v of sample i: tile the labels V times. */
        s = sc_reserve(l->ctx, &l->labels_c, (size_t)nc * sizeof(int64_t));
        for (int64_t k = 0; s == SUPCON_OK && k < v; k++) {
            s = l->ctx->ops->upload(l->ctx->state, (int64_t *)l->labels_c.ptr + k * b, l->host_labels,
                                    (size_t)b * sizeof(int64_t));
            if (s != SUPCON_OK) s = sc_backend_error(l->ctx, s, "uploading labels");
        }
        if (s != SUPCON_OK) return s;
        p.positive_kind = SUPCON_POSITIVE_LABELS;
        p.anchor_labels = l->labels_c.ptr;
        p.contrast_labels = l->labels_c.ptr;
    }
    const size_t rows_bytes = (size_t)nc * (size_t)d * sizeof(float);
    s = sc_reserve(l->ctx, &l->contrast, rows_bytes);
    if (s == SUPCON_OK && !l->cfg.forward_only) s = sc_reserve(l->ctx, &l->grad_c, rows_bytes);
    if (s != SUPCON_OK) return s;
    s = l->ctx->ops->swap_bv(l->ctx->state, l->contrast.ptr, features->data, b, v, d, 1);
    if (s != SUPCON_OK) return sc_backend_error(l->ctx, s, fn);

    p.anchors = l->contrast.ptr; /* anchors are the first na rows of the contrast set */
    p.contrast = l->contrast.ptr;
    p.n_anchors = na;
    p.n_contrast = nc;
    p.dim = d;
    p.exclude_self = 1;
    if (!l->cfg.forward_only) p.grad_anchors = p.grad_contrast = l->grad_c.ptr;
    s = sc_run(l, &p, value, fn);
    if (s != SUPCON_OK) return s;
    l->state = SC_LOSS_BATCH;
    l->ndim = features->ndim;
    memcpy(l->shape, features->shape, sizeof l->shape);
    l->b = b;
    l->v = v;
    l->d = d;
    return SUPCON_OK;
}

static supcon_status sc_check_ready(supcon_loss *l, enum sc_loss_state want, const char *fn) {
    if (l->cfg.forward_only)
        return sc_error(l->ctx, SUPCON_ERR_STATE, "%s: the loss was created with forward_only = 1", fn);
    if (l->state == SC_LOSS_NONE)
        return sc_error(l->ctx, SUPCON_ERR_STATE, "%s: no successful forward to take the gradient of", fn);
    if (l->state != want)
        return sc_error(l->ctx, SUPCON_ERR_STATE, "%s: the last forward was %s; call %s", fn,
                        want == SC_LOSS_BATCH ? "supcon_loss_forward_pair" : "supcon_loss_forward",
                        want == SC_LOSS_BATCH ? "supcon_loss_backward_pair" : "supcon_loss_backward");
    return SUPCON_OK;
}

supcon_status supcon_loss_backward(supcon_loss *l, supcon_tensor *grad) {
    static const char fn[] = "supcon_loss_backward";
    if (!l) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: loss is NULL", fn);
    supcon_status s = sc_check_tensor(l, grad, fn, "grad_features");
    if (s == SUPCON_OK) s = sc_check_ready(l, SC_LOSS_BATCH, fn);
    if (s != SUPCON_OK) return s;
    if (grad->dtype != SUPCON_FLOAT32) return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: grad_features must be float32", fn);
    if (grad->ndim != l->ndim || memcmp(grad->shape, l->shape, sizeof(int64_t) * (size_t)l->ndim) != 0)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: grad_features must have the shape of the features", fn);
    s = l->ctx->ops->swap_bv(l->ctx->state, grad->data, l->grad_c.ptr, l->b, l->v, l->d, 0);
    return s == SUPCON_OK ? s : sc_backend_error(l->ctx, s, fn);
}

/* ---- pair form (anchors and contrast given separately) ---------------------------------- */

static supcon_status sc_rows(supcon_loss *l, const supcon_tensor *t, const char *fn, const char *name,
                             int64_t *n, int64_t *d) {
    supcon_status s = sc_check_tensor(l, t, fn, name);
    if (s != SUPCON_OK) return s;
    if (t->dtype != SUPCON_FLOAT32) return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: %s must be float32", fn, name);
    if (t->ndim < 2)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: %s must be [N, D] (at least 2 dims), got %d dims", fn,
                        name, t->ndim);
    *n = t->shape[0];
    *d = t->numel / (t->shape[0] ? t->shape[0] : 1);
    if (*n == 0 || t->numel == 0)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: %s is empty", fn, name);
    return SUPCON_OK;
}

supcon_status supcon_loss_forward_pair(supcon_loss *l, const supcon_tensor *anchors,
                                       const supcon_tensor *anchor_labels, const supcon_tensor *contrast,
                                       const supcon_tensor *contrast_labels, float *value) {
    static const char fn[] = "supcon_loss_forward_pair";
    if (!l) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: loss is NULL", fn);
    l->state = SC_LOSS_NONE;
    if (!value) return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: value is NULL", fn);
    int64_t na = 0, nc = 0, da = 0, dc = 0;
    supcon_status s = sc_rows(l, anchors, fn, "anchors", &na, &da);
    if (s == SUPCON_OK) s = sc_rows(l, contrast, fn, "contrast", &nc, &dc);
    if (s != SUPCON_OK) return s;
    if (da != dc)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: anchors have D=%lld but contrast has D=%lld", fn,
                        (long long)da, (long long)dc);
    if (!anchor_labels || !contrast_labels)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL (the pair form needs labels)", fn,
                        anchor_labels ? "contrast_labels" : "anchor_labels");
    const int same = anchors == contrast ||
                     (anchors->data == contrast->data && anchors->numel == contrast->numel);
    s = sc_check_finite(l, anchors, fn, "anchors", da);
    if (s == SUPCON_OK && !same) s = sc_check_finite(l, contrast, fn, "contrast", dc);
    if (s == SUPCON_OK) s = sc_read_labels(l, anchor_labels, na, fn, "anchor_labels");
    if (s == SUPCON_OK) s = sc_upload(l, &l->labels_a, l->host_labels, (size_t)na * sizeof(int64_t));
    if (s == SUPCON_OK) s = sc_read_labels(l, contrast_labels, nc, fn, "contrast_labels");
    if (s == SUPCON_OK) s = sc_upload(l, &l->labels_c, l->host_labels, (size_t)nc * sizeof(int64_t));
    if (s == SUPCON_OK && !l->cfg.forward_only) {
        s = sc_reserve(l->ctx, &l->grad_c, (size_t)nc * (size_t)dc * sizeof(float));
        if (s == SUPCON_OK && !same) s = sc_reserve(l->ctx, &l->grad_a, (size_t)na * (size_t)da * sizeof(float));
    }
    if (s != SUPCON_OK) return s;

    supcon_loss_problem p;
    memset(&p, 0, sizeof p);
    p.anchors = anchors->data;
    p.contrast = contrast->data;
    p.n_anchors = na;
    p.n_contrast = nc;
    p.dim = da;
    p.exclude_self = same;
    p.positive_kind = SUPCON_POSITIVE_LABELS;
    p.anchor_labels = l->labels_a.ptr;
    p.contrast_labels = l->labels_c.ptr;
    if (!l->cfg.forward_only) {
        p.grad_contrast = l->grad_c.ptr;
        p.grad_anchors = same ? l->grad_c.ptr : l->grad_a.ptr;
    }
    s = sc_run(l, &p, value, fn);
    if (s != SUPCON_OK) return s;
    l->state = SC_LOSS_PAIR;
    l->na = na;
    l->nc = nc;
    l->d = da;
    l->same_tensor = same;
    return SUPCON_OK;
}

static supcon_status sc_copy_grad(supcon_loss *l, supcon_tensor *dst, const void *src, int64_t n,
                                  const char *fn, const char *name) {
    if (!dst) return SUPCON_OK;
    if (dst->ctx != l->ctx)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s belongs to another context", fn, name);
    if (dst->dtype != SUPCON_FLOAT32) return sc_error(l->ctx, SUPCON_ERR_DTYPE, "%s: %s must be float32", fn, name);
    if (dst->ndim < 2 || dst->shape[0] != n || dst->numel != n * l->d)
        return sc_error(l->ctx, SUPCON_ERR_SHAPE, "%s: %s must be [%lld, %lld]", fn, name, (long long)n,
                        (long long)l->d);
    supcon_status s = l->ctx->ops->copy(l->ctx->state, dst->data, src, dst->bytes);
    return s == SUPCON_OK ? s : sc_backend_error(l->ctx, s, fn);
}

supcon_status supcon_loss_backward_pair(supcon_loss *l, supcon_tensor *grad_anchors, supcon_tensor *grad_contrast) {
    static const char fn[] = "supcon_loss_backward_pair";
    if (!l) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: loss is NULL", fn);
    supcon_status s = sc_check_ready(l, SC_LOSS_PAIR, fn);
    if (s != SUPCON_OK) return s;
    s = sc_copy_grad(l, grad_anchors, l->same_tensor ? l->grad_c.ptr : l->grad_a.ptr, l->na, fn, "grad_anchors");
    if (s == SUPCON_OK) s = sc_copy_grad(l, grad_contrast, l->grad_c.ptr, l->nc, fn, "grad_contrast");
    return s;
}
