/* Quality measures of features and embeddings: kNN classification accuracy (cosine
 * similarity, majority vote) and trustworthiness (Venna & Kaski, scikit-learn's formula).
 * Both brute force on a worker pool; no index structures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"
#include "error.h"
#include "supcon/analysis.h"

/* ---- kNN accuracy ------------------------------------------------------------------------ */

#define SC_KNN_FN "supcon_knn_accuracy"

static supcon_status sc_check_labels(supcon_context *ctx, const int32_t *labels, size_t n, int num_classes,
                                     const char *name) {
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            SC_KNN_FN ": %s[%zu] = %d is outside [0, num_classes = %d)", name, i,
                            (int)labels[i], num_classes);
    return SUPCON_OK;
}

/* Unit rows of a [n, d] into out; a zero row is an error naming it. */
static supcon_status sc_normalise(supcon_context *ctx, const float *a, size_t n, size_t d, float *out,
                                  const char *name) {
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t t = 0; t < d; t++) s += (double)a[i * d + t] * a[i * d + t];
        if (!(s > 0.0))
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            SC_KNN_FN ": %s row %zu is all zeros; cosine similarity needs a non-zero row",
                            name, i);
        const double inv = 1.0 / sqrt(s);
        for (size_t t = 0; t < d; t++) out[i * d + t] = (float)(a[i * d + t] * inv);
    }
    return SUPCON_OK;
}

typedef struct {
    const int32_t *idx, *bank_labels, *query_labels;
    const float *score;
    int k, num_classes;
    int *votes;     /* [workers, num_classes] */
    double *sums;   /* [workers, num_classes] */
    unsigned char *hit;
} sc_vote_job;

static void sc_vote(void *raw, int64_t begin, int64_t end, int worker) {
    sc_vote_job *j = raw;
    int *votes = j->votes + (size_t)worker * (size_t)j->num_classes;
    double *sums = j->sums + (size_t)worker * (size_t)j->num_classes;
    for (int64_t q = begin; q < end; q++) {
        const int32_t *nb = j->idx + (size_t)q * (size_t)j->k;
        const float *sc = j->score + (size_t)q * (size_t)j->k;
        for (int t = 0; t < j->k; t++) { /* reset only what the last query touched */
            votes[j->bank_labels[nb[t]]] = 0;
            sums[j->bank_labels[nb[t]]] = 0.0;
        }
        for (int t = 0; t < j->k; t++) { /* best first: a fixed order for the sums */
            votes[j->bank_labels[nb[t]]]++;
            sums[j->bank_labels[nb[t]]] += sc[t];
        }
        int best = -1;
        for (int t = 0; t < j->k; t++) {
            int c = j->bank_labels[nb[t]];
            if (best < 0 || votes[c] > votes[best] ||
                (votes[c] == votes[best] && (sums[c] > sums[best] || (sums[c] == sums[best] && c < best))))
                best = c;
        }
        j->hit[q] = best == j->query_labels[q];
    }
}

supcon_status supcon_knn_accuracy(supcon_context *ctx, const float *bank, const int32_t *bank_labels, size_t n_bank,
                                  const float *query, const int32_t *query_labels, size_t n_query, size_t d, int k,
                                  int num_classes, int exclude_self, double *top1) {
#define SC_NULL(p) \
    if (!(p)) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_KNN_FN ": " #p " is NULL")
    SC_NULL(bank);
    SC_NULL(bank_labels);
    SC_NULL(query);
    SC_NULL(query_labels);
    SC_NULL(top1);
#undef SC_NULL
    if (n_bank == 0 || n_query == 0 || d == 0)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_KNN_FN ": n_bank = %zu, n_query = %zu, d = %zu: none may be 0", n_bank, n_query, d);
    if (n_bank > INT32_MAX || n_query > INT32_MAX || d > INT32_MAX)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_KNN_FN ": n_bank, n_query and d must each be at most %d", INT32_MAX);
    if (exclude_self != 0 && exclude_self != 1)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_KNN_FN ": exclude_self %d must be 0 or 1", exclude_self);
    if (exclude_self && n_bank != n_query)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_KNN_FN ": exclude_self needs the same set: n_bank %zu != n_query %zu", n_bank, n_query);
    if (k < 1 || (size_t)k > n_bank - (size_t)exclude_self)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_KNN_FN ": k = %d must be in 1..%zu", k,
                        n_bank - (size_t)exclude_self);
    if (num_classes < 1)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_KNN_FN ": num_classes %d must be >= 1", num_classes);
    supcon_status st = sc_check_labels(ctx, bank_labels, n_bank, num_classes, "bank_labels");
    if (st != SUPCON_OK) return st;
    st = sc_check_labels(ctx, query_labels, n_query, num_classes, "query_labels");
    if (st != SUPCON_OK) return st;
    if ((st = sc_an_check_finite(ctx, SC_KNN_FN, "bank", bank, n_bank, d)) != SUPCON_OK) return st;
    if ((st = sc_an_check_finite(ctx, SC_KNN_FN, "query", query, n_query, d)) != SUPCON_OK) return st;

    const int same = query == bank;
    sc_pool *pool = sc_pool_create(0);
    float *bn = malloc(n_bank * d * sizeof *bn);
    float *qn = same ? bn : malloc(n_query * d * sizeof *qn);
    int32_t *idx = malloc(n_query * (size_t)k * sizeof *idx);
    float *score = malloc(n_query * (size_t)k * sizeof *score);
    unsigned char *hit = malloc(n_query);
    int workers = pool ? sc_pool_size(pool) : 1;
    int *votes = calloc((size_t)workers * (size_t)num_classes, sizeof *votes);
    double *sums = calloc((size_t)workers * (size_t)num_classes, sizeof *sums);
    if (!pool || !bn || !qn || !idx || !score || !hit || !votes || !sums) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, SC_KNN_FN ": out of memory (or threads) for %zu x %zu rows",
                      n_query, n_bank);
        goto done;
    }
    st = sc_normalise(ctx, bank, n_bank, d, bn, "bank");
    if (st == SUPCON_OK && !same) st = sc_normalise(ctx, query, n_query, d, qn, "query");
    if (st != SUPCON_OK) goto done;
    st = sc_an_knn(ctx, SC_KNN_FN, pool, SC_KNN_DOT, bn, NULL, n_bank, qn, NULL, n_query, d, k, exclude_self, idx,
                   score);
    if (st != SUPCON_OK) goto done;
    sc_vote_job job = {idx, bank_labels, query_labels, score, k, num_classes, votes, sums, hit};
    sc_an_parallel(pool, (int64_t)n_query, 64, sc_vote, &job);
    size_t correct = 0;
    for (size_t q = 0; q < n_query; q++) correct += hit[q];
    *top1 = 100.0 * (double)correct / (double)n_query;
done:
    if (pool) sc_pool_destroy(pool);
    if (qn != bn) free(qn);
    free(bn);
    free(idx);
    free(score);
    free(hit);
    free(votes);
    free(sums);
    return st;
}

/* ---- trustworthiness ------------------------------------------------------------------- */

#define SC_TW_FN "supcon_trustworthiness"

typedef struct {
    const float *x, *y;
    size_t n, d, e;
    int k;
    double *dx;       /* [workers, n] */
    double *best_d;   /* [workers, k] */
    size_t *best_i;   /* [workers, k] */
    double *penalty;  /* [n] */
} sc_tw_job;

static double sc_dist2(const float *a, const float *b, size_t d) {
    double s = 0.0;
    for (size_t t = 0; t < d; t++) {
        double df = (double)a[t] - (double)b[t];
        s += df * df;
    }
    return s;
}

static void sc_tw_rows(void *raw, int64_t begin, int64_t end, int worker) {
    sc_tw_job *j = raw;
    const size_t n = j->n, k = (size_t)j->k;
    double *dx = j->dx + (size_t)worker * n, *bd = j->best_d + (size_t)worker * k;
    size_t *bi = j->best_i + (size_t)worker * k;
    for (int64_t ii = begin; ii < end; ii++) {
        const size_t i = (size_t)ii;
        /* The k nearest in the embedding, kept sorted by (distance, index). */
        size_t kept = 0;
        for (size_t o = 0; o < n; o++) {
            if (o == i) continue;
            double v = sc_dist2(j->y + i * j->e, j->y + o * j->e, j->e);
            if (kept == k && !(v < bd[k - 1])) continue; /* o > every kept index: ties lose */
            size_t at = kept < k ? kept++ : k - 1;
            while (at > 0 && bd[at - 1] > v) {
                bd[at] = bd[at - 1];
                bi[at] = bi[at - 1];
                at--;
            }
            bd[at] = v;
            bi[at] = o;
        }
        for (size_t o = 0; o < n; o++) dx[o] = o == i ? 0.0 : sc_dist2(j->x + i * j->d, j->x + o * j->d, j->d);
        double pen = 0.0;
        for (size_t t = 0; t < k; t++) {
            const size_t nb = bi[t];
            const double v = dx[nb];
            size_t rank = 1; /* 1 + the points ranked before nb in the input space */
            for (size_t o = 0; o < n; o++)
                if (o != i && o != nb && (dx[o] < v || (dx[o] == v && o < nb))) rank++;
            if (rank > k) pen += (double)(rank - k);
        }
        j->penalty[i] = pen;
    }
}

supcon_status supcon_trustworthiness(supcon_context *ctx, const float *x, size_t n, size_t d, const float *y,
                                     size_t out_dims, int k, double *value) {
    if (!x) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": x is NULL");
    if (!y) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": y is NULL");
    if (!value) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": value is NULL");
    if (d == 0 || out_dims == 0)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": d = %zu and out_dims = %zu must be > 0", d,
                        out_dims);
    if (n < 3) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": n = %zu, need at least 3 points", n);
    if (k < 1 || !((double)k < (double)n / 2.0))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_TW_FN ": k = %d must be >= 1 and < n / 2 = %g", k,
                        (double)n / 2.0);
    supcon_status st = sc_an_check_finite(ctx, SC_TW_FN, "x", x, n, d);
    if (st == SUPCON_OK) st = sc_an_check_finite(ctx, SC_TW_FN, "y", y, n, out_dims);
    if (st != SUPCON_OK) return st;
    sc_pool *pool = sc_pool_create(0);
    const size_t w = pool ? (size_t)sc_pool_size(pool) : 1;
    sc_tw_job job = {x, y, n, d, out_dims, k, malloc(w * n * sizeof(double)), malloc(w * (size_t)k * sizeof(double)),
                     malloc(w * (size_t)k * sizeof(size_t)), malloc(n * sizeof(double))};
    if (!pool || !job.dx || !job.best_d || !job.best_i || !job.penalty) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, SC_TW_FN ": out of memory (or threads) for n = %zu", n);
        goto done;
    }
    sc_an_parallel(pool, (int64_t)n, 8, sc_tw_rows, &job);
    double t = 0.0;
    for (size_t i = 0; i < n; i++) t += job.penalty[i];
    const double nn = (double)n, kk = (double)k;
    *value = 1.0 - t * (2.0 / (nn * kk * (2.0 * nn - 3.0 * kk - 1.0)));
done:
    if (pool) sc_pool_destroy(pool);
    free(job.dx);
    free(job.best_d);
    free(job.best_i);
    free(job.penalty);
    return st;
}
