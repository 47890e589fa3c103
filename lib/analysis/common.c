/* What the analysis functions share: the parallel helper, the non-finite scan, top-k
 * selection with a total order, and brute-force kNN by blocked matrix products (our GEMM
 * of src/cpu on a pool, so the split over threads never changes a score). */
#include <math.h>
#include <stdlib.h>

#include "analysis_internal.h"
#include "error.h"
#include "gemm.h"

void sc_an_parallel(sc_pool *pool, int64_t n, int64_t grain, sc_pool_fn fn, void *arg) {
    if (n <= 0) return;
    if (!pool) {
        fn(arg, 0, n, 0);
        return;
    }
    sc_pool_run(pool, n, grain, fn, arg);
}

supcon_status sc_an_check_finite(supcon_context *ctx, const char *fn, const char *name, const float *a, size_t n,
                                 size_t d) {
    const size_t total = n * d;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(a[i]))
            return sc_error(ctx, SUPCON_ERR_NON_FINITE, "%s: %s holds NaN or infinity at row %zu, column %zu", fn,
                            name, i / d, i % d);
    return SUPCON_OK;
}

/* ---- top-k -------------------------------------------------------------------------------- */

/* a is worse than b: lower score, or equal score and larger index. */
static inline int sc_worse(float sa, int32_t ia, float sb, int32_t ib) {
    return sa < sb || (sa == sb && ia > ib);
}

static void sc_sift_down(sc_topk *h, int at, int size) {
    for (;;) {
        int l = 2 * at + 1, r = l + 1, w = at;
        if (l < size && sc_worse(h->score[l], h->index[l], h->score[w], h->index[w])) w = l;
        if (r < size && sc_worse(h->score[r], h->index[r], h->score[w], h->index[w])) w = r;
        if (w == at) return;
        float ts = h->score[at];
        int32_t ti = h->index[at];
        h->score[at] = h->score[w];
        h->index[at] = h->index[w];
        h->score[w] = ts;
        h->index[w] = ti;
        at = w;
    }
}

void sc_topk_push(sc_topk *h, float score, int32_t index) {
    if (h->size < h->k) {
        int at = h->size++;
        h->score[at] = score;
        h->index[at] = index;
        while (at > 0) { /* sift up: the worst rises to the root */
            int up = (at - 1) / 2;
            if (!sc_worse(h->score[at], h->index[at], h->score[up], h->index[up])) break;
            float ts = h->score[at];
            int32_t ti = h->index[at];
            h->score[at] = h->score[up];
            h->index[at] = h->index[up];
            h->score[up] = ts;
            h->index[up] = ti;
            at = up;
        }
        return;
    }
    if (!sc_worse(h->score[0], h->index[0], score, index)) return; /* not better than the worst */
    h->score[0] = score;
    h->index[0] = index;
    sc_sift_down(h, 0, h->size);
}

void sc_topk_sort(sc_topk *h) {
    /* Heap sort: repeatedly move the worst to the end, leaving the best first. */
    for (int end = h->size - 1; end > 0; end--) {
        float ts = h->score[0];
        int32_t ti = h->index[0];
        h->score[0] = h->score[end];
        h->index[0] = h->index[end];
        h->score[end] = ts;
        h->index[end] = ti;
        sc_sift_down(h, 0, end);
    }
}

/* ---- brute-force kNN ---------------------------------------------------------------------- */

enum { SC_KNN_QB = 256, SC_KNN_BB = 4096 };

typedef struct {
    int mode, k, exclude_self;
    size_t q0, b0, nb;
    const float *sim;        /* [QB, nb] products of this block */
    const float *bank_norm2, *query_norm2;
    float *heap_score;       /* [QB, k] */
    int32_t *heap_index;
    int *heap_size;
} sc_knn_job;

static void sc_knn_select(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_knn_job *j = raw;
    for (int64_t r = begin; r < end; r++) {
        size_t qi = j->q0 + (size_t)r;
        sc_topk h = {j->heap_score + r * j->k, j->heap_index + r * j->k, j->k, j->heap_size[r]};
        const float *s = j->sim + (size_t)r * j->nb;
        const float qn = j->mode == SC_KNN_L2 ? j->query_norm2[qi] : 0.0f;
        /* Most candidates lose to the worst kept one: test that first, without a call. */
        float worst = h.size == h.k ? h.score[0] : -INFINITY;
        for (size_t c = 0; c < j->nb; c++) {
            const size_t bi = j->b0 + c;
            const float score = j->mode == SC_KNN_L2 ? -(qn + j->bank_norm2[bi] - 2.0f * s[c]) : s[c];
            if (score < worst || (j->exclude_self && bi == qi)) continue;
            sc_topk_push(&h, score, (int32_t)bi);
            if (h.size == h.k) worst = h.score[0];
        }
        j->heap_size[r] = h.size;
    }
}

typedef struct {
    int k;
    size_t q0;
    float *heap_score;
    int32_t *heap_index;
    int *heap_size;
    int32_t *idx;
    float *score;
} sc_knn_out_job;

static void sc_knn_emit(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_knn_out_job *j = raw;
    for (int64_t r = begin; r < end; r++) {
        sc_topk h = {j->heap_score + r * j->k, j->heap_index + r * j->k, j->k, j->heap_size[r]};
        sc_topk_sort(&h);
        size_t qi = j->q0 + (size_t)r;
        for (int t = 0; t < j->k; t++) {
            j->idx[qi * (size_t)j->k + (size_t)t] = h.index[t];
            if (j->score) j->score[qi * (size_t)j->k + (size_t)t] = h.score[t];
        }
    }
}

supcon_status sc_an_knn(supcon_context *ctx, const char *fn, sc_pool *pool, int mode,
                        const float *bank, const float *bank_norm2, size_t n_bank,
                        const float *query, const float *query_norm2, size_t n_query, size_t d,
                        int k, int exclude_self, int32_t *idx, float *score) {
    sc_gemm_ws ws = {NULL, sc_gemm_ws_floats(sc_pool_size(pool))};
    ws.mem = malloc(ws.floats * sizeof(float));
    float *sim = malloc((size_t)SC_KNN_QB * SC_KNN_BB * sizeof(float));
    float *hs = malloc((size_t)SC_KNN_QB * (size_t)k * sizeof(float));
    int32_t *hi = malloc((size_t)SC_KNN_QB * (size_t)k * sizeof(int32_t));
    int *hn = malloc((size_t)SC_KNN_QB * sizeof(int));
    supcon_status st = SUPCON_OK;
    if (!ws.mem || !sim || !hs || !hi || !hn) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory for the neighbour search", fn);
        goto done;
    }
    for (size_t q0 = 0; q0 < n_query; q0 += SC_KNN_QB) {
        size_t qb = n_query - q0 < SC_KNN_QB ? n_query - q0 : SC_KNN_QB;
        for (size_t r = 0; r < qb; r++) hn[r] = 0;
        for (size_t b0 = 0; b0 < n_bank; b0 += SC_KNN_BB) {
            size_t nb = n_bank - b0 < SC_KNN_BB ? n_bank - b0 : SC_KNN_BB;
            sc_sgemm(pool, &ws, 0, 1, (int64_t)qb, (int64_t)nb, (int64_t)d, 1.0f, query + q0 * d,
                     (int64_t)d, bank + b0 * d, (int64_t)d, 0.0f, sim, (int64_t)nb);
            sc_knn_job job = {mode, k, exclude_self, q0, b0, nb, sim, bank_norm2, query_norm2, hs, hi, hn};
            sc_an_parallel(pool, (int64_t)qb, 4, sc_knn_select, &job);
        }
        sc_knn_out_job out = {k, q0, hs, hi, hn, idx, score};
        sc_an_parallel(pool, (int64_t)qb, 16, sc_knn_emit, &out);
    }
done:
    free(ws.mem);
    free(sim);
    free(hs);
    free(hi);
    free(hn);
    return st;
}
