/* libsupcon feature analysis: t-SNE embeddings (exact and Barnes-Hut, van der Maaten 2008
 * and 2014), kNN classification accuracy on features, and the trustworthiness of an
 * embedding (Venna & Kaski, as scikit-learn computes it). Everything runs on the host, on
 * plain row-major float buffers the caller owns; the context only receives the error
 * messages and the log lines and may be NULL. */
#ifndef SUPCON_ANALYSIS_H
#define SUPCON_ANALYSIS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum supcon_tsne_method {
    SUPCON_TSNE_AUTO = 0,      /* EXACT when n <= SUPCON_TSNE_AUTO_EXACT_MAX, else BARNES_HUT */
    SUPCON_TSNE_EXACT = 1,     /* O(n^2) time and memory: all pairs, exact gradient */
    SUPCON_TSNE_BARNES_HUT = 2 /* O(n log n) per iteration: sparse P, quadtree; 2-D only */
} supcon_tsne_method;

/** Largest n for which SUPCON_TSNE_AUTO picks the exact method. */
#define SUPCON_TSNE_AUTO_EXACT_MAX 1000

typedef struct supcon_tsne_config {
    size_t struct_size;          /* sizeof(supcon_tsne_config): set by _default() */
    int out_dims;                /* 2 (default) or 3; 3 needs the exact method */
    double perplexity;           /* default 30, > 0. Exact: < n - 1; Barnes-Hut: < (n - 1) / 3 */
    supcon_tsne_method method;   /* default SUPCON_TSNE_AUTO */
    double theta;                /* Barnes-Hut opening angle, default 0.5, >= 0 (0: no
                                    approximation of the repulsion) */
    int pca_dims;                /* default 50: when d > pca_dims, t-SNE runs on the centred
                                    data's first pca_dims principal components; 0 = never */
    int max_iter;                /* gradient steps, default 1000, >= 1 */
    double learning_rate;        /* default 0 = automatic: max(n / early_exaggeration / 4, 50) */
    double early_exaggeration;   /* factor on P for the first exaggeration_iter steps, default
                                    12, >= 1 */
    int exaggeration_iter;       /* default 250, >= 0 */
    double momentum_initial;     /* during the exaggeration, default 0.5, in [0, 1) */
    double momentum_final;       /* afterwards, default 0.8, in [0, 1) */
    double min_gain;             /* floor of the per-coordinate gains, default 0.01, >= 0 */
    uint64_t seed;               /* initial Y: independent normals of standard deviation 1e-4
                                    drawn from the library's Philox stream of this seed;
                                    default 0 */
    int num_threads;             /* worker threads, default 0 = one per CPU available */
} supcon_tsne_config;

/** What a supcon_tsne_embed run did. Set struct_size = sizeof(supcon_tsne_report) before the
 *  call; the library writes only the fields that fit in struct_size. */
typedef struct supcon_tsne_report {
    size_t struct_size;
    double kl_divergence; /* KL(P || Q) of the result, without exaggeration. Exact method: over
                             all pairs. Barnes-Hut: over the pairs of the sparse P, with the
                             normalisation Z taken from the tree (an estimate, as bhtsne's) */
    int iterations;       /* gradient steps made (max_iter: there is no early stop) */
    double seconds;       /* wall-clock time of the whole call */
    int method_used;      /* SUPCON_TSNE_EXACT or SUPCON_TSNE_BARNES_HUT */
    int input_dims;       /* dimension t-SNE ran on: pca_dims after the PCA, else d */
} supcon_tsne_report;

/** Defaults as documented per field, with struct_size filled in. Any thread. */
SUPCON_API supcon_tsne_config supcon_tsne_config_default(void);

/** Embed the n rows of x [n, d] (row-major float) into y [n, out_dims] (row-major float,
 *  written only on success). cfg NULL means defaults. report may be NULL.
 *  Input affinities: Gaussian kernels on squared Euclidean distances, each row's bandwidth
 *  found (Newton steps inside a bisection bracket) so that its entropy in nats is
 *  log(perplexity) within 1e-10, over all other points (exact) or over the
 *  ceil(3 * perplexity) nearest neighbours (Barnes-Hut, found by brute force); then
 *  P = (P_j|i + P_i|j) / 2n. Output kernel: Student-t with one degree of freedom.
 *  Gradient 4 sum_j (p_ij - q_ij) q_ij Z (y_i - y_j): exact, or Barnes-Hut (attraction
 *  from the sparse P; repulsion from a quadtree whose cell of full side w counts as one
 *  body when w / (distance to its centre of mass) < theta, scikit-learn's criterion).
 *  Optimiser as scikit-learn's: gradient descent with momentum and per-coordinate gains
 *  (+0.2 when the gradient's sign opposes the last update, else x0.8, floored at
 *  min_gain); P multiplied by early_exaggeration and momentum momentum_initial for the
 *  first exaggeration_iter steps, then momentum_final; Y recentred after every step; no
 *  early stop. The result is a pure function of (x, cfg without num_threads):
 *  bit-identical for any number of threads.
 *  Memory: exact method about 16 n^2 bytes; Barnes-Hut about n * (d + 40 * perplexity)
 *  * 8 bytes plus a block of distances. Limits: n <= 2^31 - 1.
 *  Errors: ERR_INVALID_ARGUMENT (x or y NULL; n < 2; d == 0; cfg or report struct_size;
 *  a field out of range — the message names it; perplexity too large for n),
 *  ERR_UNSUPPORTED (out_dims 3 with Barnes-Hut, also when AUTO picks it), ERR_NON_FINITE
 *  (NaN or infinity in x: the message gives the first row and column), ERR_OUT_OF_MEMORY
 *  (nothing leaked; y untouched).
 *  Logs one INFO line per phase and, at DEBUG, the KL divergence every 50 steps.
 *  Thread-safety: as its context (any thread with ctx NULL); starts and joins its own
 *  worker threads. */
SUPCON_API supcon_status supcon_tsne_embed(supcon_context *ctx, const supcon_tsne_config *cfg,
                                           const float *x, size_t n, size_t d, float *y,
                                           supcon_tsne_report *report);

/** Top-1 accuracy, in percent, of a k-nearest-neighbour classifier: each query row votes
 *  among the k bank rows of largest cosine similarity (rows are L2-normalised inside; the
 *  inputs are not changed). Neighbours of equal similarity are ranked by smaller bank
 *  index. The class with most votes wins; ties go to the class with the larger summed
 *  similarity of its voters, then to the smaller class index. exclude_self = 1 means bank
 *  and query are the same set of rows (n_bank == n_query): row i never votes for itself.
 *  bank [n_bank, d], query [n_query, d] row-major float; labels in [0, num_classes).
 *  Errors: ERR_INVALID_ARGUMENT (a NULL pointer; n_bank, n_query or d zero; k < 1 or
 *  larger than the bank (minus one with exclude_self); num_classes < 1; exclude_self not 0
 *  or 1, or set with n_bank != n_query; a label out of range or a zero row — the message
 *  names the array and index), ERR_NON_FINITE (NaN or infinity: first row and column),
 *  ERR_OUT_OF_MEMORY. Uses one worker thread per CPU available.
 *  Thread-safety: as its context (any thread with ctx NULL). */
SUPCON_API supcon_status supcon_knn_accuracy(supcon_context *ctx, const float *bank,
                                             const int32_t *bank_labels, size_t n_bank,
                                             const float *query, const int32_t *query_labels,
                                             size_t n_query, size_t d, int k, int num_classes,
                                             int exclude_self, double *top1);

/** Trustworthiness of the embedding y [n, out_dims] of x [n, d] (both row-major float), as
 *  sklearn.manifold.trustworthiness(x, y, n_neighbors=k) with the Euclidean metric:
 *    T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_i^k} max(0, r(i, j) - k)
 *  where N_i^k are the k nearest neighbours of i in y (i itself left out) and r(i, j) is
 *  the rank of j among the neighbours of i in x: 1 for the nearest, n - 1 for the farthest.
 *  Distances are computed in double; ties in either space go to the smaller index (sklearn
 *  leaves their order to its sort). T is in [0, 1]; 1 means every embedded neighbour is a
 *  true one. Cost O(n^2 (d + out_dims + k)) time, O(n) memory per thread.
 *  Errors: ERR_INVALID_ARGUMENT (a NULL pointer; n < 3; d or out_dims zero; k < 1 or
 *  k >= n / 2), ERR_NON_FINITE (first row and column), ERR_OUT_OF_MEMORY.
 *  Thread-safety: as its context (any thread with ctx NULL). */
SUPCON_API supcon_status supcon_trustworthiness(supcon_context *ctx, const float *x, size_t n,
                                                size_t d, const float *y, size_t out_dims,
                                                int k, double *value);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_ANALYSIS_H */
