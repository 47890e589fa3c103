/* t-SNE's input affinities: each point's Gaussian bandwidth found by bisection on the
 * entropy, then the symmetric joint P — dense over all pairs (exact method) or sparse over
 * the nearest neighbours (Barnes-Hut). The neighbour search itself is in common.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"

double sc_tsne_calibrate(const double *d2, size_t m, double perplexity, double tol, double *p,
                         double *beta_out) {
    double dmin = INFINITY, mean = 0.0;
    for (size_t j = 0; j < m; j++) dmin = fmin(dmin, d2[j]);
    for (size_t j = 0; j < m; j++) mean += d2[j] - dmin;
    mean /= (double)m;
    const double target = log(perplexity);
    /* Newton on H(beta) = log S + beta <d>, dH/dbeta = -beta Var(d), kept inside a bracket
     * [lo, hi] that bisection (or doubling, while hi is unbounded) falls back on. */
    double beta = mean > 0.0 ? 1.0 / mean : 1.0, lo = 0.0, hi = INFINITY;
    for (int it = 0; it < 200; it++) {
        double s = 0.0, w1 = 0.0, w2 = 0.0;
        for (size_t j = 0; j < m; j++) {
            double dd = d2[j] - dmin, e = exp(-beta * dd);
            s += e;
            w1 += dd * e;
            w2 += dd * dd * e;
        }
        const double mu = w1 / s, var = w2 / s - mu * mu;
        const double h = log(s) + beta * mu; /* entropy of p_j = e_j / s, in nats */
        if (fabs(h - target) < tol) break;
        if (h > target) lo = beta;
        else hi = beta;
        const double next = beta + (h - target) / (beta * var);
        if (var > 0.0 && isfinite(next) && next > lo && next < hi) beta = next;
        else beta = isinf(hi) ? 2.0 * beta : 0.5 * (lo + hi);
    }
    double s = 0.0, w = 0.0;
    for (size_t j = 0; j < m; j++) s += exp(-beta * (d2[j] - dmin));
    for (size_t j = 0; j < m; j++) {
        double dd = d2[j] - dmin, e = exp(-beta * dd);
        w += dd * e;
        p[j] = e / s; /* p may alias d2: d2[j] is read before p[j] is written */
    }
    if (beta_out) *beta_out = beta;
    return log(s) + beta * w / s;
}

/* ---- dense P ------------------------------------------------------------------------------ */

typedef struct {
    const float *x;
    size_t n, d;
    double perplexity;
    double *P;
} sc_dense_job;

static void sc_dense_rows(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_dense_job *j = raw;
    const size_t n = j->n, d = j->d;
    for (int64_t ii = begin; ii < end; ii++) {
        size_t i = (size_t)ii;
        double *row = j->P + i * n;
        const float *xi = j->x + i * d;
        size_t c = 0; /* the other points, packed to the front of the row */
        for (size_t o = 0; o < n; o++) {
            if (o == i) continue;
            const float *xo = j->x + o * d;
            double s = 0.0;
            for (size_t t = 0; t < d; t++) {
                double df = (double)xi[t] - (double)xo[t];
                s += df * df;
            }
            row[c++] = s;
        }
        sc_tsne_calibrate(row, n - 1, j->perplexity, 1e-10, row, NULL);
        memmove(row + i + 1, row + i, (n - 1 - i) * sizeof *row); /* reopen the diagonal */
        row[i] = 0.0;
    }
}

void sc_tsne_exact_p(sc_pool *pool, const float *x, size_t n, size_t d, double perplexity, double *P) {
    sc_dense_job job = {x, n, d, perplexity, P};
    sc_an_parallel(pool, (int64_t)n, 8, sc_dense_rows, &job);
    const double scale = 1.0 / (2.0 * (double)n);
    for (size_t i = 0; i < n; i++) {
        P[i * n + i] = 0.0;
        for (size_t j = i + 1; j < n; j++) {
            double v = (P[i * n + j] + P[j * n + i]) * scale;
            P[i * n + j] = v;
            P[j * n + i] = v;
        }
    }
}

/* ---- sparse P ----------------------------------------------------------------------------- */

typedef struct {
    const double *d2;
    size_t n;
    int k;
    double perplexity;
    double *cond;
} sc_sparse_job;

static void sc_sparse_rows(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_sparse_job *j = raw;
    for (int64_t i = begin; i < end; i++)
        sc_tsne_calibrate(j->d2 + (size_t)i * (size_t)j->k, (size_t)j->k, j->perplexity, 1e-10,
                          j->cond + (size_t)i * (size_t)j->k, NULL);
}

typedef struct {
    int32_t col;
    double val;
} sc_entry;

static int sc_entry_cmp(const void *a, const void *b) {
    int32_t x = ((const sc_entry *)a)->col, y = ((const sc_entry *)b)->col;
    return (x > y) - (x < y);
}

void sc_sparse_p_free(sc_sparse_p *p) {
    if (!p) return;
    free(p->row);
    free(p->col);
    free(p->val);
    memset(p, 0, sizeof *p);
}

int sc_tsne_sparse_p(sc_pool *pool, const int32_t *nbr, const double *d2, size_t n, int k,
                     double perplexity, sc_sparse_p *p) {
    memset(p, 0, sizeof *p);
    const size_t nk = n * (size_t)k;
    double *cond = malloc(nk * sizeof *cond);
    size_t *start = calloc(n + 1, sizeof *start), *fill = malloc(n * sizeof *fill);
    sc_entry *e = malloc(2 * nk * sizeof *e);
    int rc = -1;
    if (!cond || !start || !fill || !e) goto done;
    sc_sparse_job job = {d2, n, k, perplexity, cond};
    sc_an_parallel(pool, (int64_t)n, 16, sc_sparse_rows, &job);

    /* Row i gets its own k neighbours and every point that has i among its neighbours. */
    for (size_t i = 0; i < n; i++) {
        start[i + 1] += (size_t)k;
        for (int t = 0; t < k; t++) start[(size_t)nbr[i * (size_t)k + (size_t)t] + 1]++;
    }
    for (size_t i = 0; i < n; i++) start[i + 1] += start[i];
    for (size_t i = 0; i < n; i++) fill[i] = start[i];
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < k; t++) {
            size_t at = i * (size_t)k + (size_t)t, j = (size_t)nbr[at];
            e[fill[i]++] = (sc_entry){(int32_t)j, cond[at]};
            e[fill[j]++] = (sc_entry){(int32_t)i, cond[at]};
        }
    /* Sort each row by column and merge the pairs found from both ends (a + b == b + a, so
     * the sort's order among equal columns cannot change a value). */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        sc_entry *r = e + start[i];
        size_t len = start[i + 1] - start[i], out = 0;
        qsort(r, len, sizeof *r, sc_entry_cmp);
        for (size_t t = 0; t < len; t++) {
            if (out > 0 && r[out - 1].col == r[t].col) r[out - 1].val += r[t].val;
            else r[out++] = r[t];
        }
        fill[i] = out;
        total += out;
    }
    p->n = n;
    p->row = malloc((n + 1) * sizeof *p->row);
    p->col = malloc((total ? total : 1) * sizeof *p->col);
    p->val = malloc((total ? total : 1) * sizeof *p->val);
    if (!p->row || !p->col || !p->val) {
        sc_sparse_p_free(p);
        goto done;
    }
    const double scale = 1.0 / (2.0 * (double)n);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        p->row[i] = at;
        const sc_entry *r = e + start[i];
        for (size_t t = 0; t < fill[i]; t++, at++) {
            p->col[at] = r[t].col;
            p->val[at] = r[t].val * scale;
        }
    }
    p->row[n] = at;
    rc = 0;
done:
    free(cond);
    free(start);
    free(fill);
    free(e);
    return rc;
}
