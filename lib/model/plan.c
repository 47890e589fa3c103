/* The activation plan: for one batch shape (n, h, w), where each tensor the backward needs
 * lives in the arena, the three activation-gradient buffers, the head's scratch, and the
 * convolution workspace; with the encoder in inference mode, a lean layout that rotates a
 * few buffers instead (the full one is laid out when a backward through the encoder comes).
 * The arena and workspace only grow, so a smaller or equal batch never allocates; what a
 * shape needs is in docs/model.md. */
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

/* Lays the arena out for (n, h, w). The input copy and the head's tensors come first, at the
 * same offsets in both layouts, so that growing from the lean layout to the full one can
 * keep them (keep: copy that prefix into the new arena, keep the last forward). Full: every
 * encoder activation the backward reads, and the three gradient buffers. Lean (encoder in
 * inference mode): the encoder's activations rotate through four buffers of the largest
 * activation's size: a block reads its input from one, writes its output into another, and
 * its convolutions and BNs alternate between two scratch buffers (t1: convolution outputs,
 * t2: BN outputs; every op reads one and writes the other, run.c's order). */
static supcon_status sc_layout(supcon_model *m, int64_t n, int64_t h, int64_t w, int lean, int keep,
                               const char *fn) {
    const supcon_backend_ops *ops = m->ctx->ops;
    void *state = m->ctx->state;
    int64_t top = 0, gmax = 0;
    size_t ws = 0;

    /* The prefix: input copy and the head's tensors. */
    m->input = sc_take(&top, n * m->stem_conv.c_in * h * w); /* the backward's copy of x */
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
    const int64_t prefix = top;

    /* Shapes, the workspace and the largest activation; BN statistics saved per layer. */
    sc_set_desc(&m->stem_conv, n, h, w);
    ws = ops->conv2d_workspace_bytes(state, &m->stem_conv.d);
    gmax = n * m->stem_conv.c_out * h * w;
    m->stem_bn.save = sc_take(&top, 2 * m->stem_bn.c);
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
            b->out_numel = n * cv->c_out * ch * cw;
            if (b->out_numel > gmax) gmax = b->out_numel;
            b->bn[j].save = sc_take(&top, 2 * b->bn[j].c);
        }
        if (b->proj) {
            sc_set_desc(&b->sconv, n, in_h, in_w);
            size_t need = ops->conv2d_workspace_bytes(state, &b->sconv.d);
            if (need > ws) ws = need;
            b->sbn.save = sc_take(&top, 2 * b->sbn.c);
        }
    }
    m->final_h = ch;
    m->final_w = cw;

    /* The encoder's activations. */
    if (lean) {
        const int64_t buf[2] = {sc_take(&top, gmax), sc_take(&top, gmax)};
        const int64_t t1 = sc_take(&top, gmax), t2 = sc_take(&top, gmax);
        m->stem_conv_out = t1;
        m->stem_relu_out = buf[0];
        for (int bi = 0; bi < m->nblocks; bi++) {
            sc_block *b = &m->blocks[bi];
            for (int j = 0; j < b->nconv; j++) {
                b->conv_out[j] = t1;
                if (j < b->nconv - 1) b->relu_out[j] = t2;
            }
            b->out = buf[(bi + 1) % 2]; /* the input is buf[bi % 2] */
            b->sc_conv_out = t1;
            /* The fused batch norm (run.c) computes the shortcut before the main path, which
             * runs through t1 and t2: the shortcut waits in the block's output buffer, which
             * the last batch norm reads and overwrites element by element. */
            b->sc_bn_out = ops->batchnorm_relu_forward_infer ? b->out : t2;
        }
        for (int i = 0; i < 3; i++) m->gbuf[i] = 0;
        m->gbuf_numel = 0;
    } else {
        int64_t numel = n * m->stem_conv.c_out * h * w;
        m->stem_conv_out = sc_take(&top, numel);
        m->stem_relu_out = sc_take(&top, numel);
        for (int bi = 0; bi < m->nblocks; bi++) {
            sc_block *b = &m->blocks[bi];
            for (int j = 0; j < b->nconv; j++) {
                numel = b->conv[j].d.n * b->conv[j].c_out * supcon_conv_out_h(&b->conv[j].d) *
                        supcon_conv_out_w(&b->conv[j].d);
                b->conv_out[j] = sc_take(&top, numel);
                if (j < b->nconv - 1) b->relu_out[j] = sc_take(&top, numel);
                else b->out = sc_take(&top, numel);
            }
            if (b->proj) {
                b->sc_conv_out = sc_take(&top, b->out_numel);
                b->sc_bn_out = sc_take(&top, b->out_numel);
            }
        }
        for (int i = 0; i < 3; i++) m->gbuf[i] = sc_take(&top, gmax);
        m->gbuf_numel = gmax;
    }

    const size_t bytes = (size_t)top * sizeof(float);
    if (bytes > m->arena_bytes || ws > m->ws_bytes || (k > 0 && n > m->host_labels_cap)) {
        /* Grow to the new shape's needs; keep the larger of old and new. */
        const size_t new_arena = bytes > m->arena_bytes ? bytes : m->arena_bytes;
        const size_t new_ws = ws > m->ws_bytes ? ws : m->ws_bytes;
        const int64_t new_cap = n > m->host_labels_cap ? n : m->host_labels_cap;
        float *old = m->arena;
        const size_t old_bytes = m->arena_bytes;
        supcon_status s = SUPCON_OK;
        if (keep) { /* the new arena first, then the prefix across, then the rest released */
            float *arena = NULL;
            s = sc_alloc(m->ctx, new_arena, (void **)&arena);
            if (s == SUPCON_OK) s = ops->copy(state, arena, old, (size_t)prefix * sizeof(float));
            if (s != SUPCON_OK) {
                sc_free(m->ctx, arena, new_arena);
                return sc_error(m->ctx, s, "%s: cannot allocate %zu bytes of activations for the backward", fn, bytes);
            }
            m->arena = NULL;
            m->arena_bytes = 0;
            sc_free(m->ctx, old, old_bytes);
            m->arena = arena;
            m->arena_bytes = new_arena;
            if (new_ws > m->ws_bytes) {
                sc_free(m->ctx, m->ws, m->ws_bytes);
                m->ws = NULL;
                m->ws_bytes = 0;
                s = sc_alloc(m->ctx, new_ws, &m->ws);
                if (s == SUPCON_OK) m->ws_bytes = new_ws;
            }
        } else {
            sc_model_release_plan(m);
            s = sc_alloc(m->ctx, new_arena, (void **)&m->arena);
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
        }
        if (s != SUPCON_OK) {
            sc_model_release_plan(m);
            m->have_forward = 0;
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
    m->plan_lean = lean;
    const int64_t rows = keep ? m->fwd_n : 0;
    sc_set_rows(&m->out_features, rows, m->arena + m->feats);
    sc_set_rows(&m->out_head, rows, m->arena + m->z);
    sc_set_rows(&m->out_logits, rows, m->arena + m->logits);
    return SUPCON_OK;
}

supcon_status sc_model_plan(supcon_model *m, int64_t n, int64_t h, int64_t w, const char *fn) {
    const int lean = !sc_model_encoder_train(m);
    if (n == m->plan_n && h == m->plan_h && w == m->plan_w && lean == m->plan_lean) return SUPCON_OK;
    m->have_forward = 0;
    return sc_layout(m, n, h, w, lean, 0, fn);
}

supcon_status sc_model_plan_full(supcon_model *m, const char *fn) {
    if (!m->plan_lean) return SUPCON_OK;
    return sc_layout(m, m->plan_n, m->plan_h, m->plan_w, 0, 1, fn);
}
