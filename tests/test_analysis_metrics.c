/* supcon_trustworthiness and supcon_knn_accuracy against hand-computed cases, against
 * scikit-learn (tests/fixtures/analysis_trustworthiness.txt from gen_analysis_fixtures.py)
 * and against a plain double-precision reference written here. Public API only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supcon/supcon.h"
#include "test_cmocka_context.h"
#include "test_util.h"

static int setup(void **state) {
    (void)state;
    return tu_open_cpu_context(1);
}

static double tw(const float *x, size_t n, size_t d, const float *y, size_t e, int k) {
    double v = -1.0;
    supcon_status s = supcon_trustworthiness(g_ctx, x, n, d, y, e, k, &v);
    if (s != SUPCON_OK) fail_msg("trustworthiness: %s", supcon_context_last_error(g_ctx));
    return v;
}

/* Six points on a line, x_i = i. The identity embedding scores 1. Swapping the two ends
 * (y_0 = 5, y_5 = 0) with k = 2, ranks r(i, j) in x (1 = nearest):
 *   i=0 (y 5): embedded neighbours {4, 3}, r = 4, 3   -> (4-2) + (3-2) = 3
 *   i=1 (y 1): {2, 5} (both at distance 1), r = 2, 5  -> 0 + 3       = 3
 *   i=2 (y 2): {1, 3}, r = 1, 2 (tied: both <= k)     -> 0
 *   i=3 (y 3): {2, 4}, r = 1, 2                       -> 0
 *   i=4 (y 4): {0, 3} (both at distance 1), r = 5, 1  -> 3 + 0       = 3
 *   i=5 (y 0): {1, 2}, r = 4, 3                       -> 2 + 1       = 3
 * sum 12, T = 1 - 12 * 2 / (6 * 2 * (12 - 6 - 1)) = 1 - 24 / 60 = 0.6 (sklearn agrees;
 * every tie here leaves the sum unchanged). */
static void test_trustworthiness_hand(void **state) {
    (void)state;
    const float x[6] = {0, 1, 2, 3, 4, 5};
    float y[6] = {0, 1, 2, 3, 4, 5};
    assert_true(tw(x, 6, 1, y, 1, 1) == 1.0);
    assert_true(tw(x, 6, 1, y, 1, 2) == 1.0);
    y[0] = 5;
    y[5] = 0;
    double v = tw(x, 6, 1, y, 1, 2);
    print_message("swapped ends: %.17g\n", v);
    assert_true(fabs(v - 0.6) < 1e-15);
    /* scaling or translating either space changes nothing; a 2-D copy of x neither */
    float x2[12], y2[6];
    for (int i = 0; i < 6; i++) {
        x2[2 * i] = 3.0f * x[i] - 7.0f;
        x2[2 * i + 1] = 0.0f;
        y2[i] = 0.5f * y[i] + 100.0f;
    }
    assert_true(fabs(tw(x2, 6, 2, y2, 1, 2) - 0.6) < 1e-15);
    /* reversing the embedding keeps every neighbourhood */
    for (int i = 0; i < 6; i++) y[i] = (float)(5 - i);
    assert_true(tw(x, 6, 1, y, 1, 2) == 1.0);
}

/* scikit-learn's values on 60 points of 8-D embedded in 2-D, k = 1, 3, 5, 10, 29. */
static void test_trustworthiness_sklearn(void **state) {
    (void)state;
    FILE *f = fopen(SUPCON_TEST_FIXTURES "/analysis_trustworthiness.txt", "r");
    if (!f) fail_msg("cannot open " SUPCON_TEST_FIXTURES "/analysis_trustworthiness.txt");
    int n = 0, d = 0, e = 0;
    assert_int_equal(fscanf(f, "%d %d %d", &n, &d, &e), 3);
    assert_true(n > 0 && n < 10000 && d > 0 && d < 100 && e > 0 && e < 10);
    float *x = malloc((size_t)n * (size_t)d * sizeof *x), *y = malloc((size_t)n * (size_t)e * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (int i = 0; i < n * d; i++) assert_int_equal(fscanf(f, "%f", &x[i]), 1);
    for (int i = 0; i < n * e; i++) assert_int_equal(fscanf(f, "%f", &y[i]), 1);
    int k, cases = 0;
    double want;
    while (fscanf(f, "%d %lf", &k, &want) == 2) {
        double got = tw(x, (size_t)n, (size_t)d, y, (size_t)e, k);
        print_message("k = %2d: %.17g (sklearn %.17g)\n", k, got, want);
        assert_true(fabs(got - want) < 1e-12);
        cases++;
    }
    assert_int_equal(cases, 5);
    fclose(f);
    free(x);
    free(y);
}

static double knn(const float *bank, const int32_t *bl, size_t nb, const float *q, const int32_t *ql, size_t nq,
                  size_t d, int k, int classes, int self) {
    double v = -1.0;
    supcon_status s = supcon_knn_accuracy(g_ctx, bank, bl, nb, q, ql, nq, d, k, classes, self, &v);
    if (s != SUPCON_OK) fail_msg("knn_accuracy: %s", supcon_context_last_error(g_ctx));
    return v;
}

#define DEG (3.14159265358979323846 / 180.0)

/* Votes, then the summed similarity, then the smaller class; self-exclusion. */
static void test_knn_hand(void **state) {
    (void)state;
    /* Bank on the unit circle (lengths vary: cosine ignores them). Query at 0 degrees. */
    const double ang[5] = {10, 50, 20, 30, 170};
    const int32_t bl[5] = {0, 0, 1, 1, 2};
    float bank[10];
    for (int i = 0; i < 5; i++) {
        bank[2 * i] = (float)((1 + i) * cos(ang[i] * DEG));
        bank[2 * i + 1] = (float)((1 + i) * sin(ang[i] * DEG));
    }
    const float q[4] = {2.0f, 0.0f, 0.5f, 0.0f};
    const int32_t q_is1[2] = {1, 1}, q_is0[2] = {0, 0};
    /* k = 1: the nearest (10 deg, class 0) */
    assert_true(knn(bank, bl, 5, q, q_is0, 2, 2, 1, 3, 0) == 100.0);
    /* k = 3: 10 (0), 20 (1), 30 (1): class 1 by two votes to one */
    assert_true(knn(bank, bl, 5, q, q_is1, 2, 2, 3, 3, 0) == 100.0);
    /* k = 4: two votes each; class 1's sum cos20 + cos30 = 1.806 beats cos10 + cos50 = 1.628 */
    assert_true(knn(bank, bl, 5, q, q_is1, 2, 2, 4, 3, 0) == 100.0);
    const int32_t mixed[2] = {1, 0};
    assert_true(knn(bank, bl, 5, q, mixed, 2, 2, 4, 3, 0) == 50.0);
    /* equal votes and equal sums: the smaller class. Bank at +20 (class 1) and -20 (class 0)
     * degrees; the query's similarity to both is exactly cos 20 in float. */
    const float sym[4] = {(float)cos(20 * DEG), (float)sin(20 * DEG), (float)cos(20 * DEG), -(float)sin(20 * DEG)};
    const int32_t sym_l[2] = {1, 0};
    const float q0[2] = {1.0f, 0.0f};
    const int32_t l0 = 0, l1 = 1;
    assert_true(knn(sym, sym_l, 2, q0, &l0, 1, 2, 2, 2, 0) == 100.0);
    assert_true(knn(sym, sym_l, 2, q0, &l1, 1, 2, 2, 2, 0) == 0.0);
    /* exclude_self: p0 and p1 are each other's nearest but differ in label */
    const float pts[8] = {1.0f, 0.0f, 0.99f, 0.1f, 0.0f, 1.0f, 0.1f, 0.99f};
    const int32_t pl[4] = {0, 1, 1, 1};
    assert_true(knn(pts, pl, 4, pts, pl, 4, 2, 1, 2, 1) == 50.0);
    assert_true(knn(pts, pl, 4, pts, pl, 4, 2, 1, 2, 0) == 100.0);
    /* a separate copy of the same rows behaves the same */
    float copy[8];
    memcpy(copy, pts, sizeof copy);
    assert_true(knn(pts, pl, 4, copy, pl, 4, 2, 1, 2, 1) == 50.0);
}

/* Random data against a plain double reference (full sort), with many bank blocks. */
static void test_knn_reference(void **state) {
    (void)state;
    enum { NB = 5000, NQ = 300, DIM = 16, K = 7, C = 5 };
    tu_rng r = tu_rng_seed(77);
    float *bank = malloc(NB * DIM * sizeof *bank), *q = malloc(NQ * DIM * sizeof *q);
    int32_t *bl = malloc(NB * sizeof *bl), *ql = malloc(NQ * sizeof *ql);
    double *sim = malloc(NB * sizeof *sim);
    assert_non_null(bank);
    assert_non_null(q);
    assert_non_null(bl);
    assert_non_null(ql);
    assert_non_null(sim);
    for (int i = 0; i < NB; i++) { /* labels follow the sign pattern of two coordinates, noisily */
        for (int t = 0; t < DIM; t++) bank[i * DIM + t] = (float)tu_normal(&r);
        bl[i] = (int32_t)((bank[i * DIM] > 0) + 2 * (bank[i * DIM + 1] > 0) + (tu_uniform(&r) < 0.2 ? 1 : 0)) % C;
    }
    for (int i = 0; i < NQ; i++) {
        for (int t = 0; t < DIM; t++) q[i * DIM + t] = (float)tu_normal(&r);
        ql[i] = (int32_t)((q[i * DIM] > 0) + 2 * (q[i * DIM + 1] > 0)) % C;
    }
    int correct = 0;
    for (int i = 0; i < NQ; i++) {
        double qn = 0;
        for (int t = 0; t < DIM; t++) qn += (double)q[i * DIM + t] * q[i * DIM + t];
        for (int j = 0; j < NB; j++) {
            double dot = 0, bn = 0;
            for (int t = 0; t < DIM; t++) {
                dot += (double)q[i * DIM + t] * bank[j * DIM + t];
                bn += (double)bank[j * DIM + t] * bank[j * DIM + t];
            }
            sim[j] = dot / sqrt(qn * bn);
        }
        int votes[C] = {0};
        double sums[C] = {0};
        for (int t = 0; t < K; t++) { /* selection of the t-th best */
            int best = -1;
            for (int j = 0; j < NB; j++)
                if (sim[j] > -2 && (best < 0 || sim[j] > sim[best])) best = j;
            votes[bl[best]]++;
            sums[bl[best]] += sim[best];
            sim[best] = -3;
        }
        int win = 0;
        for (int c = 1; c < C; c++)
            if (votes[c] > votes[win] || (votes[c] == votes[win] && sums[c] > sums[win])) win = c;
        correct += win == ql[i];
    }
    double want = 100.0 * correct / NQ, got = knn(bank, bl, NB, q, ql, NQ, DIM, K, C, 0);
    print_message("random: %.4f %% (reference %.4f %%)\n", got, want);
    assert_true(fabs(got - want) <= 100.0 / NQ + 1e-9); /* one query may flip on a float near-tie */
    free(bank);
    free(q);
    free(bl);
    free(ql);
    free(sim);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trustworthiness_hand),
        cmocka_unit_test(test_trustworthiness_sklearn),
        cmocka_unit_test(test_knn_hand),
        cmocka_unit_test(test_knn_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
