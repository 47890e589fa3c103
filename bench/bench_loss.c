/* bench_loss: time and memory of SupConLoss forward+backward through the public API only,
 * against the GEMM bound measured with cblas_sgemm in the same process. A measuring
 * program, not a test: it checks statuses but never the loss value (tests do that). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "supcon/supcon.h"

#include "bench_util.h"

#define MAX_SIZES 32
#define NUM_CLASSES 10

typedef struct options {
    supcon_backend_kind backend;
    int64_t sizes[MAX_SIZES];
    int n_sizes;
    int64_t dim;
    int views;
    int simclr;  /* 0: labels from NUM_CLASSES classes, 1: no labels */
    int repeat;
    int warmup;
    int threads; /* 0: library default (one per core) */
    int json;
    int sgemm_n;
    uint64_t seed;
} options;

/* ---- Inputs: counter-based splitmix64, reproduced by loss_torch.py ----------------------- */
/* Element k of stream `seed` depends on k alone, so a vectorised copy in numpy gives the
 * very same features and labels and the two programs can print comparable loss values. */

static double uniform_at(uint64_t seed, uint64_t k) {
    return (double)(splitmix64_at(seed, k) >> 11) * (1.0 / 9007199254740992.0);
}

/* features (B, V, D): standard normal rows scaled to unit L2 norm. */
static void make_features(float *x, int64_t rows, int64_t dim, uint64_t seed) {
    const double two_pi = 6.283185307179586;
    double *row = malloc((size_t)dim * sizeof *row);
    if (!row) abort();
    for (int64_t r = 0; r < rows; ++r) {
        double ss = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
            uint64_t k = (uint64_t)(r * dim + j);
            double u1 = uniform_at(seed, 2 * k), u2 = uniform_at(seed, 2 * k + 1);
            double g = sqrt(-2.0 * log(1.0 - u1)) * cos(two_pi * u2);
            row[j] = g;
            ss += g * g;
        }
        double inv = 1.0 / sqrt(ss > 0.0 ? ss : 1.0);
        for (int64_t j = 0; j < dim; ++j) x[r * dim + j] = (float)(row[j] * inv);
    }
    free(row);
}

static void make_labels(int64_t *y, int64_t b, uint64_t seed) {
    for (int64_t i = 0; i < b; ++i) y[i] = (int64_t)(splitmix64_at(seed ^ 0x5EEDull, (uint64_t)i) % NUM_CLASSES);
}

/* ---- Statistics ------------------------------------------------------------------------ */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- sgemm reference ------------------------------------------------------------------- */
/* GFLOP/s of one n x n x n cblas_sgemm, median of a few runs after a warm-up. Runs before
 * any context exists, with OpenBLAS's own threading (set by --threads when given). */
static double measure_sgemm_gflops(int n, int reps) {
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return -1.0;
    }
    for (size_t i = 0; i < nn; ++i) {
        a[i] = (float)uniform_at(1, i) - 0.5f;
        b[i] = (float)uniform_at(2, i) - 0.5f;
        c[i] = 0.0f;
    }
    double t[16];
    if (reps > 16) reps = 16;
    for (int r = -1; r < reps; ++r) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now_s() - t0;
        if (r >= 0) t[r] = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * (double)n * (double)n * (double)n / median(t, reps) * 1e-9;
}

/* ---- One size ------------------------------------------------------------------------- */
typedef struct result {
    int64_t n;
    double ms_median, ms_min;
    double loss;
    size_t ctx_peak;
    long long rss_delta;
    const char *backend;
    int ok;
    char error[256];
} result;

#define CHECK(call)                                                                          \
    do {                                                                                     \
        supcon_status st_ = (call);                                                          \
        if (st_ != SUPCON_OK) {                                                              \
            snprintf(res->error, sizeof res->error, "%s: %s (%s)", #call,                    \
                     supcon_status_name(st_),                                                \
                     supcon_context_last_error(ctx));                                        \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

static void run_size(const options *o, int64_t n, result *res) {
    memset(res, 0, sizeof *res);
    res->n = n;
    res->rss_delta = -1;
    res->backend = "?";
    int64_t b = n / o->views;
    int64_t shape[3] = {b, o->views, o->dim};
    int64_t lshape[1] = {b};
    size_t feat_bytes = (size_t)(b * o->views * o->dim) * sizeof(float);

    supcon_context *ctx = NULL;
    supcon_loss *loss = NULL;
    supcon_tensor *feat = NULL, *lab = NULL, *grad = NULL, *sync = NULL;
    float sync_host = 0.0f;
    double *times = calloc((size_t)o->repeat, sizeof *times);
    float *host = malloc(feat_bytes);
    int64_t *host_labels = malloc((size_t)b * sizeof *host_labels);
    if (!times || !host || !host_labels) {
        snprintf(res->error, sizeof res->error, "host allocation of %zu bytes failed", feat_bytes);
        goto done;
    }
    make_features(host, b * o->views, o->dim, o->seed);
    make_labels(host_labels, b, o->seed);

    supcon_context_config cc = supcon_context_config_default();
    cc.backend = o->backend;
    cc.num_threads = o->threads;
    cc.seed = o->seed;
    /* A fresh context per size, so its peak counter belongs to this size alone. */
    {
        supcon_status st = supcon_context_create(&cc, &ctx);
        if (st != SUPCON_OK) {
            snprintf(res->error, sizeof res->error, "supcon_context_create: %s (%s)",
                     supcon_status_name(st), supcon_context_last_error(NULL));
            goto done;
        }
    }
    res->backend = supcon_context_backend_name(ctx);
    CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &feat));
    CHECK(supcon_tensor_upload(feat, host, feat_bytes));
    if (!o->simclr) {
        CHECK(supcon_tensor_create(ctx, SUPCON_INT64, 1, lshape, &lab));
        CHECK(supcon_tensor_upload(lab, host_labels, (size_t)b * sizeof *host_labels));
    }

    /* The memory the loss itself costs: from here (inputs in place) to the peak, gradient
     * buffer included, as loss_torch.py measures PyTorch (whose backward allocates it). */
    reset_peak_rss();
    long long rss0 = current_rss_bytes();

    supcon_loss_config lc = supcon_loss_config_default();
    CHECK(supcon_loss_create(ctx, &lc, &loss));
    CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &grad));
    if (supcon_context_backend(ctx) == SUPCON_BACKEND_CUDA) {
        int64_t one = 1;
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 1, &one, &sync));
        CHECK(supcon_tensor_upload(sync, &sync_host, sizeof sync_host));
    }

    float value = 0.0f;
    for (int w = 0; w < o->warmup; ++w) {
        CHECK(supcon_loss_forward(loss, feat, lab, NULL, &value));
        CHECK(supcon_loss_backward(loss, grad));
    }
    for (int r = 0; r < o->repeat; ++r) {
        double t0 = now_s();
        CHECK(supcon_loss_forward(loss, feat, lab, NULL, &value));
        CHECK(supcon_loss_backward(loss, grad));
        /* On CUDA, forward returns the value (a sync) but backward may return while the
         * device still works: a tiny download waits for it (best effort, one stream). */
        if (sync) CHECK(supcon_tensor_download(sync, &sync_host, sizeof sync_host));
        times[r] = now_s() - t0;
    }
    long long rss1 = peak_rss_bytes();
    res->rss_delta = (rss0 >= 0 && rss1 >= 0) ? rss1 - rss0 : -1;
    res->ctx_peak = supcon_context_peak_bytes(ctx);
    res->loss = value;
    res->ms_min = 1e300;
    for (int r = 0; r < o->repeat; ++r)
        if (times[r] < res->ms_min) res->ms_min = times[r];
    res->ms_min *= 1e3;
    res->ms_median = median(times, o->repeat) * 1e3;
    res->ok = 1;
done:
    supcon_tensor_free(sync);
    supcon_tensor_free(grad);
    supcon_tensor_free(lab);
    supcon_tensor_free(feat);
    supcon_loss_free(loss);
    supcon_context_free(ctx);
    free(host_labels);
    free(host);
    free(times);
}

/* ---- Command line ---------------------------------------------------------------------- */
static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_loss [--backend cpu|cuda|auto] [--sizes 512,2048,8192,65536]\n"
            "                  [--dim 128] [--views 2] [--mode labels|simclr] [--repeat R]\n"
            "                  [--warmup W] [--threads T] [--sgemm-n 2048] [--seed S] [--json]\n"
            "N is the number of anchors B*V (contrast mode all). Each size: W warm-up and R\n"
            "timed forward+backward pairs; prints the median and minimum time, the effective\n"
            "GFLOP/s (3 GEMMs of N*N*D multiply-adds) and its fraction of cblas_sgemm's.\n");
}

static int parse_sizes(const char *s, options *o) {
    o->n_sizes = 0;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v <= 0 || o->n_sizes == MAX_SIZES) return 0;
        o->sizes[o->n_sizes++] = v;
        s = end;
        if (*s == ',') ++s;
        else if (*s) return 0;
    }
    return o->n_sizes > 0;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.backend = SUPCON_BACKEND_CPU, .dim = 128, .views = 2, .repeat = 5,
                   .warmup = 1, .sgemm_n = 2048, .seed = 12345};
    parse_sizes("512,2048,8192,65536", o);
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE() do { if (!v) { fprintf(stderr, "%s needs a value\n", a); return 0; } ++i; } while (0)
        if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--backend")) {
            NEEDS_VALUE();
            if (!strcmp(v, "cpu")) o->backend = SUPCON_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) o->backend = SUPCON_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) o->backend = SUPCON_BACKEND_AUTO;
            else { fprintf(stderr, "unknown backend '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--sizes")) {
            NEEDS_VALUE();
            if (!parse_sizes(v, o)) { fprintf(stderr, "bad --sizes '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--mode")) {
            NEEDS_VALUE();
            if (!strcmp(v, "labels")) o->simclr = 0;
            else if (!strcmp(v, "simclr")) o->simclr = 1;
            else { fprintf(stderr, "unknown mode '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--dim") || !strcmp(a, "--views") || !strcmp(a, "--repeat") ||
                   !strcmp(a, "--warmup") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--sgemm-n") || !strcmp(a, "--seed")) {
            NEEDS_VALUE();
            char *end;
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno || *end || x < 0) { fprintf(stderr, "bad value for %s: '%s'\n", a, v); return 0; }
            if (!strcmp(a, "--dim")) o->dim = x;
            else if (!strcmp(a, "--views")) o->views = (int)x;
            else if (!strcmp(a, "--repeat")) o->repeat = (int)x;
            else if (!strcmp(a, "--warmup")) o->warmup = (int)x;
            else if (!strcmp(a, "--threads")) o->threads = (int)x;
            else if (!strcmp(a, "--sgemm-n")) o->sgemm_n = (int)x;
            else o->seed = (uint64_t)x;
        } else {
            fprintf(stderr, "unknown option '%s'\n", a);
            usage(stderr);
            return 0;
        }
#undef NEEDS_VALUE
    }
    if (o->dim < 1 || o->views < 1 || o->repeat < 1) {
        fprintf(stderr, "--dim, --views and --repeat must be >= 1\n");
        return 0;
    }
    for (int i = 0; i < o->n_sizes; ++i) {
        if (o->sizes[i] % o->views) {
            fprintf(stderr, "size %lld is not a multiple of %d views\n",
                    (long long)o->sizes[i], o->views);
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) return 2;

    /* The GEMM reference is the host's OpenBLAS; it means nothing for a CUDA run. */
    int want_sgemm = o.backend != SUPCON_BACKEND_CUDA && o.sgemm_n > 0;
    if (o.threads > 0) openblas_set_num_threads(o.threads);
    double sgemm = want_sgemm ? measure_sgemm_gflops(o.sgemm_n, 3) : -1.0;
    const char *mode = o.simclr ? "simclr" : "labels";

    if (o.json) {
        printf("{\"kind\":\"sgemm\",\"n\":%d,\"gflops\":%.2f,\"openblas_threads\":%d,"
               "\"openblas_core\":\"%s\",\"libsupcon\":\"%s\"}\n",
               o.sgemm_n, sgemm, openblas_get_num_threads(), openblas_get_corename(),
               supcon_version_string());
    } else {
        printf("libsupcon %s, D=%lld, V=%d, mode %s, %d warm-up + %d timed fwd+bwd per size\n",
               supcon_version_string(), (long long)o.dim, o.views, mode, o.warmup, o.repeat);
        if (sgemm > 0)
            printf("cblas_sgemm %dx%dx%d: %.1f GFLOP/s (OpenBLAS %s, %d threads)\n", o.sgemm_n,
                   o.sgemm_n, o.sgemm_n, sgemm, openblas_get_corename(),
                   openblas_get_num_threads());
        printf("%8s %7s %5s %11s %11s %9s %8s %11s %11s %10s\n", "N", "mode", "back",
               "median ms", "min ms", "GFLOP/s", "% sgemm", "ctx peak MB", "RSS +MB", "loss");
    }
    fflush(stdout);

    int failures = 0;
    for (int i = 0; i < o.n_sizes; ++i) {
        result r;
        run_size(&o, o.sizes[i], &r);
        double flop = 3.0 * 2.0 * (double)r.n * (double)r.n * (double)o.dim;
        double gflops = r.ok ? flop / (r.ms_median * 1e-3) * 1e-9 : -1.0;
        double pct = (r.ok && sgemm > 0) ? 100.0 * gflops / sgemm : -1.0;
        if (!r.ok) ++failures;
        if (o.json) {
            if (!r.ok) {
                printf("{\"kind\":\"loss\",\"N\":%lld,\"mode\":\"%s\",\"backend\":\"%s\","
                       "\"error\":\"", (long long)r.n, mode, r.backend);
                for (const char *c = r.error; *c; ++c) /* keep the line valid JSON */
                    if (*c == '"' || *c == '\\') printf("\\%c", *c);
                    else if ((unsigned char)*c >= 0x20) putchar(*c);
                printf("\"}\n");
            } else {
                printf("{\"kind\":\"loss\",\"N\":%lld,\"B\":%lld,\"V\":%d,\"D\":%lld,"
                       "\"mode\":\"%s\",\"backend\":\"%s\",\"threads\":%d,\"warmup\":%d,"
                       "\"repeat\":%d,\"ms_median\":%.3f,\"ms_min\":%.3f,\"gflops\":%.2f,"
                       "\"sgemm_gflops\":%.2f,\"pct_sgemm\":%.2f,\"ctx_peak_bytes\":%zu,"
                       "\"rss_delta_bytes\":%lld,\"loss\":%.7g}\n",
                       (long long)r.n, (long long)(r.n / o.views), o.views, (long long)o.dim,
                       mode, r.backend, o.threads, o.warmup, o.repeat, r.ms_median, r.ms_min,
                       gflops, sgemm, pct, r.ctx_peak, r.rss_delta, r.loss);
            }
        } else if (!r.ok) {
            printf("%8lld %7s %5s  FAILED: %s\n", (long long)r.n, mode, r.backend, r.error);
        } else {
            char pcts[16] = "-";
            if (pct >= 0) snprintf(pcts, sizeof pcts, "%.1f", pct);
            printf("%8lld %7s %5s %11.2f %11.2f %9.1f %8s %11.1f %11.1f %10.6f\n",
                   (long long)r.n, mode, r.backend, r.ms_median, r.ms_min, gflops, pcts,
                   (double)r.ctx_peak / 1048576.0,
                   r.rss_delta >= 0 ? (double)r.rss_delta / 1048576.0 : -1.0, r.loss);
        }
        fflush(stdout);
    }
    return failures ? 1 : 0;
}
