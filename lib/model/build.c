/* Building a model: the CIFAR-style ResNet of SPEC §2 laid out as layer descriptions, its
 * parameter table in PyTorch's state_dict order with one flat buffer each for parameters,
 * gradients and BN statistics, and the seeded initialisation. Forward/backward are in run.c,
 * the activation plan in plan.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_internal.h"
#include "rng.h"

supcon_model_config supcon_model_config_default(void) {
    supcon_model_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.arch = SUPCON_RESNET50;
    c.in_channels = 3;
    c.width = 64;
    c.head = SUPCON_HEAD_MLP;
    c.feat_dim = 128;
    c.num_classes = 0;
    c.freeze_encoder = 0;
    c.zero_init_residual = 0;
    c.bn_momentum = 0.1f;
    c.bn_eps = 1e-5f;
    return c;
}

static const char *const sc_arch_names[] = {"resnet18", "resnet34", "resnet50", "resnet101"};

const char *supcon_arch_name(supcon_arch arch) {
    return (unsigned)arch < 4 ? sc_arch_names[arch] : "?";
}

supcon_status supcon_arch_from_name(const char *name, supcon_arch *out) {
    if (!name || !out) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_arch_from_name: NULL argument");
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, sc_arch_names[i])) {
            *out = (supcon_arch)i;
            return SUPCON_OK;
        }
    return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                    "supcon_arch_from_name: \"%s\" is not resnet18, resnet34, resnet50 or resnet101", name);
}

/* ---- the table ------------------------------------------------------------------------- */

/* Appends an entry; PARAMETERs get the next flat offset, buffers the next buffer slot.
 * Returns the offset (or buffer index), -1 when out of memory. */
static int64_t sc_add(supcon_model *m, supcon_param_kind kind, supcon_dtype dtype, int ndim, const int64_t *shape,
                      const char *fmt, ...) SC_PRINTF(6, 7);

static int64_t sc_add(supcon_model *m, supcon_param_kind kind, supcon_dtype dtype, int ndim, const int64_t *shape,
                      const char *fmt, ...) {
    if (m->nentries == m->entries_cap) {
        int64_t cap = m->entries_cap ? 2 * m->entries_cap : 64;
        sc_entry *e = realloc(m->entries, (size_t)cap * sizeof *e);
        if (!e) return -1;
        m->entries = e;
        char **nm = realloc(m->names, (size_t)cap * sizeof *nm);
        if (!nm) return -1;
        m->names = nm;
        m->entries_cap = cap;
    }
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *copy = malloc(strlen(name) + 1);
    if (!copy) return -1;
    strcpy(copy, name);
    sc_entry *e = &m->entries[m->nentries];
    memset(e, 0, sizeof *e);
    m->names[m->nentries++] = copy;
    e->info.name = copy;
    e->info.kind = kind;
    e->info.dtype = dtype;
    e->info.ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->info.shape[i] = shape[i];
        numel *= shape[i];
    }
    e->info.numel = numel;
    if (kind == SUPCON_PARAM_PARAMETER) {
        e->info.offset = m->nparams;
        m->nparams += numel;
        return e->info.offset;
    }
    e->info.offset = -1;
    if (dtype == SUPCON_INT64) {
        e->buf_offset = m->nibuf;
        m->nibuf += numel;
    } else {
        e->buf_offset = m->nfbuf;
        m->nfbuf += numel;
    }
    return e->buf_offset;
}

#define SC_TRY(expr)                                                                                   \
    do {                                                                                               \
        if ((expr) < 0) return SUPCON_ERR_OUT_OF_MEMORY;                                               \
    } while (0)

static supcon_status sc_add_conv(supcon_model *m, sc_conv_layer *cv, int64_t c_in, int64_t c_out, int64_t k,
                                 int64_t stride, const char *prefix) {
    cv->c_in = c_in;
    cv->c_out = c_out;
    cv->k = k;
    cv->stride = stride;
    cv->pad = k / 2;
    const int64_t shape[4] = {c_out, c_in, k, k};
    SC_TRY(cv->weight = sc_add(m, SUPCON_PARAM_PARAMETER, SUPCON_FLOAT32, 4, shape, "%s.weight", prefix));
    return SUPCON_OK;
}

static supcon_status sc_add_bn(supcon_model *m, sc_bn_layer *bn, int64_t c, const char *prefix) {
    bn->c = c;
    SC_TRY(bn->gamma = sc_add(m, SUPCON_PARAM_PARAMETER, SUPCON_FLOAT32, 1, &c, "%s.weight", prefix));
    SC_TRY(bn->beta = sc_add(m, SUPCON_PARAM_PARAMETER, SUPCON_FLOAT32, 1, &c, "%s.bias", prefix));
    SC_TRY(bn->rmean = sc_add(m, SUPCON_PARAM_BUFFER, SUPCON_FLOAT32, 1, &c, "%s.running_mean", prefix));
    SC_TRY(bn->rvar = sc_add(m, SUPCON_PARAM_BUFFER, SUPCON_FLOAT32, 1, &c, "%s.running_var", prefix));
    SC_TRY(bn->nbt = sc_add(m, SUPCON_PARAM_BUFFER, SUPCON_INT64, 0, NULL, "%s.num_batches_tracked", prefix));
    return SUPCON_OK;
}

static supcon_status sc_add_linear(supcon_model *m, sc_linear *l, int64_t in, int64_t out, const char *prefix) {
    l->in = in;
    l->out = out;
    const int64_t shape[2] = {out, in};
    SC_TRY(l->weight = sc_add(m, SUPCON_PARAM_PARAMETER, SUPCON_FLOAT32, 2, shape, "%s.weight", prefix));
    SC_TRY(l->bias = sc_add(m, SUPCON_PARAM_PARAMETER, SUPCON_FLOAT32, 1, &out, "%s.bias", prefix));
    return SUPCON_OK;
}

/* The layers and the table, in the order the reference's modules register them. */
static supcon_status sc_build_layers(supcon_model *m) {
    static const int depth[4][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}};
    const supcon_model_config *c = &m->cfg;
    const int bottleneck = c->arch == SUPCON_RESNET50 || c->arch == SUPCON_RESNET101;
    const int64_t expansion = bottleneck ? 4 : 1;
    const int64_t width = c->width;
    m->nblocks = 0;
    for (int s = 0; s < 4; s++) m->nblocks += depth[c->arch][s];
    m->blocks = calloc((size_t)m->nblocks, sizeof *m->blocks);
    if (!m->blocks) return SUPCON_ERR_OUT_OF_MEMORY;

    supcon_status st = sc_add_conv(m, &m->stem_conv, c->in_channels, width, 3, 1, "encoder.conv1");
    if (st == SUPCON_OK) st = sc_add_bn(m, &m->stem_bn, width, "encoder.bn1");
    int64_t in_planes = width;
    int bi = 0;
    char p[128];
    for (int s = 0; s < 4 && st == SUPCON_OK; s++) {
        const int64_t planes = width << s;
        for (int k = 0; k < depth[c->arch][s] && st == SUPCON_OK; k++) {
            sc_block *b = &m->blocks[bi++];
            const int64_t stride = (k == 0 && s > 0) ? 2 : 1;
            b->nconv = bottleneck ? 3 : 2;
            for (int j = 0; j < b->nconv && st == SUPCON_OK; j++) {
                int64_t cin, cout, ks, cstride;
                if (bottleneck) {
                    cin = j == 0 ? in_planes : planes;
                    cout = j == 2 ? planes * expansion : planes;
                    ks = j == 1 ? 3 : 1;
                    cstride = j == 1 ? stride : 1;
                } else {
                    cin = j == 0 ? in_planes : planes;
                    cout = planes;
                    ks = 3;
                    cstride = j == 0 ? stride : 1;
                }
                snprintf(p, sizeof p, "encoder.layer%d.%d.conv%d", s + 1, k, j + 1);
                st = sc_add_conv(m, &b->conv[j], cin, cout, ks, cstride, p);
                if (st != SUPCON_OK) break;
                snprintf(p, sizeof p, "encoder.layer%d.%d.bn%d", s + 1, k, j + 1);
                st = sc_add_bn(m, &b->bn[j], cout, p);
            }
            b->proj = stride != 1 || in_planes != planes * expansion;
            if (b->proj && st == SUPCON_OK) {
                snprintf(p, sizeof p, "encoder.layer%d.%d.shortcut.0", s + 1, k);
                st = sc_add_conv(m, &b->sconv, in_planes, planes * expansion, 1, stride, p);
                snprintf(p, sizeof p, "encoder.layer%d.%d.shortcut.1", s + 1, k);
                if (st == SUPCON_OK) st = sc_add_bn(m, &b->sbn, planes * expansion, p);
            }
            in_planes = planes * expansion;
        }
    }
    m->feat = in_planes;
    m->nenc = m->nparams;
    if (st == SUPCON_OK && c->head == SUPCON_HEAD_MLP) {
        st = sc_add_linear(m, &m->head0, m->feat, m->feat, "head.0");
        if (st == SUPCON_OK) st = sc_add_linear(m, &m->head2, m->feat, c->feat_dim, "head.2");
    } else if (st == SUPCON_OK && c->head == SUPCON_HEAD_LINEAR) {
        st = sc_add_linear(m, &m->head2, m->feat, c->feat_dim, "head");
    }
    if (st == SUPCON_OK && c->num_classes > 0) st = sc_add_linear(m, &m->fc, m->feat, c->num_classes, "fc");
    return st;
}

/* ---- initialisation (SPEC §2) ------------------------------------------------------------ */

/* The stream of a parameter: a hash of its name, so adding layers never shifts another's. */
static uint64_t sc_name_stream(const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) h = (h ^ *s) * 1099511628211ull;
    return sc_rng_mix(0x5375704d6f64656cull /* "SupModel" */, h);
}

/* Elements 2j and 2j+1 of a parameter come from Philox block j of its stream: two 53-bit
 * uniforms (words 0-1 and 2-3, as sc_rng_uniform reads them), used as they are (uniform
 * init, mapped to [-1, 1)) or as one Box-Muller pair (normal init: element 2j is exactly
 * sc_rng_normal_at(seed, stream, j), element 2j+1 its sine partner). One block per two
 * elements halves the cost of sc_rng_normal_at per element; any element is still a pure
 * function of (seed, name, index). */
static void sc_pair(uint64_t seed, uint64_t stream, uint64_t j, int normal, double out[2]) {
    uint32_t w[4];
    sc_rng_block(seed, stream, j, w);
    const double u1 = (double)((((uint64_t)w[1] << 32) | w[0]) >> 11) * 0x1.0p-53;
    const double u2 = (double)((((uint64_t)w[3] << 32) | w[2]) >> 11) * 0x1.0p-53;
    if (normal) {
        const double r = sqrt(-2.0 * log(1.0 - u1)), t = 6.283185307179586476925 * u2;
        out[0] = r * cos(t);
        out[1] = r * sin(t);
    } else {
        out[0] = 2.0 * u1 - 1.0;
        out[1] = 2.0 * u2 - 1.0;
    }
}

/* Writes host values into backend memory in pieces, so any backend works. */
#define SC_CHUNK 4096

static int sc_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static supcon_status sc_init_entry(supcon_model *m, const sc_entry *e, int zero_last_bn, float *chunk) {
    const supcon_param_info *in = &e->info;
    supcon_context *ctx = m->ctx;
    if (in->dtype == SUPCON_INT64) {
        int64_t zero = 0;
        return ctx->ops->upload(ctx->state, m->ibuf + e->buf_offset, &zero, sizeof zero);
    }
    float *dst = in->kind == SUPCON_PARAM_PARAMETER ? m->params + in->offset : m->fbuf + e->buf_offset;
    const uint64_t seed = ctx->seed, stream = sc_name_stream(in->name);
    enum { CONV, LINEAR, ONES, ZEROS } how;
    double scale = 0.0;
    if (in->ndim == 4) {
        how = CONV;
        scale = sqrt(2.0 / (double)(in->shape[0] * in->shape[2] * in->shape[3])); /* fan_out, relu */
    } else if (in->ndim == 2 || (in->ndim == 1 && !strncmp(in->name, "head", 4)) ||
               (in->ndim == 1 && !strncmp(in->name, "fc.", 3))) {
        how = LINEAR;
        scale = 1.0 / sqrt((double)m->feat); /* every Linear here reads d inputs */
    } else if (sc_ends_with(in->name, ".weight") || sc_ends_with(in->name, ".running_var")) {
        how = zero_last_bn ? ZEROS : ONES;
    } else {
        how = ZEROS; /* BN bias, running_mean */
    }
    for (int64_t k0 = 0; k0 < in->numel; k0 += SC_CHUNK) { /* SC_CHUNK is even: pairs stay whole */
        const int64_t len = in->numel - k0 < SC_CHUNK ? in->numel - k0 : SC_CHUNK;
        for (int64_t k = 0; k < len; k += 2) {
            double v[2] = {0.0, 0.0};
            if (how == CONV || how == LINEAR) {
                sc_pair(seed, stream, (uint64_t)(k0 + k) / 2, how == CONV, v);
                v[0] *= scale;
                v[1] *= scale;
            } else if (how == ONES) {
                v[0] = v[1] = 1.0;
            }
            chunk[k] = (float)v[0];
            if (k + 1 < len) chunk[k + 1] = (float)v[1];
        }
        supcon_status s = ctx->ops->upload(ctx->state, dst + k0, chunk, (size_t)len * sizeof(float));
        if (s != SUPCON_OK) return s;
    }
    return SUPCON_OK;
}

static supcon_status sc_init_values(supcon_model *m) {
    float *chunk = malloc(SC_CHUNK * sizeof(float));
    if (!chunk) return SUPCON_ERR_OUT_OF_MEMORY;
    /* The BN weight a block's last BN: bn2 (basic) or bn3 (bottleneck). */
    const char *last_bn = m->blocks[0].nconv == 3 ? ".bn3.weight" : ".bn2.weight";
    supcon_status s = SUPCON_OK;
    for (int64_t i = 0; i < m->nentries && s == SUPCON_OK; i++) {
        const char *name = m->entries[i].info.name;
        const int zero = m->cfg.zero_init_residual && !strncmp(name, "encoder.layer", 13) && sc_ends_with(name, last_bn);
        s = sc_init_entry(m, &m->entries[i], zero, chunk);
    }
    free(chunk);
    return s;
}

supcon_status sc_model_fill_zero(supcon_model *m, void *dst, size_t bytes) {
    const supcon_backend_ops *ops = m->ctx->ops;
    if (ops->fill_zero) return ops->fill_zero(m->ctx->state, dst, bytes);
    static const float zeros[SC_CHUNK];
    for (size_t o = 0; o < bytes; o += sizeof zeros) {
        size_t len = bytes - o < sizeof zeros ? bytes - o : sizeof zeros;
        supcon_status s = m->ctx->ops->upload(m->ctx->state, (char *)dst + o, zeros, len);
        if (s != SUPCON_OK) return s;
    }
    return SUPCON_OK;
}

/* ---- views ------------------------------------------------------------------------------- */

static void sc_view(supcon_tensor *t, supcon_context *ctx, supcon_dtype dtype, int ndim, const int64_t *shape,
                    void *data) {
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->bytes = (size_t)t->numel * sc_dtype_size(dtype);
    t->data = data;
    t->owned = 0;
}

void sc_model_refresh_frozen(supcon_model *m) {
    for (int64_t i = 0; i < m->nentries; i++) {
        sc_entry *e = &m->entries[i];
        if (e->info.kind != SUPCON_PARAM_PARAMETER) continue;
        e->info.trainable = !(m->cfg.freeze_encoder && e->info.offset < m->nenc);
        e->info.grad = e->info.trainable ? &e->grad_view : NULL;
    }
}

static supcon_status sc_alloc_memory(supcon_model *m) {
    supcon_context *ctx = m->ctx;
    supcon_status s = sc_alloc(ctx, (size_t)m->nparams * sizeof(float), (void **)&m->params);
    if (s == SUPCON_OK) s = sc_alloc(ctx, (size_t)m->nparams * sizeof(float), (void **)&m->grads);
    if (s == SUPCON_OK) s = sc_alloc(ctx, (size_t)m->nfbuf * sizeof(float), (void **)&m->fbuf);
    if (s == SUPCON_OK) s = sc_alloc(ctx, (size_t)m->nibuf * sizeof(int64_t), (void **)&m->ibuf);
    if (s != SUPCON_OK) return s;
    for (int64_t i = 0; i < m->nentries; i++) {
        sc_entry *e = &m->entries[i];
        supcon_param_info *in = &e->info;
        if (in->kind == SUPCON_PARAM_PARAMETER) {
            sc_view(&e->value_view, ctx, SUPCON_FLOAT32, in->ndim, in->shape, m->params + in->offset);
            sc_view(&e->grad_view, ctx, SUPCON_FLOAT32, in->ndim, in->shape, m->grads + in->offset);
        } else if (in->dtype == SUPCON_INT64) {
            sc_view(&e->value_view, ctx, SUPCON_INT64, in->ndim, in->shape, m->ibuf + e->buf_offset);
        } else {
            sc_view(&e->value_view, ctx, SUPCON_FLOAT32, in->ndim, in->shape, m->fbuf + e->buf_offset);
        }
        in->value = &e->value_view;
    }
    sc_view(&m->flat_params, ctx, SUPCON_FLOAT32, 1, &m->nparams, m->params);
    sc_view(&m->flat_grads, ctx, SUPCON_FLOAT32, 1, &m->nparams, m->grads);
    const int64_t zero_rows[2] = {0, m->feat};
    sc_view(&m->out_features, ctx, SUPCON_FLOAT32, 2, zero_rows, m->arena);
    const int64_t zero_head[2] = {0, m->cfg.feat_dim};
    sc_view(&m->out_head, ctx, SUPCON_FLOAT32, 2, zero_head, m->arena);
    const int64_t zero_logits[2] = {0, m->cfg.num_classes};
    sc_view(&m->out_logits, ctx, SUPCON_FLOAT32, 2, zero_logits, m->arena);
    sc_model_refresh_frozen(m);
    return sc_model_fill_zero(m, m->grads, (size_t)m->nparams * sizeof(float));
}

supcon_status sc_model_build(supcon_model *m) {
    supcon_status s = sc_build_layers(m);
    if (s != SUPCON_OK) return sc_error(m->ctx, s, "supcon_model_create: out of memory for the layer table");
    s = sc_alloc_memory(m);
    if (s == SUPCON_OK) s = sc_init_values(m);
    if (s != SUPCON_OK) return sc_backend_error(m->ctx, s, "supcon_model_create: allocating parameters");
    return SUPCON_OK;
}
