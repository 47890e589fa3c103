/* The activation plan: for one batch shape (n, h, w), where each tensor the backward needs
 * lives in the arena, the three activation-gradient buffers, the head's scratch, and the
 * convolution workspace. The arena and workspace only grow, so a smaller or equal batch
 * never allocates; what a shape needs is in docs/model.md. */
#include <stdlib.h>

#include "error.h"
#include "model_internal.h"

static int64_t sc_take(int64_t *top, int64_t floats) {
    const int64_t at = *top;
    *top += (floats + SC_MODEL_ALIGN - 1) / SC_MODEL_ALIGN * SC_MODEL_ALIGN;
    return at;
}

static void sc_set_desc(sc_conv_layer *cv, int64_t n, int64_t h, int64_t w) {
    supcon_conv_desc *d = &cv->d;
    d->n = n;
    d->c_in = cv->c_in;
    d->h = h;
    d->w = w;
    d->c_out = cv->c_out;
    d->kh = d->kw = cv->k;
    d->stride_h = d->stride_w = cv->stride;
    d->pad_h = d->pad_w = cv->pad;
}

int64_t sc_model_final_extent(const supcon_model *m, int64_t h) {
    /* stages 2-4 stride 2 with k3/p1 (or k1/p0) convolutions: h -> (h - 1) / 2 + 1 */
    for (int s = 0; s < 3; s++) h = (h - 1) / 2 + 1;
    return h;
}

void sc_model_release_plan(supcon_model *m) {
    sc_free(m->ctx, m->arena, m->arena_bytes);
    sc_free(m->ctx, m->ws, m->ws_bytes);
    m->arena = NULL;
    m->ws = NULL;
    m->arena_bytes = m->ws_bytes = 0;
    free(m->host_labels);
    m->host_labels = NULL;
    m->host_labels_cap = 0;
    m->plan_n = m->plan_h = m->plan_w = 0;
}

static void sc_set_rows(supcon_tensor *t, int64_t rows, float *data) {
    t->shape[0] = rows;
    t->numel = rows * t->shape[1];
    t->bytes = (size_t)t->numel * sizeof(float);
    t->data = data;
}

supcon_status sc_model_plan(supcon_model *m, int64_t n, int64_t h, int64_t w, const char *fn) {
    if (n == m->plan_n && h == m->plan_h && w == m->plan_w) return SUPCON_OK;
    m->have_forward = 0;
    const supcon_backend_ops *ops = m->ctx->ops;
    void *state = m->ctx->state;
    int64_t top = 0, gmax = 0;
    size_t ws = 0;

    m->input = sc_take(&top, n * m->stem_conv.c_in * h * w); /* the backward's copy of x */
    sc_set_desc(&m->stem_conv, n, h, w);
    ws = ops->conv2d_workspace_bytes(state, &m->stem_conv.d);
    int64_t numel = n * m->stem_conv.c_out * h * w;
    m->stem_conv_out = sc_take(&top, numel);
    m->stem_relu_out = sc_take(&top, numel);
    m->stem_bn.save = sc_take(&top, 2 * m->stem_bn.c);
    gmax = numel;
    int64_t ch = h, cw = w;
    for (int bi = 0; bi < m->nblocks; bi++) {
        sc_block *b = &m->blocks[bi];
        const int64_t in_h = ch, in_w = cw;
        for (int j = 0; j < b->nconv; j++) {
            sc_conv_layer *cv = &b->conv[j];
            sc_set_desc(cv, n, ch, cw);
            size_t need = ops->conv2d_workspace_bytes(state, &cv->d);
            if (need > ws) ws = need;
            ch = supcon_conv_out_h(&cv->d);
            cw = supcon_conv_out_w(&cv->d);
            numel = n * cv->c_out * ch * cw;
            b->conv_out[j] = sc_take(&top, numel);
            if (j < b->nconv - 1) b->relu_out[j] = sc_take(&top, numel);
            else b->out = sc_take(&top, numel);
            b->bn[j].save = sc_take(&top, 2 * b->bn[j].c);
            if (numel > gmax) gmax = numel;
        }
        b->out_numel = numel;
        if (b->proj) {
            sc_set_desc(&b->sconv, n, in_h, in_w);
            size_t need = ops->conv2d_workspace_bytes(state, &b->sconv.d);
            if (need > ws) ws = need;
            b->sc_conv_out = sc_take(&top, numel);
            b->sc_bn_out = sc_take(&top, numel);
            b->sbn.save = sc_take(&top, 2 * b->sbn.c);
        }
    }
    m->final_h = ch;
    m->final_w = cw;

    const int64_t d = m->feat, f = m->cfg.feat_dim, k = m->cfg.num_classes;
    const int head = m->cfg.head != SUPCON_HEAD_NONE;
    m->feats = sc_take(&top, n * d);
    m->df = sc_take(&top, n * d);
    m->df2 = sc_take(&top, head && k > 0 ? n * d : 0);
    m->h1 = sc_take(&top, m->cfg.head == SUPCON_HEAD_MLP ? n * d : 0);
    m->dr1 = sc_take(&top, m->cfg.head == SUPCON_HEAD_MLP ? n * d : 0);
    m->h2 = sc_take(&top, head ? n * f : 0);
    m->z = sc_take(&top, head ? n * f : 0);
    m->dh2 = sc_take(&top, head ? n * f : 0);
    m->norms = sc_take(&top, head ? n : 0);
    m->logits = sc_take(&top, n * k);
    m->probs = sc_take(&top, n * k);
    m->labels = sc_take(&top, k > 0 ? 2 * n : 0); /* int64 */
    for (int i = 0; i < 3; i++) m->gbuf[i] = sc_take(&top, gmax);
    m->gbuf_numel = gmax;

    const size_t bytes = (size_t)top * sizeof(float);
    if (bytes > m->arena_bytes || ws > m->ws_bytes || (k > 0 && n > m->host_labels_cap)) {
        /* Grow to the new shape's needs; keep the larger of old and new. */
        const size_t new_arena = bytes > m->arena_bytes ? bytes : m->arena_bytes;
        const size_t new_ws = ws > m->ws_bytes ? ws : m->ws_bytes;
        const int64_t new_cap = n > m->host_labels_cap ? n : m->host_labels_cap;
        sc_model_release_plan(m);
        supcon_status s = sc_alloc(m->ctx, new_arena, (void **)&m->arena);
        if (s == SUPCON_OK) {
            m->arena_bytes = new_arena;
            s = sc_alloc(m->ctx, new_ws ? new_ws : 1, &m->ws);
        }
        if (s == SUPCON_OK) {
            m->ws_bytes = new_ws ? new_ws : 1;
            m->host_labels = malloc((size_t)(new_cap > 0 ? new_cap : 1) * sizeof(int64_t));
            if (!m->host_labels) s = sc_error(m->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
            m->host_labels_cap = new_cap;
        }
        if (s != SUPCON_OK) {
            sc_model_release_plan(m);
            sc_set_rows(&m->out_features, 0, NULL);
            sc_set_rows(&m->out_head, 0, NULL);
            sc_set_rows(&m->out_logits, 0, NULL);
            return sc_error(m->ctx, s, "%s: cannot allocate %zu bytes of activations for a batch of %lld x %lld x %lld",
                            fn, bytes + ws, (long long)n, (long long)h, (long long)w);
        }
    }
    m->plan_n = n;
    m->plan_h = h;
    m->plan_w = w;
    sc_set_rows(&m->out_features, 0, m->arena + m->feats);
    sc_set_rows(&m->out_head, 0, m->arena + m->z);
    sc_set_rows(&m->out_logits, 0, m->arena + m->logits);
    return SUPCON_OK;
}
