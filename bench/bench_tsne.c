/* Times the feature analysis of include/supcon/analysis.h on synthetic clusters: exact t-SNE
 * of 1000 points, Barnes-Hut t-SNE of 10 000 points of 64-D (1000 steps, theta 0.5), the
 * trustworthiness of that embedding, and kNN accuracy of 10 000 queries against a bank of
 * 60 000 rows of 64-D. Prints seconds per task; no comparison with other implementations.
 *
 * usage: bench_tsne [threads (0 = all CPUs, default)] [max_iter (default 1000)] */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "supcon/supcon.h"

/* Rows of `classes` Gaussian clusters: centre_c + N(0, 1), centres N(0, spread^2) per
 * coordinate; label i % classes. Normals from the counter-based stream (Box-Muller). */
static void clusters(float *x, int32_t *labels, size_t n, size_t d, int classes, double spread, uint64_t seed) {
    double *centre = malloc((size_t)classes * d * sizeof *centre);
    if (!centre) exit(1);
    uint64_t k = 0;
#define NORMAL()                                                                                    \
    (sqrt(-2.0 * log(((double)(splitmix64_at(seed, k) >> 11) + 0.5) * 0x1.0p-53)) *                 \
     cos(6.283185307179586 * (double)(splitmix64_at(seed, k + 1) >> 11) * 0x1.0p-53))
    for (size_t i = 0; i < (size_t)classes * d; i++, k += 2) centre[i] = spread * NORMAL();
    for (size_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % (size_t)classes);
        for (size_t t = 0; t < d; t++, k += 2) x[i * d + t] = (float)(centre[(size_t)labels[i] * d + t] + NORMAL());
    }
#undef NORMAL
    free(centre);
}

static void print_log(void *user, supcon_log_level level, const char *msg) {
    (void)user;
    (void)level;
    printf("    [%.2f s] %s\n", now_s(), msg);
}

static supcon_context *g_ctx; /* INFO log lines of each phase, when $BENCH_TSNE_LOG is set */

static int check(supcon_status s, const char *what) {
    if (s == SUPCON_OK) return 0;
    fprintf(stderr, "%s: %s (%s)\n", what, supcon_status_name(s), supcon_context_last_error(NULL));
    return 1;
}

static int bench_tsne(int threads, int iters, size_t n, size_t d, supcon_tsne_method method, int pca, int with_tw) {
    float *x = malloc(n * d * sizeof *x), *y = malloc(n * 2 * sizeof *y);
    int32_t *labels = malloc(n * sizeof *labels);
    if (!x || !y || !labels) return 1;
    clusters(x, labels, n, d, 10, 4.0, 42 + n);
    supcon_tsne_config cfg = supcon_tsne_config_default();
    cfg.method = method;
    cfg.num_threads = threads;
    cfg.max_iter = iters;
    cfg.pca_dims = pca;
    supcon_tsne_report rep = {.struct_size = sizeof rep};
    double t0 = now_s();
    int bad = check(supcon_tsne_embed(g_ctx, &cfg, x, n, d, y, &rep), "supcon_tsne_embed");
    double t1 = now_s();
    if (!bad) {
        printf("tsne %-10s n=%-6zu d=%zu (t-SNE on %d-D) iters=%d: %.2f s, KL %.4f\n",
               method == SUPCON_TSNE_EXACT ? "exact" : "barnes-hut", n, d, rep.input_dims, iters, t1 - t0,
               rep.kl_divergence);
        if (with_tw) {
            double tw = 0.0;
            t0 = now_s();
            bad = check(supcon_trustworthiness(NULL, x, n, d, y, 2, 10, &tw), "supcon_trustworthiness");
            t1 = now_s();
            if (!bad) printf("trustworthiness(k=10) n=%zu: %.4f in %.2f s\n", n, tw, t1 - t0);
        }
    }
    free(x);
    free(y);
    free(labels);
    return bad;
}

static int bench_knn(size_t n_bank, size_t n_query, size_t d) {
    float *bank = malloc(n_bank * d * sizeof *bank), *query = malloc(n_query * d * sizeof *query);
    int32_t *bl = malloc(n_bank * sizeof *bl), *ql = malloc(n_query * sizeof *ql);
    if (!bank || !query || !bl || !ql) return 1;
    clusters(bank, bl, n_bank, d, 10, 0.5, 7);
    clusters(query, ql, n_query, d, 10, 0.5, 7); /* the same centres: the seed fixes them */
    double top1 = 0.0, t0 = now_s();
    int bad = check(supcon_knn_accuracy(NULL, bank, bl, n_bank, query, ql, n_query, d, 200, 10, 0, &top1),
                    "supcon_knn_accuracy");
    double t1 = now_s();
    if (!bad) printf("knn k=200 %zu queries x %zu bank x %zu-D: %.2f s (top-1 %.2f %%)\n", n_query, n_bank, d,
                     t1 - t0, top1);
    free(bank);
    free(query);
    free(bl);
    free(ql);
    return bad;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    int iters = argc > 2 ? atoi(argv[2]) : 1000;
    printf("libsupcon %s, threads %d (0 = all CPUs)\n", supcon_version_string(), threads);
    if (getenv("BENCH_TSNE_LOG")) {
        supcon_context_config cc = supcon_context_config_default();
        cc.backend = SUPCON_BACKEND_CPU;
        cc.num_threads = 1;
        cc.log_fn = print_log;
        cc.log_level = SUPCON_LOG_INFO;
        if (check(supcon_context_create(&cc, &g_ctx), "supcon_context_create")) return 1;
    }
    int bad = bench_tsne(threads, iters, 1000, 64, SUPCON_TSNE_EXACT, 50, 0);
    bad |= bench_tsne(threads, iters, 10000, 64, SUPCON_TSNE_BARNES_HUT, 0, 1);
    bad |= bench_knn(60000, 10000, 64);
    supcon_context_free(g_ctx);
    return bad;
}
