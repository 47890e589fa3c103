/* supcon_tsne_embed: argument checks, the optional PCA, the affinities, and the gradient
 * descent of scikit-learn's TSNE (momentum, gains, early exaggeration), on a worker pool
 * owned by the call. Leaves out: early stopping on a small gradient, other metrics than
 * Euclidean, PCA initialisation of Y, and Barnes-Hut in 3-D. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis_internal.h"
#include "context_internal.h"
#include "error.h"
#include "rng.h"
#include "supcon/analysis.h"

#define SC_FN "supcon_tsne_embed"
#define SC_TSNE_STREAM 0x74534e45ull /* "tSNE": the RNG stream of the initial Y */

supcon_tsne_config supcon_tsne_config_default(void) {
    supcon_tsne_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.out_dims = 2;
    c.perplexity = 30.0;
    c.method = SUPCON_TSNE_AUTO;
    c.theta = 0.5;
    c.pca_dims = 50;
    c.max_iter = 1000;
    c.learning_rate = 0.0;
    c.early_exaggeration = 12.0;
    c.exaggeration_iter = 250;
    c.momentum_initial = 0.5;
    c.momentum_final = 0.8;
    c.min_gain = 0.01;
    c.seed = 0;
    c.num_threads = 0;
    return c;
}

static double sc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sc_debug_on(const supcon_context *ctx) {
    return ctx && ctx->log_fn && ctx->log_level >= SUPCON_LOG_DEBUG;
}

static supcon_status sc_check_config(supcon_context *ctx, const supcon_tsne_config *cfg, supcon_tsne_config *c) {
    *c = supcon_tsne_config_default();
    if (cfg) {
        /* This is the first version of the struct: any size from it on is accepted. */
        if (cfg->struct_size < sizeof *c || cfg->struct_size > 4096)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            SC_FN ": cfg->struct_size %zu is not a supcon_tsne_config size (use "
                            "supcon_tsne_config_default())", cfg->struct_size);
        memcpy(c, cfg, sizeof *c);
        c->struct_size = sizeof *c;
    }
#define SC_BAD(cond, ...) \
    if (cond) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": " __VA_ARGS__)
    SC_BAD(c->out_dims != 2 && c->out_dims != 3, "cfg->out_dims %d must be 2 or 3", c->out_dims);
    SC_BAD(!(c->perplexity > 0.0) || !isfinite(c->perplexity), "cfg->perplexity %g must be finite and > 0",
           c->perplexity);
    SC_BAD((unsigned)c->method > SUPCON_TSNE_BARNES_HUT, "cfg->method %d is not a supcon_tsne_method",
           (int)c->method);
    SC_BAD(!(c->theta >= 0.0) || !isfinite(c->theta), "cfg->theta %g must be finite and >= 0", c->theta);
    SC_BAD(c->pca_dims < 0, "cfg->pca_dims %d must be >= 0", c->pca_dims);
    SC_BAD(c->max_iter < 1, "cfg->max_iter %d must be >= 1", c->max_iter);
    SC_BAD(!isfinite(c->learning_rate), "cfg->learning_rate %g must be finite (<= 0: automatic)",
           c->learning_rate);
    SC_BAD(!(c->early_exaggeration >= 1.0) || !isfinite(c->early_exaggeration),
           "cfg->early_exaggeration %g must be finite and >= 1", c->early_exaggeration);
    SC_BAD(c->exaggeration_iter < 0, "cfg->exaggeration_iter %d must be >= 0", c->exaggeration_iter);
    SC_BAD(!(c->momentum_initial >= 0.0 && c->momentum_initial < 1.0),
           "cfg->momentum_initial %g must be in [0, 1)", c->momentum_initial);
    SC_BAD(!(c->momentum_final >= 0.0 && c->momentum_final < 1.0), "cfg->momentum_final %g must be in [0, 1)",
           c->momentum_final);
    SC_BAD(!(c->min_gain >= 0.0) || !isfinite(c->min_gain), "cfg->min_gain %g must be finite and >= 0",
           c->min_gain);
    SC_BAD(c->num_threads < 0 || c->num_threads > 1024, "cfg->num_threads %d must be in 0..1024",
           c->num_threads);
#undef SC_BAD
    return SUPCON_OK;
}

/* Everything one run allocates, freed in one place. */
typedef struct {
    sc_pool *pool;
    float *xr;             /* PCA output [n, pca_dims], or NULL */
    double *P, *num;       /* exact: [n, n] and n * n + 2n scratch */
    int32_t *nbr;          /* Barnes-Hut: neighbours [n, k] */
    float *nbr_score;      /* their float scores */
    double *nbr_d2;        /* their exact squared distances */
    float *norm2;
    sc_sparse_p sp;
    sc_quadtree *tree;
    double *Y, *upd, *gain, *grad, *scratch;
} sc_tsne_run;

static void sc_tsne_run_free(sc_tsne_run *r) {
    if (r->pool) sc_pool_destroy(r->pool);
    free(r->xr);
    free(r->P);
    free(r->num);
    free(r->nbr);
    free(r->nbr_score);
    free(r->nbr_d2);
    free(r->norm2);
    sc_sparse_p_free(&r->sp);
    sc_quadtree_free(r->tree);
    free(r->Y);
    free(r->upd);
    free(r->gain);
    free(r->grad);
    free(r->scratch);
}

static supcon_status sc_oom(supcon_context *ctx, const char *what) {
    return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, SC_FN ": out of memory for %s", what);
}

/* n * m without overflow, or SIZE_MAX. */
static size_t sc_mul(size_t n, size_t m) { return m && n > SIZE_MAX / m ? SIZE_MAX : n * m; }

static supcon_status sc_sparse_affinities(supcon_context *ctx, sc_tsne_run *r, const float *x, size_t n,
                                          size_t d, const supcon_tsne_config *c) {
    int k = (int)ceil(3.0 * c->perplexity);
    if (k < 1) k = 1;
    if ((size_t)k > n - 1) k = (int)(n - 1);
    size_t nk = sc_mul(n, (size_t)k);
    r->norm2 = malloc(n * sizeof *r->norm2);
    r->nbr = malloc(sc_mul(nk, sizeof *r->nbr));
    r->nbr_score = malloc(sc_mul(nk, sizeof *r->nbr_score));
    r->nbr_d2 = malloc(sc_mul(nk, sizeof *r->nbr_d2));
    if (!r->norm2 || !r->nbr || !r->nbr_score || !r->nbr_d2) return sc_oom(ctx, "the neighbour lists");
    for (size_t i = 0; i < n; i++) {
        float s = 0.0f;
        for (size_t t = 0; t < d; t++) s += x[i * d + t] * x[i * d + t];
        r->norm2[i] = s;
    }
    supcon_status st = sc_an_knn(ctx, SC_FN, r->pool, SC_KNN_L2, x, r->norm2, n, x, r->norm2, n, d, k, 1,
                                 r->nbr, r->nbr_score);
    if (st != SUPCON_OK) return st;
    /* The search ranks by float products; the affinities use exact squared distances. */
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < k; t++) {
            const float *a = x + i * d, *b = x + (size_t)r->nbr[i * (size_t)k + (size_t)t] * d;
            double s = 0.0;
            for (size_t u = 0; u < d; u++) {
                double df = (double)a[u] - (double)b[u];
                s += df * df;
            }
            r->nbr_d2[i * (size_t)k + (size_t)t] = s;
        }
    if (sc_tsne_sparse_p(r->pool, r->nbr, r->nbr_d2, n, k, c->perplexity, &r->sp) != 0)
        return sc_oom(ctx, "the sparse affinities");
    sc_log(ctx, SUPCON_LOG_INFO, SC_FN ": sparse P over %d neighbours, %zu entries", k, r->sp.row[n]);
    return SUPCON_OK;
}

static supcon_status sc_gradient(supcon_context *ctx, sc_tsne_run *r, int method, size_t n, int dims,
                                 double theta, double ex, double *kl) {
    if (method == SUPCON_TSNE_EXACT) {
        double v = sc_tsne_exact_grad(r->pool, r->P, r->Y, n, dims, ex, r->grad, r->num, kl != NULL);
        if (kl) *kl = v;
        return SUPCON_OK;
    }
    if (sc_tsne_bh_grad(r->pool, r->tree, &r->sp, r->Y, n, theta, ex, r->grad, r->scratch, kl) != 0)
        return sc_oom(ctx, "the quadtree");
    return SUPCON_OK;
}

supcon_status supcon_tsne_embed(supcon_context *ctx, const supcon_tsne_config *cfg, const float *x, size_t n,
                                size_t d, float *y, supcon_tsne_report *report) {
    const double t0 = sc_now();
    supcon_tsne_config c;
    supcon_status st = sc_check_config(ctx, cfg, &c);
    if (st != SUPCON_OK) return st;
    if (!x) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": x is NULL");
    if (!y) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": y is NULL");
    if (report && (report->struct_size < sizeof(size_t) || report->struct_size > 4096))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_FN ": report->struct_size %zu is not a supcon_tsne_report size (set it to "
                        "sizeof(supcon_tsne_report))", report->struct_size);
    if (n < 2) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": n = %zu, need at least 2 points", n);
    if (n > INT32_MAX)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": n = %zu is over the limit of %d points", n,
                        INT32_MAX);
    if (d == 0) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": d is 0");
    if (sc_mul(n, d) == SIZE_MAX || sc_mul(n * d, sizeof(float)) == SIZE_MAX)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, SC_FN ": n x d = %zu x %zu overflows", n, d);

    int method = (int)c.method;
    if (method == SUPCON_TSNE_AUTO)
        method = n <= SUPCON_TSNE_AUTO_EXACT_MAX ? SUPCON_TSNE_EXACT : SUPCON_TSNE_BARNES_HUT;
    if (method == SUPCON_TSNE_BARNES_HUT && c.out_dims != 2)
        return sc_error(ctx, SUPCON_ERR_UNSUPPORTED,
                        SC_FN ": Barnes-Hut supports out_dims 2 only (out_dims %d, n = %zu%s); use "
                        "method SUPCON_TSNE_EXACT for 3-D", c.out_dims, n,
                        c.method == SUPCON_TSNE_AUTO ? ", chosen by AUTO" : "");
    if (method == SUPCON_TSNE_BARNES_HUT && !(3.0 * c.perplexity < (double)(n - 1)))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_FN ": cfg->perplexity %g is too large for n = %zu points with Barnes-Hut: "
                        "need 3 * perplexity < n - 1", c.perplexity, n);
    if (method == SUPCON_TSNE_EXACT && !(c.perplexity < (double)(n - 1)))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        SC_FN ": cfg->perplexity %g is too large for n = %zu points: need perplexity < n - 1",
                        c.perplexity, n);
    supcon_status fin = sc_an_check_finite(ctx, SC_FN, "x", x, n, d);
    if (fin != SUPCON_OK) return fin;
    const int dims = c.out_dims;
    if (method == SUPCON_TSNE_EXACT && (sc_mul(n, n) == SIZE_MAX || sc_mul(n * n, 2 * sizeof(double)) == SIZE_MAX))
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, SC_FN ": the exact method needs 16 n^2 bytes; n = %zu is too "
                        "large", n);

    sc_tsne_run r;
    memset(&r, 0, sizeof r);
    r.pool = sc_pool_create(c.num_threads);
    if (!r.pool) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, SC_FN ": could not start %d worker threads", c.num_threads);
        goto done;
    }
    const double lr = c.learning_rate > 0.0 ? c.learning_rate : fmax((double)n / c.early_exaggeration / 4.0, 50.0);
    sc_log(ctx, SUPCON_LOG_INFO, SC_FN ": n = %zu, d = %zu, %s, perplexity %g, learning rate %g, %d threads", n, d,
           method == SUPCON_TSNE_EXACT ? "exact" : "Barnes-Hut", c.perplexity, lr, sc_pool_size(r.pool));

    /* 1. PCA when asked for and useful. */
    const float *xin = x;
    size_t din = d;
    if (c.pca_dims > 0 && d > (size_t)c.pca_dims) {
        din = (size_t)c.pca_dims;
        r.xr = malloc(sc_mul(n, din * sizeof *r.xr));
        if (!r.xr) {
            st = sc_oom(ctx, "the PCA projection");
            goto done;
        }
        st = sc_an_pca(ctx, SC_FN, x, n, d, din, r.xr, NULL, NULL);
        if (st != SUPCON_OK) goto done;
        xin = r.xr;
        sc_log(ctx, SUPCON_LOG_INFO, SC_FN ": PCA %zu -> %zu dimensions (%.2f s)", d, din, sc_now() - t0);
    }

    /* 2. Affinities and the optimiser's buffers. */
    const size_t nd = n * (size_t)dims;
    r.Y = malloc(nd * sizeof *r.Y);
    r.upd = calloc(nd, sizeof *r.upd);
    r.gain = malloc(nd * sizeof *r.gain);
    r.grad = malloc(nd * sizeof *r.grad);
    if (!r.Y || !r.upd || !r.gain || !r.grad) {
        st = sc_oom(ctx, "the embedding");
        goto done;
    }
    if (method == SUPCON_TSNE_EXACT) {
        r.P = malloc(n * n * sizeof *r.P);
        r.num = malloc((n * n + 2 * n) * sizeof *r.num);
        if (!r.P || !r.num) {
            st = sc_oom(ctx, "the exact method's n x n matrices");
            goto done;
        }
        sc_tsne_exact_p(r.pool, xin, n, din, c.perplexity, r.P);
    } else {
        st = sc_sparse_affinities(ctx, &r, xin, n, din, &c);
        if (st != SUPCON_OK) goto done;
        r.tree = sc_quadtree_create(n);
        r.scratch = malloc(3 * n * sizeof *r.scratch);
        if (!r.tree || !r.scratch) {
            st = sc_oom(ctx, "the quadtree");
            goto done;
        }
    }
    sc_log(ctx, SUPCON_LOG_INFO, SC_FN ": affinities ready (%.2f s)", sc_now() - t0);

    /* 3. Gradient descent from Y ~ N(0, 1e-4^2). */
    for (size_t i = 0; i < nd; i++) {
        r.Y[i] = 1e-4 * sc_rng_normal_at(c.seed, SC_TSNE_STREAM, (uint64_t)i);
        r.gain[i] = 1.0;
    }
    const int debug = sc_debug_on(ctx);
    for (int it = 0; it < c.max_iter; it++) {
        const int early = it < c.exaggeration_iter;
        const double ex = early ? c.early_exaggeration : 1.0;
        const double mom = early ? c.momentum_initial : c.momentum_final;
        const int want_kl = debug && (it + 1) % 50 == 0;
        double kl = 0.0;
        st = sc_gradient(ctx, &r, method, n, dims, c.theta, ex, want_kl ? &kl : NULL);
        if (st != SUPCON_OK) goto done;
        for (size_t i = 0; i < nd; i++) {
            double g = r.grad[i];
            r.gain[i] = r.upd[i] * g < 0.0 ? r.gain[i] + 0.2 : r.gain[i] * 0.8;
            if (r.gain[i] < c.min_gain) r.gain[i] = c.min_gain;
            r.upd[i] = mom * r.upd[i] - lr * r.gain[i] * g;
            r.Y[i] += r.upd[i];
        }
        for (int a = 0; a < dims; a++) {
            double m = 0.0;
            for (size_t i = 0; i < n; i++) m += r.Y[i * (size_t)dims + (size_t)a];
            m /= (double)n;
            for (size_t i = 0; i < n; i++) r.Y[i * (size_t)dims + (size_t)a] -= m;
        }
        if (want_kl)
            sc_log(ctx, SUPCON_LOG_DEBUG, SC_FN ": step %d, KL %.6f%s", it + 1, kl,
                   early ? " (early exaggeration phase)" : "");
    }

    /* 4. The result's KL (P not exaggerated), then the output. */
    double kl = 0.0;
    st = sc_gradient(ctx, &r, method, n, dims, c.theta, 1.0, &kl);
    if (st != SUPCON_OK) goto done;
    for (size_t i = 0; i < nd; i++) y[i] = (float)r.Y[i];
    const double secs = sc_now() - t0;
    sc_log(ctx, SUPCON_LOG_INFO, SC_FN ": done, KL %.6f after %d steps (%.2f s)", kl, c.max_iter, secs);
    if (report) {
        supcon_tsne_report out;
        memset(&out, 0, sizeof out);
        out.struct_size = report->struct_size;
        out.kl_divergence = kl;
        out.iterations = c.max_iter;
        out.seconds = secs;
        out.method_used = method;
        out.input_dims = (int)din;
        memcpy(report, &out, report->struct_size < sizeof out ? report->struct_size : sizeof out);
    }
done:
    sc_tsne_run_free(&r);
    return st;
}
