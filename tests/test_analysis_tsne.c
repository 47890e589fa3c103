/* The internals of lib/analysis (hidden symbols: linked from the static archive): the exact
 * t-SNE gradient against central differences of the KL in double, Barnes-Hut against the
 * exact gradient (theta 0: equal; 0.5: close), the perplexity calibration's entropies, the
 * symmetric eigen-solver and the PCA on planted cases, and the kNN search's total order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "test_util.h"

static double *random_y(tu_rng *r, size_t n, int dims, double scale) {
    double *y = malloc(n * (size_t)dims * sizeof *y);
    assert_non_null(y);
    for (size_t i = 0; i < n * (size_t)dims; i++) y[i] = scale * tu_normal(r);
    return y;
}

static float *random_x(tu_rng *r, size_t n, size_t d) {
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n * d; i++) x[i] = (float)tu_normal(r);
    return x;
}

/* 1. d KL / d Y of the exact method against (KL(Y + h e) - KL(Y - h e)) / 2h. */
static void test_exact_gradient_fd(void **state) {
    (void)state;
    enum { N = 14, D = 6 };
    tu_rng r = tu_rng_seed(11);
    float *x = random_x(&r, N, D);
    double *P = malloc(N * N * sizeof *P), *num = malloc((N * N + 2 * N) * sizeof *num);
    assert_non_null(P);
    assert_non_null(num);
    sc_tsne_exact_p(NULL, x, N, D, 4.0, P);
    double psum = 0.0;
    for (int i = 0; i < N * N; i++) psum += P[i];
    assert_true(fabs(psum - 1.0) < 1e-12);
    for (int dims = 2; dims <= 3; dims++) {
        double *y = random_y(&r, N, dims, 1.5);
        double grad[N * 3], dummy[N * 3];
        sc_tsne_exact_grad(NULL, P, y, N, dims, 1.0, grad, num, 1);
        double err = 0.0, ref = 0.0;
        for (int i = 0; i < N * dims; i++) {
            const double h = 1e-5, keep = y[i];
            y[i] = keep + h;
            double up = sc_tsne_exact_grad(NULL, P, y, N, dims, 1.0, dummy, num, 1);
            y[i] = keep - h;
            double dn = sc_tsne_exact_grad(NULL, P, y, N, dims, 1.0, dummy, num, 1);
            y[i] = keep;
            double fd = (up - dn) / (2 * h);
            err = fmax(err, fabs(fd - grad[i]));
            ref = fmax(ref, fabs(fd));
        }
        print_message("exact gradient, %d-D: max |fd - analytic| = %.3g (max |grad| %.3g)\n", dims, err, ref);
        assert_true(ref > 1e-4);
        assert_true(err < 1e-7 * ref + 1e-12);
        /* exaggeration multiplies only the attraction: grad(ex) - grad(1) = 4 (ex-1) sum p num (yi-yj) */
        double g2[N * 3];
        sc_tsne_exact_grad(NULL, P, y, N, dims, 3.0, g2, num, 0);
        double diff = 0.0;
        for (int i = 0; i < N * dims; i++) diff = fmax(diff, fabs(g2[i] - grad[i]));
        assert_true(diff > 1e-6);
        free(y);
    }
    free(x);
    free(P);
    free(num);
}

/* The dense form of a sparse P. */
static double *densify(const sc_sparse_p *p) {
    double *P = calloc(p->n * p->n, sizeof *P);
    assert_non_null(P);
    for (size_t i = 0; i < p->n; i++)
        for (size_t e = p->row[i]; e < p->row[i + 1]; e++) P[i * p->n + (size_t)p->col[e]] = p->val[e];
    return P;
}

/* Sparse P of x through the library's own neighbour search. */
static void sparse_p_of(sc_pool *pool, const float *x, size_t n, size_t d, double perplexity, sc_sparse_p *sp) {
    int k = (int)ceil(3 * perplexity);
    float *n2 = malloc(n * sizeof *n2);
    int32_t *nbr = malloc(n * (size_t)k * sizeof *nbr);
    double *d2 = malloc(n * (size_t)k * sizeof *d2);
    assert_non_null(n2);
    assert_non_null(nbr);
    assert_non_null(d2);
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (size_t t = 0; t < d; t++) s += x[i * d + t] * x[i * d + t];
        n2[i] = s;
    }
    assert_int_equal(sc_an_knn(NULL, "test", pool, SC_KNN_L2, x, n2, n, x, n2, n, d, k, 1, nbr, NULL), SUPCON_OK);
    for (size_t i = 0; i < n * (size_t)k; i++) {
        size_t a = i / (size_t)k, b = (size_t)nbr[i];
        assert_true(b != a);
        double s = 0;
        for (size_t t = 0; t < d; t++) {
            double df = (double)x[a * d + t] - x[b * d + t];
            s += df * df;
        }
        d2[i] = s;
    }
    assert_int_equal(sc_tsne_sparse_p(pool, nbr, d2, n, k, perplexity, sp), 0);
    free(n2);
    free(nbr);
    free(d2);
}

/* 2. Barnes-Hut with theta 0 is the exact gradient of the same (sparse) P; 0.5 is close. */
static void test_bh_matches_exact(void **state) {
    (void)state;
    enum { N = 300, D = 10 };
    tu_rng r = tu_rng_seed(22);
    float *x = random_x(&r, N, D);
    sc_pool *pool = sc_pool_create(2);
    assert_non_null(pool);
    sc_sparse_p sp;
    sparse_p_of(pool, x, N, D, 10.0, &sp);
    double psum = 0.0;
    for (size_t e = 0; e < sp.row[N]; e++) psum += sp.val[e];
    assert_true(fabs(psum - 1.0) < 1e-12);
    for (size_t i = 0; i < N; i++) /* symmetric, no diagonal, sorted columns */
        for (size_t e = sp.row[i]; e < sp.row[i + 1]; e++) {
            assert_true((size_t)sp.col[e] != i);
            if (e > sp.row[i]) assert_true(sp.col[e] > sp.col[e - 1]);
        }
    double *P = densify(&sp);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) assert_true(P[i * N + j] == P[j * N + i]);
    double *num = malloc((N * N + 2 * N) * sizeof *num), *scratch = malloc(3 * N * sizeof *scratch);
    double *ge = malloc(2 * N * sizeof *ge), *gb = malloc(2 * N * sizeof *gb);
    assert_non_null(num);
    assert_non_null(scratch);
    assert_non_null(ge);
    assert_non_null(gb);
    sc_quadtree *tree = sc_quadtree_create(N);
    assert_non_null(tree);
    double *y = random_y(&r, N, 2, 4.0);
    /* two coincident points: the tree must cope (depth limit, multi-point leaf) */
    y[2 * 7] = y[2 * 8];
    y[2 * 7 + 1] = y[2 * 8 + 1];
    for (int pass = 0; pass < 2; pass++) {
        const double ex = pass == 0 ? 1.0 : 12.0;
        double kl_e = sc_tsne_exact_grad(pool, P, y, N, 2, ex, ge, num, 1), kl_b = 0.0;
        assert_int_equal(sc_tsne_bh_grad(pool, tree, &sp, y, N, 0.0, ex, gb, scratch, &kl_b), 0);
        double err = 0.0, ref = 0.0;
        for (int i = 0; i < 2 * N; i++) {
            err = fmax(err, fabs(gb[i] - ge[i]));
            ref = fmax(ref, fabs(ge[i]));
        }
        print_message("theta 0, exaggeration %g: max |bh - exact| %.3g of %.3g; KL %.12f vs %.12f\n", ex, err, ref,
                      kl_b, kl_e);
        assert_true(err < 1e-12 * ref + 1e-15);
        assert_true(fabs(kl_b - kl_e) < 1e-10 * fabs(kl_e));
        assert_int_equal(sc_tsne_bh_grad(pool, tree, &sp, y, N, 0.5, ex, gb, scratch, &kl_b), 0);
        double num2 = 0.0, den2 = 0.0;
        for (int i = 0; i < 2 * N; i++) {
            num2 += (gb[i] - ge[i]) * (gb[i] - ge[i]);
            den2 += ge[i] * ge[i];
        }
        double rel = sqrt(num2 / den2);
        print_message("theta 0.5: relative error %.4f, KL %.6f vs %.6f\n", rel, kl_b, kl_e);
        assert_true(rel < 0.03);
        assert_true(rel > 0.0); /* the approximation is used at all */
        assert_true(fabs(kl_b - kl_e) < 0.02 * fabs(kl_e));
    }
    /* The same tree from one thread: bit-identical. */
    sc_pool *one = sc_pool_create(1);
    assert_non_null(one);
    double *g1 = malloc(2 * N * sizeof *g1);
    assert_non_null(g1);
    assert_int_equal(sc_tsne_bh_grad(one, tree, &sp, y, N, 0.5, 1.0, g1, scratch, NULL), 0);
    assert_int_equal(sc_tsne_bh_grad(pool, tree, &sp, y, N, 0.5, 1.0, gb, scratch, NULL), 0);
    assert_memory_equal(g1, gb, 2 * N * sizeof *g1);
    sc_pool_destroy(one);
    free(g1);
    sc_quadtree_free(tree);
    sc_sparse_p_free(&sp);
    sc_pool_destroy(pool);
    free(P);
    free(num);
    free(scratch);
    free(ge);
    free(gb);
    free(y);
    free(x);
}

/* 3. Each row's entropy (computed here, in nats) is log(perplexity) within 1e-5. */
static void test_perplexity_calibration(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(33);
    const double perps[] = {1.5, 5.0, 30.0, 90.0};
    enum { M = 300 };
    double d2[M], p[M];
    for (int rep = 0; rep < 20; rep++) {
        double scale = pow(10.0, (double)(rep % 7) - 3.0); /* 1e-3 .. 1e3 */
        for (int j = 0; j < M; j++) {
            double a = tu_normal(&r), b = tu_normal(&r);
            d2[j] = scale * (a * a + b * b + 0.5 * rep);
        }
        for (int t = 0; t < 4; t++) {
            double beta = 0.0;
            double h_ret = sc_tsne_calibrate(d2, M, perps[t], 1e-10, p, &beta);
            double h = 0.0, s = 0.0;
            for (int j = 0; j < M; j++) {
                s += p[j];
                if (p[j] > 0) h -= p[j] * log(p[j]);
            }
            if (fabs(h - log(perps[t])) >= 1e-5 || fabs(s - 1.0) >= 1e-12)
                fail_msg("row %d perplexity %g: entropy %.9f (returned %.9f), log(perp) %.9f, sum %.15f", rep,
                         perps[t], h, h_ret, log(perps[t]), s);
            assert_true(beta > 0.0);
            /* nearer points never get less weight */
            for (int j = 1; j < M; j++)
                if (d2[j] < d2[0]) assert_true(p[j] >= p[0]);
        }
    }
    /* In place (p aliasing d2), as the dense path does. */
    double a[M], b[M];
    for (int j = 0; j < M; j++) a[j] = b[j] = 1.0 + tu_uniform(&r);
    sc_tsne_calibrate(a, M, 7.0, 1e-10, p, NULL);
    sc_tsne_calibrate(b, M, 7.0, 1e-10, b, NULL);
    assert_memory_equal(p, b, sizeof b);
}

/* The dense P: symmetric, zero diagonal, sums to 1, the same bits from one or two threads. */
static void test_dense_p(void **state) {
    (void)state;
    enum { N = 40, D = 5 };
    tu_rng r = tu_rng_seed(44);
    float *x = random_x(&r, N, D);
    double *P = malloc(N * N * sizeof *P), *Q = malloc(N * N * sizeof *Q);
    assert_non_null(P);
    assert_non_null(Q);
    sc_tsne_exact_p(NULL, x, N, D, 8.0, P);
    sc_pool *pool = sc_pool_create(2);
    assert_non_null(pool);
    sc_tsne_exact_p(pool, x, N, D, 8.0, Q);
    assert_memory_equal(P, Q, N * N * sizeof *P);
    double s = 0.0;
    for (int i = 0; i < N; i++) {
        assert_true(P[i * N + i] == 0.0);
        for (int j = 0; j < N; j++) {
            assert_true(P[i * N + j] == P[j * N + i]);
            s += P[i * N + j];
        }
    }
    assert_true(fabs(s - 1.0) < 1e-12);
    sc_pool_destroy(pool);
    free(P);
    free(Q);
    free(x);
}

/* 6a. The eigen-solver on a diagonal matrix, a repeated eigenvalue and a random symmetric one. */
static void test_sym_eigen(void **state) {
    (void)state;
    {
        const double dg[6] = {3.0, 1.0, 4.0, 1.5, 9.0, 2.0};
        double a[36] = {0}, val[3], vec[18];
        for (int i = 0; i < 6; i++) a[i * 6 + i] = dg[i];
        assert_int_equal(sc_an_sym_eigen_top(a, 6, 3, val, vec), 0);
        const double want_val[3] = {9.0, 4.0, 3.0};
        const int want_axis[3] = {4, 2, 0};
        for (int t = 0; t < 3; t++) {
            assert_true(fabs(val[t] - want_val[t]) < 1e-13);
            for (int j = 0; j < 6; j++) assert_true(fabs(vec[t * 6 + j] - (j == want_axis[t] ? 1.0 : 0.0)) < 1e-12);
        }
    }
    for (int trial = 0; trial < 3; trial++) {
        enum { M = 40 };
        tu_rng r = tu_rng_seed(55 + (uint64_t)trial);
        static double a[M * M], a0[M * M], val[M], vec[M * M];
        /* trial 1: a 5-fold eigenvalue (Q diag Q^T with Q from Gram-Schmidt) */
        double q[M * M];
        for (int i = 0; i < M * M; i++) q[i] = tu_normal(&r);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < i; j++) {
                double dot = 0;
                for (int t = 0; t < M; t++) dot += q[i * M + t] * q[j * M + t];
                for (int t = 0; t < M; t++) q[i * M + t] -= dot * q[j * M + t];
            }
            double nn = 0;
            for (int t = 0; t < M; t++) nn += q[i * M + t] * q[i * M + t];
            for (int t = 0; t < M; t++) q[i * M + t] /= sqrt(nn);
        }
        double lam[M];
        for (int i = 0; i < M; i++) lam[i] = trial == 1 && i < 5 ? 7.0 : tu_normal(&r) * (trial == 2 ? 1e3 : 1.0);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < M; j++) {
                double s = 0;
                for (int t = 0; t < M; t++) s += q[t * M + i] * lam[t] * q[t * M + j];
                a0[i * M + j] = s;
            }
        memcpy(a, a0, sizeof a);
        assert_int_equal(sc_an_sym_eigen_top(a, M, M, val, vec), 0);
        /* descending, equal to the planted values, orthonormal, A v = lambda v */
        double sorted[M];
        memcpy(sorted, lam, sizeof lam);
        for (int i = 0; i < M; i++)
            for (int j = i + 1; j < M; j++)
                if (sorted[j] > sorted[i]) {
                    double t = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = t;
                }
        double scale = fabs(sorted[0]) + fabs(sorted[M - 1]);
        for (int t = 0; t < M; t++) {
            assert_true(fabs(val[t] - sorted[t]) < 1e-11 * scale);
            double res = 0;
            for (int i = 0; i < M; i++) {
                double s = 0;
                for (int j = 0; j < M; j++) s += a0[i * M + j] * vec[t * M + j];
                res = fmax(res, fabs(s - val[t] * vec[t * M + i]));
            }
            if (res > 1e-10 * scale) fail_msg("trial %d vector %d: residual %.3g", trial, t, res);
            for (int u = 0; u <= t; u++) {
                double dot = 0;
                for (int i = 0; i < M; i++) dot += vec[t * M + i] * vec[u * M + i];
                if (fabs(dot - (u == t ? 1.0 : 0.0)) > 1e-10)
                    fail_msg("trial %d: <v%d, v%d> = %.3g", trial, t, u, dot);
            }
            int big = 0; /* sign convention: the largest-magnitude entry is positive */
            for (int i = 1; i < M; i++)
                if (fabs(vec[t * M + i]) > fabs(vec[t * M + big])) big = i;
            assert_true(vec[t * M + big] > 0);
        }
    }
}

/* 6b. PCA recovers a planted 3-D subspace of 24-D data, with the right variances, and
 *     projects the centred rows onto it. */
static void test_pca_planted(void **state) {
    (void)state;
    enum { N = 2000, D = 24, K = 3 };
    tu_rng r = tu_rng_seed(66);
    double basis[K][D];
    for (int c = 0; c < K; c++) { /* orthonormal basis by Gram-Schmidt */
        for (int t = 0; t < D; t++) basis[c][t] = tu_normal(&r);
        for (int p = 0; p < c; p++) {
            double dot = 0;
            for (int t = 0; t < D; t++) dot += basis[c][t] * basis[p][t];
            for (int t = 0; t < D; t++) basis[c][t] -= dot * basis[p][t];
        }
        double nn = 0;
        for (int t = 0; t < D; t++) nn += basis[c][t] * basis[c][t];
        for (int t = 0; t < D; t++) basis[c][t] /= sqrt(nn);
    }
    const double sd[K] = {5.0, 3.0, 1.5};
    float *x = malloc(N * D * sizeof *x), *out = malloc(N * K * sizeof *out);
    assert_non_null(x);
    assert_non_null(out);
    for (int i = 0; i < N; i++) {
        double z[K];
        for (int c = 0; c < K; c++) z[c] = sd[c] * tu_normal(&r);
        for (int t = 0; t < D; t++) {
            double v = 10.0 + 0.01 * tu_normal(&r); /* an offset the centring must remove */
            for (int c = 0; c < K; c++) v += z[c] * basis[c][t];
            x[i * D + t] = (float)v;
        }
    }
    double comp[K * D], var[K];
    assert_int_equal(sc_an_pca(NULL, "test", x, N, D, K, out, comp, var), SUPCON_OK);
    for (int c = 0; c < K; c++) {
        double in = 0; /* squared length of the component inside the planted span */
        for (int p = 0; p < K; p++) {
            double dot = 0;
            for (int t = 0; t < D; t++) dot += comp[c * D + t] * basis[p][t];
            in += dot * dot;
        }
        print_message("component %d: variance %.4f (planted %.4f), in span %.8f\n", c, var[c], sd[c] * sd[c], in);
        assert_true(in > 1 - 1e-5);
        assert_true(fabs(var[c] - sd[c] * sd[c]) < 0.1 * sd[c] * sd[c]);
        if (c > 0) assert_true(var[c] < var[c - 1]);
    }
    /* the projection is (x - mean) . component, and each column has mean 0 and the variance */
    for (int c = 0; c < K; c++) {
        double m = 0, v = 0;
        for (int i = 0; i < N; i++) m += out[i * K + c];
        m /= N;
        for (int i = 0; i < N; i++) v += (out[i * K + c] - m) * (out[i * K + c] - m);
        v /= N - 1;
        assert_true(fabs(m) < 1e-3);
        assert_true(fabs(v - var[c]) < 1e-3 * var[c]);
    }
    free(x);
    free(out);
}

/* The kNN search: best first, ties to the smaller index, self excluded, any thread count. */
static void test_knn_order(void **state) {
    (void)state;
    /* points on a line with duplicates: 0, 1, 1, 2, 3, 3, 3, 10 */
    const float x[8] = {0, 1, 1, 2, 3, 3, 3, 10};
    float n2[8];
    for (int i = 0; i < 8; i++) n2[i] = x[i] * x[i];
    int32_t idx[8 * 3];
    sc_pool *pool = sc_pool_create(2);
    assert_non_null(pool);
    assert_int_equal(sc_an_knn(NULL, "test", pool, SC_KNN_L2, x, n2, 8, x, n2, 8, 1, 3, 1, idx, NULL), SUPCON_OK);
    const int32_t want[8][3] = {{1, 2, 3}, {2, 0, 3}, {1, 0, 3}, {1, 2, 4}, {5, 6, 3}, {4, 6, 3}, {4, 5, 3}, {4, 5, 6}};
    for (int i = 0; i < 8; i++)
        for (int t = 0; t < 3; t++)
            if (idx[i * 3 + t] != want[i][t])
                fail_msg("point %d neighbour %d: %d, want %d", i, t, idx[i * 3 + t], want[i][t]);
    sc_pool_destroy(pool);
    /* heap: any push order keeps the same best set */
    float hs[4];
    int32_t hi[4];
    sc_topk h = {hs, hi, 4, 0};
    const float s[10] = {0.5f, 0.9f, 0.1f, 0.9f, 0.3f, 0.7f, 0.9f, 0.2f, 0.8f, 0.6f};
    for (int i = 9; i >= 0; i--) sc_topk_push(&h, s[i], i);
    sc_topk_sort(&h);
    const int32_t want_i[4] = {1, 3, 6, 8};
    for (int t = 0; t < 4; t++) assert_int_equal(hi[t], want_i[t]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_gradient_fd),   cmocka_unit_test(test_bh_matches_exact),
        cmocka_unit_test(test_perplexity_calibration), cmocka_unit_test(test_dense_p),
        cmocka_unit_test(test_sym_eigen),           cmocka_unit_test(test_pca_planted),
        cmocka_unit_test(test_knn_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
