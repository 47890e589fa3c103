/* supcon_tsne_embed end to end on planted clusters: 10 well-separated Gaussian clusters of
 * 100 points in 64-D (so the PCA to 50 runs too). Exact and Barnes-Hut embeddings must keep
 * the neighbourhoods (trustworthiness >= 0.9 at k = 10) and separate the clusters (kNN
 * accuracy on the 2-D embedding near 100 %); one seed gives the same bits for 1 and 2
 * threads, another seed gives another embedding. Public API only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "supcon/supcon.h"
#include "test_cmocka_context.h"
#include "test_util.h"

enum { CLUSTERS = 10, PER = 100, N = CLUSTERS * PER, D = 64 };

static float g_x[N * D];
static int32_t g_labels[N];

static int setup(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(2024);
    float centre[CLUSTERS][D];
    for (int c = 0; c < CLUSTERS; c++)
        for (int t = 0; t < D; t++) centre[c][t] = (float)(6.0 * tu_normal(&r));
    for (int i = 0; i < N; i++) {
        int c = i % CLUSTERS; /* interleaved, so no order in the rows helps */
        g_labels[i] = c;
        for (int t = 0; t < D; t++) g_x[i * D + t] = centre[c][t] + (float)tu_normal(&r);
    }
    return tu_open_cpu_context(1);
}

/* kNN accuracy of the 2-D embedding in Euclidean terms: supcon_knn_accuracy ranks by cosine,
 * and for rows (y, c) with c much larger than |y|, 1 - cos = |y1 - y2|^2 / 2c^2 (1 + O(|y|^2
 * / c^2)): the cosine order of the lifted rows is the Euclidean order of the embedding. */
static double knn_on_embedding(const float *y, int dims, int k) {
    float big = 0.0f;
    for (int i = 0; i < N * dims; i++) big = fmaxf(big, fabsf(y[i]));
    float *lift = malloc((size_t)N * (size_t)(dims + 1) * sizeof *lift);
    assert_non_null(lift);
    for (int i = 0; i < N; i++) {
        for (int t = 0; t < dims; t++) lift[i * (dims + 1) + t] = y[i * dims + t];
        lift[i * (dims + 1) + dims] = 30.0f * big;
    }
    double top1 = -1.0;
    assert_int_equal(supcon_knn_accuracy(g_ctx, lift, g_labels, N, lift, g_labels, N, (size_t)dims + 1, k, CLUSTERS,
                                         1, &top1),
                     SUPCON_OK);
    free(lift);
    return top1;
}

static void run(const supcon_tsne_config *cfg, float *y, supcon_tsne_report *rep) {
    supcon_status s = supcon_tsne_embed(g_ctx, cfg, g_x, N, D, y, rep);
    if (s != SUPCON_OK) fail_msg("supcon_tsne_embed: %s", supcon_context_last_error(g_ctx));
}

static void check_quality(const char *what, const float *y, int dims, const supcon_tsne_report *rep) {
    double tw = -1.0;
    assert_int_equal(supcon_trustworthiness(g_ctx, g_x, N, D, y, (size_t)dims, 10, &tw), SUPCON_OK);
    double acc = knn_on_embedding(y, dims, 10);
    print_message("%s: trustworthiness(10) %.4f, kNN accuracy %.2f %%, KL %.4f, %.2f s\n", what, tw, acc,
                  rep->kl_divergence, rep->seconds);
    assert_true(tw >= 0.9);
    assert_true(acc >= 99.0);
    assert_true(rep->kl_divergence > 0.0 && rep->kl_divergence < 3.0);
    for (int i = 0; i < N * dims; i++) assert_true(isfinite(y[i]));
}

static void test_method(supcon_tsne_method method) {
    supcon_tsne_config cfg = supcon_tsne_config_default();
    cfg.method = method;
    cfg.seed = 7;
    cfg.num_threads = 2;
    cfg.max_iter = 500; /* plenty for separated clusters, and affordable under ASan */
    float *y2 = malloc(N * 2 * sizeof *y2), *y1 = malloc(N * 2 * sizeof *y1);
    assert_non_null(y2);
    assert_non_null(y1);
    supcon_tsne_report rep = {.struct_size = sizeof rep};
    run(&cfg, y2, &rep);
    assert_int_equal(rep.method_used, method);
    assert_int_equal(rep.iterations, cfg.max_iter);
    assert_int_equal(rep.input_dims, 50); /* PCA 64 -> 50 */
    assert_true(rep.seconds > 0.0);
    check_quality(method == SUPCON_TSNE_EXACT ? "exact" : "Barnes-Hut", y2, 2, &rep);

    /* Bit-identity on short runs that still cross the end of the exaggeration. */
    cfg.max_iter = 60;
    cfg.exaggeration_iter = 30;
    supcon_tsne_report rep2 = {.struct_size = sizeof rep2}, rep1 = {.struct_size = sizeof rep1};
    run(&cfg, y2, &rep2);
    cfg.num_threads = 1; /* same seed, one thread: the same bits */
    run(&cfg, y1, &rep1);
    assert_memory_equal(y1, y2, N * 2 * sizeof *y1);
    assert_true(rep1.kl_divergence == rep2.kl_divergence);
    cfg.num_threads = 2;
    run(&cfg, y1, NULL); /* and again: no state carried between calls */
    assert_memory_equal(y1, y2, N * 2 * sizeof *y1);
    cfg.seed = 8; /* another seed: another embedding */
    run(&cfg, y1, NULL);
    assert_memory_not_equal(y1, y2, N * 2 * sizeof *y1);
    free(y1);
    free(y2);
}

static void test_exact(void **state) {
    (void)state;
    test_method(SUPCON_TSNE_EXACT);
}

static void test_barnes_hut(void **state) {
    (void)state;
    test_method(SUPCON_TSNE_BARNES_HUT);
}

/* AUTO picks exact at n <= 1000; 3-D exact works and keeps the clusters; the debug log
 * reports the KL along the way. */
static int g_lines, g_debug_lines;
static void count_log(void *user, supcon_log_level level, const char *msg) {
    (void)user;
    (void)msg;
    g_lines++;
    if (level == SUPCON_LOG_DEBUG) g_debug_lines++;
}

static void test_auto_3d_and_log(void **state) {
    (void)state;
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.log_fn = count_log;
    cc.log_level = SUPCON_LOG_DEBUG;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cc, &ctx), SUPCON_OK);
    supcon_tsne_config cfg = supcon_tsne_config_default();
    cfg.out_dims = 3;
    cfg.max_iter = 300;
    float *y = malloc(N * 3 * sizeof *y);
    assert_non_null(y);
    supcon_tsne_report rep = {.struct_size = sizeof rep};
    g_lines = g_debug_lines = 0;
    if (supcon_tsne_embed(ctx, &cfg, g_x, N, D, y, &rep) != SUPCON_OK)
        fail_msg("3-D: %s", supcon_context_last_error(ctx));
    assert_int_equal(rep.method_used, SUPCON_TSNE_EXACT);
    assert_int_equal(g_debug_lines, 6); /* one per 50 steps */
    assert_true(g_lines > g_debug_lines);
    check_quality("exact 3-D", y, 3, &rep);
    /* a report of an older, smaller size gets only its fields */
    struct {
        size_t struct_size;
        double kl_divergence;
    } small = {sizeof small, -1.0};
    cfg.max_iter = 20;
    assert_int_equal(supcon_tsne_embed(ctx, &cfg, g_x, N, D, y, (supcon_tsne_report *)&small), SUPCON_OK);
    assert_true(small.kl_divergence > 0.0);
    supcon_context_free(ctx);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_barnes_hut),
        cmocka_unit_test(test_auto_3d_and_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
