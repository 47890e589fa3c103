/* Every misuse documented in include/supcon/analysis.h: the documented status, and a
 * last-error message that names what was wrong (in the context, or on the thread when the
 * context is NULL). Nothing is written to the outputs on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "supcon/supcon.h"
#include "test_cmocka_context.h"
#include "test_util.h"
#include "test_expect_err.h"

/* An 80 GB request must come back NULL under ASan too, not abort the test. (Executables
 * are built with hidden visibility: the sanitizer runtime must see this one.) */
__attribute__((visibility("default"), used)) const char *__asan_default_options(void);
__attribute__((visibility("default"), used)) const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

enum { N = 40, D = 4 };
static float g_x[N * D];
static int32_t g_l[N];

static int setup(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(5);
    for (int i = 0; i < N * D; i++) g_x[i] = (float)tu_normal(&r);
    for (int i = 0; i < N; i++) g_l[i] = i % 3;
    return tu_open_cpu_context(1);
}

static void test_tsne_misuse(void **state) {
    (void)state;
    float y[N * 3];
    for (int i = 0; i < N * 3; i++) y[i] = 42.0f;
    const supcon_tsne_config def = supcon_tsne_config_default();
    supcon_tsne_config c = def;
    c.perplexity = 5;
    c.max_iter = 5;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, NULL, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "x is NULL");
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, N, D, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "y is NULL");
    EXPECT_ERR(supcon_tsne_embed(NULL, &c, NULL, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, NULL, "x is NULL");
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, 1, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "n = 1");
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, 0, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "n = 0");
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, N, 0, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "d is 0");
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, (size_t)INT32_MAX + 1, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "limit");

    supcon_tsne_config b = c;
    b.struct_size = sizeof b - 8;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "struct_size");
    b.struct_size = 0;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "struct_size");
#define BAD_FIELD(field, value, word)                                                                       \
    do {                                                                                                    \
        b = c;                                                                                              \
        b.field = value;                                                                                    \
        EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, word); \
    } while (0)
    BAD_FIELD(out_dims, 1, "out_dims");
    BAD_FIELD(out_dims, 4, "out_dims");
    BAD_FIELD(perplexity, 0.0, "perplexity");
    BAD_FIELD(perplexity, -3.0, "perplexity");
    BAD_FIELD(perplexity, NAN, "perplexity");
    BAD_FIELD(perplexity, INFINITY, "perplexity");
    BAD_FIELD(method, (supcon_tsne_method)7, "method");
    BAD_FIELD(theta, -0.1, "theta");
    BAD_FIELD(theta, NAN, "theta");
    BAD_FIELD(pca_dims, -1, "pca_dims");
    BAD_FIELD(max_iter, 0, "max_iter");
    BAD_FIELD(learning_rate, NAN, "learning_rate");
    BAD_FIELD(early_exaggeration, 0.5, "early_exaggeration");
    BAD_FIELD(exaggeration_iter, -1, "exaggeration_iter");
    BAD_FIELD(momentum_initial, 1.0, "momentum_initial");
    BAD_FIELD(momentum_initial, -0.1, "momentum_initial");
    BAD_FIELD(momentum_final, 1.5, "momentum_final");
    BAD_FIELD(min_gain, -1.0, "min_gain");
    BAD_FIELD(num_threads, -1, "num_threads");
    /* perplexity against n: exact needs < n - 1, Barnes-Hut 3 * perplexity < n - 1 */
    BAD_FIELD(perplexity, 39.0, "perplexity");
    b = c;
    b.method = SUPCON_TSNE_BARNES_HUT;
    b.perplexity = 13.0; /* 39 == n - 1 */
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "perplexity",
               "n - 1");
    b.perplexity = 12.9;
    assert_int_equal(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_OK);
    /* 3-D Barnes-Hut is unsupported, also when AUTO picks it */
    b = c;
    b.method = SUPCON_TSNE_BARNES_HUT;
    b.out_dims = 3;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, g_x, N, D, y, NULL), SUPCON_ERR_UNSUPPORTED, g_ctx, "out_dims",
               "Barnes-Hut");
    static float big[1001 * 1];
    b.method = SUPCON_TSNE_AUTO;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, big, 1001, 1, y, NULL), SUPCON_ERR_UNSUPPORTED, g_ctx, "AUTO");
    /* non-finite input: the first row and column */
    float xb[N * D];
    memcpy(xb, g_x, sizeof xb);
    xb[7 * D + 2] = NAN;
    xb[9 * D + 1] = INFINITY;
    for (int i = 0; i < N * 2; i++) y[i] = 42.0f;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, xb, N, D, y, NULL), SUPCON_ERR_NON_FINITE, g_ctx, "row 7", "column 2");
    for (int i = 0; i < N * 2; i++) assert_true(y[i] == 42.0f); /* untouched */
    /* report with an impossible size */
    supcon_tsne_report rep = {0};
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &c, g_x, N, D, y, &rep), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "report->struct_size");
    /* defaults (cfg NULL) are valid: perplexity 30 < 39 */
    assert_int_equal(supcon_tsne_embed(NULL, NULL, g_x, N, D, y, NULL), SUPCON_OK);
    /* the exact method on 100 000 points wants 160 GB: out of memory, nothing leaked */
    const size_t huge = 100000;
    float *hx = calloc(huge, sizeof *hx), *hy = malloc(huge * 2 * sizeof *hy);
    assert_non_null(hx);
    assert_non_null(hy);
    for (size_t i = 0; i < huge; i++) hx[i] = (float)i;
    b = c;
    b.method = SUPCON_TSNE_EXACT;
    EXPECT_ERR(supcon_tsne_embed(g_ctx, &b, hx, huge, 1, hy, NULL), SUPCON_ERR_OUT_OF_MEMORY, g_ctx,
               "out of memory");
    free(hx);
    free(hy);
#undef BAD_FIELD
}

static void test_knn_misuse(void **state) {
    (void)state;
    double top1 = -7.0;
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, NULL, g_l, N, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "bank is NULL");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, NULL, N, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "bank_labels is NULL");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, NULL, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "query is NULL");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, NULL, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "query_labels is NULL");
    EXPECT_ERR(supcon_knn_accuracy(NULL, g_x, g_l, N, g_x, g_l, N, D, 3, 3, 0, NULL), SUPCON_ERR_INVALID_ARGUMENT, NULL,
               "top1 is NULL");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, 0, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "n_bank = 0");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, 0, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "n_query = 0");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, 0, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "d = 0");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, D, 0, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "k = 0");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, D, N + 1, 3, 0, &top1),
               SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "k = 41");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, D, N, 3, 1, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "k = 40", "1..39");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, D, 3, 0, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "num_classes");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N, D, 3, 3, 2, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "exclude_self");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, g_l, N - 1, D, 3, 3, 1, &top1),
               SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "exclude_self", "n_query");
    int32_t bad[N];
    memcpy(bad, g_l, sizeof bad);
    bad[17] = 3;
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, bad, N, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "bank_labels[17]", "3");
    bad[17] = -1;
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, g_x, bad, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "query_labels[17]");
    float xb[N * D];
    memcpy(xb, g_x, sizeof xb);
    xb[5 * D + 3] = NAN;
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, xb, g_l, N, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_NON_FINITE, g_ctx,
               "bank", "row 5", "column 3");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, xb, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_NON_FINITE, g_ctx,
               "query", "row 5");
    memcpy(xb, g_x, sizeof xb);
    memset(xb + 11 * D, 0, D * sizeof(float));
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, xb, g_l, N, g_x, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "bank row 11", "zero");
    EXPECT_ERR(supcon_knn_accuracy(g_ctx, g_x, g_l, N, xb, g_l, N, D, 3, 3, 0, &top1), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "query row 11", "zero");
    assert_true(top1 == -7.0); /* untouched by every failure */
    assert_int_equal(supcon_knn_accuracy(NULL, g_x, g_l, N, g_x, g_l, N, D, 3, 3, 1, &top1), SUPCON_OK);
    assert_true(top1 >= 0.0 && top1 <= 100.0);
}

static void test_trustworthiness_misuse(void **state) {
    (void)state;
    double v = -7.0;
    float y[N * 2];
    for (int i = 0; i < N * 2; i++) y[i] = g_x[i];
    EXPECT_ERR(supcon_trustworthiness(g_ctx, NULL, N, D, y, 2, 5, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "x is NULL");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, D, NULL, 2, 5, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "y is NULL");
    EXPECT_ERR(supcon_trustworthiness(NULL, g_x, N, D, y, 2, 5, NULL), SUPCON_ERR_INVALID_ARGUMENT, NULL,
               "value is NULL");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, 0, y, 2, 5, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "d = 0");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, D, y, 0, 5, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "out_dims = 0");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, 2, D, y, 2, 1, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "n = 2");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, D, y, 2, 0, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "k = 0");
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, D, y, 2, 20, &v), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "k = 20",
               "n / 2");
    assert_int_equal(supcon_trustworthiness(g_ctx, g_x, N, D, y, 2, 19, &v), SUPCON_OK);
    v = -7.0;
    float yb[N * 2];
    memcpy(yb, y, sizeof yb);
    yb[2 * 30 + 1] = -INFINITY;
    EXPECT_ERR(supcon_trustworthiness(g_ctx, g_x, N, D, yb, 2, 5, &v), SUPCON_ERR_NON_FINITE, g_ctx, "y", "row 30",
               "column 1");
    float xb[N * D];
    memcpy(xb, g_x, sizeof xb);
    xb[3] = NAN;
    EXPECT_ERR(supcon_trustworthiness(g_ctx, xb, N, D, y, 2, 5, &v), SUPCON_ERR_NON_FINITE, g_ctx, "x", "row 0",
               "column 3");
    assert_true(v == -7.0);
}

static void test_defaults(void **state) {
    (void)state;
    supcon_tsne_config c = supcon_tsne_config_default();
    assert_int_equal(c.struct_size, sizeof c);
    assert_int_equal(c.out_dims, 2);
    assert_true(c.perplexity == 30.0);
    assert_int_equal(c.method, SUPCON_TSNE_AUTO);
    assert_true(c.theta == 0.5);
    assert_int_equal(c.pca_dims, 50);
    assert_int_equal(c.max_iter, 1000);
    assert_true(c.learning_rate == 0.0);
    assert_true(c.early_exaggeration == 12.0);
    assert_int_equal(c.exaggeration_iter, 250);
    assert_true(c.momentum_initial == 0.5 && c.momentum_final == 0.8);
    assert_true(c.min_gain == 0.01);
    assert_int_equal(c.num_threads, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsne_misuse),
        cmocka_unit_test(test_knn_misuse),
        cmocka_unit_test(test_trustworthiness_misuse),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
