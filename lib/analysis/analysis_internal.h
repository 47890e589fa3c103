/* Internals of include/supcon/analysis.h, shared by the files of lib/analysis/ and the
 * internal tests: the parallel helper, top-k selection, brute-force kNN, PCA, the perplexity
 * calibration and the t-SNE gradients. Host-only; double wherever a value accumulates. */
#ifndef SUPCON_LIB_ANALYSIS_INTERNAL_H
#define SUPCON_LIB_ANALYSIS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "supcon/core.h"

/* fn over [0, n) in chunks of grain on pool; pool NULL runs it on the caller. Every item's
 * result must depend on the item alone, so the split never changes a result. */
void sc_an_parallel(sc_pool *pool, int64_t n, int64_t grain, sc_pool_fn fn, void *arg);

/* OK when a[n * d] is finite everywhere, else ERR_NON_FINITE with "<fn>: <name> holds NaN
 * or infinity at row r, column c" for the first bad element. */
supcon_status sc_an_check_finite(supcon_context *ctx, const char *fn, const char *name, const float *a, size_t n,
                                 size_t d);

/* ---- top-k by (score descending, index ascending) --------------------------------------- */
/* A min-heap of capacity k holding the best k (score, index) pairs seen: the root is the
 * worst kept. The kept set is independent of the order of the pushes. */
typedef struct sc_topk {
    float *score;
    int32_t *index;
    int k, size;
} sc_topk;
void sc_topk_push(sc_topk *h, float score, int32_t index);
/* Sorts the kept pairs best first (in place); the heap is then spent. */
void sc_topk_sort(sc_topk *h);

/* ---- brute-force kNN ------------------------------------------------------------------ */
/* For each query row i, the k bank rows of largest score, best first, into idx[i * k ..]
 * (and score[i * k ..] when non-NULL). Score: the dot product (mode SC_KNN_DOT) or minus
 * the squared Euclidean distance through norms (SC_KNN_L2; bank_norm2/query_norm2 needed).
 * exclude_self: query i never gets bank i. Blocked matrix products on the pool. Returns
 * SUPCON_OK or ERR_OUT_OF_MEMORY (message recorded in ctx under `fn`). */
enum { SC_KNN_DOT = 0, SC_KNN_L2 = 1 };
supcon_status sc_an_knn(supcon_context *ctx, const char *fn, sc_pool *pool, int mode,
                        const float *bank, const float *bank_norm2, size_t n_bank,
                        const float *query, const float *query_norm2, size_t n_query, size_t d,
                        int k, int exclude_self, int32_t *idx, float *score);

/* ---- PCA ------------------------------------------------------------------------------- */
/* Eigenvalues and eigenvectors of the symmetric matrix a [m, m] (row-major double; only the
 * lower triangle is read; a is destroyed): the `count` largest eigenvalues, descending, in
 * values[count], and their unit eigenvectors as the rows of vectors [count, m], each with
 * its entry of largest magnitude (the first such) positive. Householder tridiagonalisation,
 * bisection on Sturm counts, inverse iteration, back-transformation.
 * Returns 0, or -1 when out of memory. */
int sc_an_sym_eigen_top(double *a, size_t m, size_t count, double *values, double *vectors);

/* x [n, d] centred and projected on its first k principal components into out [n, k]
 * (float); components [k, d] and variances [k] (eigenvalues of the covariance with divisor
 * n - 1) when non-NULL. Errors recorded under `fn`: ERR_OUT_OF_MEMORY. */
supcon_status sc_an_pca(supcon_context *ctx, const char *fn, const float *x, size_t n, size_t d,
                        size_t k, float *out, double *components, double *variances);

/* ---- t-SNE: affinities ------------------------------------------------------------------ */
/* Conditional affinities of one point over m candidates with squared distances d2[m]:
 * p[j] = exp(-beta d2[j]) / sum, beta found by safeguarded Newton steps (bisection when a
 * step leaves the bracket) so that the entropy (nats) is log(perplexity) within tol (200
 * steps at most: an unreachable entropy, as with all distances equal, ends there).
 * Returns the entropy reached; *beta_out when non-NULL. */
double sc_tsne_calibrate(const double *d2, size_t m, double perplexity, double tol, double *p,
                         double *beta_out);

/* Symmetric joint affinities, all pairs: P [n, n] with zero diagonal, summing to 1, from
 * x [n, d]. */
void sc_tsne_exact_p(sc_pool *pool, const float *x, size_t n, size_t d, double perplexity,
                     double *P);

/* A sparse symmetric P in compressed rows: row i holds cols[row[i] .. row[i + 1]) sorted
 * ascending, with values val (summing to 1 over the matrix). */
typedef struct sc_sparse_p {
    size_t n;
    size_t *row; /* n + 1 */
    int32_t *col;
    double *val;
} sc_sparse_p;
void sc_sparse_p_free(sc_sparse_p *p);

/* Sparse P from the k nearest neighbours nbr [n, k] of each point with their squared
 * distances d2 [n, k]. Returns 0, or -1 when out of memory (p then empty). */
int sc_tsne_sparse_p(sc_pool *pool, const int32_t *nbr, const double *d2, size_t n, int k,
                     double perplexity, sc_sparse_p *p);

/* ---- t-SNE: objective and gradients ----------------------------------------------------- */
/* The exact gradient of KL(P || Q) w.r.t. Y [n, dims] (dims <= 3) into grad, P [n, n] dense
 * with a zero diagonal (times `exaggeration` in the gradient only). num: scratch of
 * n * n + 2n doubles. Returns KL(P || Q) of P itself when want_kl, else 0 (the logarithms
 * cost as much as the gradient). */
double sc_tsne_exact_grad(sc_pool *pool, const double *P, const double *Y, size_t n, int dims,
                          double exaggeration, double *grad, double *num, int want_kl);

/* A quadtree over 2-D points, rebuilt for each Y; its buffers grow and are kept. */
typedef struct sc_quadtree sc_quadtree;
sc_quadtree *sc_quadtree_create(size_t n);
void sc_quadtree_free(sc_quadtree *t);

/* Barnes-Hut gradient for 2-D Y [n, 2] into grad [n, 2]: attraction over the sparse P
 * (times exaggeration), repulsion and Z from the tree with opening angle theta (0: exact
 * repulsion). *kl (when non-NULL) receives the KL estimate over the pairs of P with Z from
 * the tree. Scratch: 3 * n doubles. Returns 0, or -1 when out of memory. */
int sc_tsne_bh_grad(sc_pool *pool, sc_quadtree *tree, const sc_sparse_p *P, const double *Y,
                    size_t n, double theta, double exaggeration, double *grad, double *scratch,
                    double *kl);

#endif
