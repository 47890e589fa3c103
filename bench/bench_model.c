/* bench_model: time and memory of whole training steps and of inference through the public
 * API only (model.h, loss.h, optim.h). One case per run, in a fresh context:
 *   supcon  two views of bsz images 3x32x32 as one batch of 2*bsz through encoder + MLP head,
 *           SupConLoss with labels (temperature 0.1), backward, SGD (momentum 0.9, wd 1e-4)
 *   ce      bsz images through encoder + Linear(d, 10), cross-entropy, backward, SGD
 *   infer   bsz images through the encoder alone in inference mode (forward only)
 * Each step is also split into its phases on the same clock (the calls are synchronous on
 * the CPU backend). A measuring program, not a test: statuses are checked, values are not. */
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

#define NUM_CLASSES 10
#define IMG 32
#define CHANNELS 3
#define FEAT_DIM 128

typedef enum bench_case { CASE_SUPCON = 0, CASE_CE = 1, CASE_INFER = 2 } bench_case;
static const char *const case_names[] = {"supcon", "ce", "infer"};
/* Where each step's images come from: already on the backend (the network alone), or a new
 * host batch per step through supcon_tensor_upload, or through a supcon_uploader. */
typedef enum bench_inputs { INPUTS_RESIDENT = 0, INPUTS_UPLOAD = 1, INPUTS_PUSH = 2 } bench_inputs;
static const char *const inputs_names[] = {"resident", "upload", "push"};

typedef struct options {
    bench_case kind;
    supcon_arch arch;
    int64_t bsz;  /* supcon: samples (2 views each); ce, infer: images */
    int repeat;
    int warmup;
    int threads;  /* 0: library default (one per core) */
    supcon_backend_kind backend; /* --backend cpu|cuda|auto, default cpu */
    int json;
    uint64_t seed;
    int profile;  /* --profile N: N more steps with supcon_context_set_profiling on */
    supcon_precision precision; /* --precision fp32|tf32|bf16 */
    bench_inputs inputs;        /* --inputs resident|upload|push */
    char variant[32];           /* --variant NAME: how the run differs beyond the flags (JSON) */
} options;

/* ---- Inputs: splitmix64_at (bench_util.h) --------------------------------------------- */
/* Images: uniform in [-2, 2), about the range of normalised CIFAR pixels. */
static void make_images(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; ++i)
        x[i] = (float)((double)(splitmix64_at(seed, i) >> 11) * (4.0 / 9007199254740992.0) - 2.0);
}

static void make_labels(int64_t *y, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; ++i)
        y[i] = (int64_t)(splitmix64_at(seed ^ 0x5EEDull, (uint64_t)i) % NUM_CLASSES);
}

/* ---- Statistics ------------------------------------------------------------------------ */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts a copy). */
static double median_of(const double *v, int n) {
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) abort();
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* ---- Profile categories ---------------------------------------------------------------- */
/* The library's profile names folded into the categories bench/model_torch.py --profile
 * reports for PyTorch, so the two can be set side by side. First matching prefix wins. */
enum {
    CAT_CONV_FWD, CAT_CONV_BWD_DATA, CAT_CONV_BWD_FILTER, CAT_BN_FWD, CAT_BN_BWD, CAT_ELTWISE,
    CAT_POOL, CAT_LINEAR, CAT_L2NORM, CAT_LOSS, CAT_OPT, CAT_COPY, CAT_OTHER, NCAT
};
static const char *const cat_names[NCAT] = {
    "conv forward", "conv backward data", "conv backward filter", "batchnorm forward",
    "batchnorm backward", "elementwise", "pool", "linear", "l2norm", "loss", "optimizer",
    "copies", "other"};
static const struct { const char *prefix; int cat; } cat_rules[] = {
    {"conv2d forward", CAT_CONV_FWD},       {"conv2d backward (data)", CAT_CONV_BWD_DATA},
    {"conv2d backward (filter)", CAT_CONV_BWD_FILTER},
    {"batchnorm forward", CAT_BN_FWD},      {"batchnorm backward", CAT_BN_BWD},
    {"batchnorm+relu forward", CAT_BN_FWD}, {"batchnorm+relu backward", CAT_BN_BWD},
    {"relu", CAT_ELTWISE},                  {"add+relu", CAT_ELTWISE},
    {"head relu", CAT_ELTWISE},             {"accumulate", CAT_ELTWISE},
    {"average pool", CAT_POOL},             {"head", CAT_LINEAR},
    {"fc ", CAT_LINEAR},                    {"l2norm", CAT_L2NORM},
    {"supcon loss", CAT_LOSS},              {"cross-entropy", CAT_LOSS},
    {"sgd", CAT_OPT},                       {"tensor ", CAT_COPY},
    {"uploading", CAT_COPY},
};

static int category_of(const char *name) {
    for (size_t i = 0; i < sizeof cat_rules / sizeof cat_rules[0]; ++i)
        if (strncmp(name, cat_rules[i].prefix, strlen(cat_rules[i].prefix)) == 0) return cat_rules[i].cat;
    return CAT_OTHER;
}

#define MAX_PROF 512

/* ---- One case -------------------------------------------------------------------------- */
enum { PH_FWD = 0, PH_LOSS = 1, PH_BWD = 2, PH_OPT = 3, PH_STEP = 4, NPH = 5 };

typedef struct result {
    int64_t images;            /* images per step */
    double ms[NPH];            /* medians: forward, loss (fwd+bwd), model backward, zero_grad+SGD, step */
    double ms_min;             /* fastest step */
    double loss;               /* last loss value (0 for infer) */
    size_t ctx_peak;           /* supcon_context_peak_bytes */
    size_t model_bytes, act_bytes;
    long long rss_delta;       /* VmHWM above the RSS with the inputs in place */
    long long rss_peak;        /* VmHWM, whole process */
    int64_t params;
    double *step_ms;           /* the timed steps, in order (owned by the caller) */
    double cat_ms[NCAT];       /* --profile: ms per step in each category */
    double prof_step_ms;       /* --profile: wall ms per profiled step (slower: synchronised) */
    int64_t nprof;             /* --profile: entries below */
    struct { char name[96]; int64_t calls; double ms; } prof[MAX_PROF]; /* per step */
    int ok;
    char error[256];
} result;

#define CHECK(call)                                                                          \
    do {                                                                                     \
        supcon_status st_ = (call);                                                          \
        if (st_ != SUPCON_OK) {                                                              \
            snprintf(res->error, sizeof res->error, "%s: %s (%s)", #call,                    \
                     supcon_status_name(st_), supcon_context_last_error(ctx));               \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

static void run_case(const options *o, result *res) {
    double *step_ms = res->step_ms;
    memset(res, 0, sizeof *res);
    res->step_ms = step_ms;
    res->rss_delta = -1;
    const int supcon = o->kind == CASE_SUPCON, train = o->kind != CASE_INFER;
    const int64_t b = o->bsz;
    const int64_t n = supcon ? 2 * b : b; /* images through the network per step */
    res->images = n;
    int64_t ishape[4] = {n, CHANNELS, IMG, IMG};
    int64_t lshape[1] = {b};
    int64_t fshape[3] = {b, 2, FEAT_DIM};
    int64_t gshape[2] = {n, NUM_CLASSES};
    size_t in_elems = (size_t)(n * CHANNELS * IMG * IMG);

    supcon_context *ctx = NULL;
    supcon_model *m = NULL;
    supcon_loss *loss = NULL;
    supcon_sgd *opt = NULL;
    supcon_tensor *in = NULL, *lab = NULL, *grad = NULL, *feat = NULL, *sync = NULL;
    supcon_uploader *up_in = NULL, *up_lab = NULL;
    int total = o->warmup + o->repeat + o->profile;
    double prof_t0 = 0.0;
    double *t[NPH] = {0};
    /* two host batches, used in turn when a new batch goes up every step */
    float *host = malloc(2 * in_elems * sizeof *host);
    int64_t *host_labels = malloc(2 * (size_t)b * sizeof *host_labels);
    for (int p = 0; p < NPH; ++p) t[p] = calloc((size_t)total + 1, sizeof(double));
    if (!host || !host_labels || !t[0] || !t[1] || !t[2] || !t[3] || !t[4]) {
        snprintf(res->error, sizeof res->error, "host allocation failed");
        goto done;
    }
    /* Sample-major two-view layout: image i's views at rows 2i and 2i+1, so the head output
     * [2B, 128] is the loss's [B, 2, 128] without a copy (docs/model.md, "Two views"). The
     * pixels are random either way; only the layout matters for the step's work. */
    make_images(host, in_elems, o->seed);
    make_labels(host_labels, b, o->seed);
    make_images(host + in_elems, in_elems, o->seed + 1);
    make_labels(host_labels + b, b, o->seed + 1);

    supcon_context_config cc = supcon_context_config_default();
    cc.backend = o->backend;
    cc.num_threads = o->threads;
    cc.seed = o->seed;
    cc.precision = o->precision;
    {
        supcon_status st = supcon_context_create(&cc, &ctx);
        if (st != SUPCON_OK) {
            snprintf(res->error, sizeof res->error, "supcon_context_create: %s (%s)",
                     supcon_status_name(st), supcon_context_last_error(NULL));
            goto done;
        }
    }
    if (supcon_context_backend(ctx) == SUPCON_BACKEND_CUDA) {
        const int64_t one[1] = {1};
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 1, one, &sync));
    }
    if (o->inputs != INPUTS_PUSH) { /* (the uploaders hold their own) */
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 4, ishape, &in));
        CHECK(supcon_tensor_upload(in, host, in_elems * sizeof *host));
        if (train) {
            CHECK(supcon_tensor_create(ctx, SUPCON_INT64, 1, lshape, &lab));
            CHECK(supcon_tensor_upload(lab, host_labels, (size_t)b * sizeof *host_labels));
        }
    }

    /* Memory of the model, optimiser and step, counted from here (inputs in place), as
     * model_torch.py counts PyTorch's. */
    reset_peak_rss();
    long long rss0 = current_rss_bytes();

    supcon_model_config mc = supcon_model_config_default();
    mc.arch = o->arch;
    mc.head = supcon ? SUPCON_HEAD_MLP : SUPCON_HEAD_NONE;
    mc.num_classes = o->kind == CASE_CE ? NUM_CLASSES : 0;
    CHECK(supcon_model_create(ctx, &mc, &m));
    CHECK(supcon_model_set_training(m, train));
    CHECK(supcon_model_reserve(m, n, IMG, IMG));
    {
        int64_t off, cnt;
        CHECK(supcon_model_trainable_range(m, &off, &cnt));
        res->params = cnt;
    }
    if (supcon) {
        supcon_loss_config lc = supcon_loss_config_default();
        lc.temperature = 0.1f; /* --temp 0.1; base_temperature stays 0.07 as the reference */
        CHECK(supcon_loss_create(ctx, &lc, &loss));
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, fshape, &grad));
    } else if (train) {
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 2, gshape, &grad));
    }
    if (train) {
        supcon_sgd_config sc = supcon_sgd_config_default(); /* momentum 0.9, wd 1e-4 */
        sc.learning_rate = supcon ? 0.05 : 0.2;
        CHECK(supcon_sgd_create(ctx, &sc, &opt));
        CHECK(supcon_sgd_add_model(opt, 0, m, NULL, 0));
    }

    if (o->inputs == INPUTS_PUSH) {
        CHECK(supcon_uploader_create(ctx, &up_in));
        CHECK(supcon_uploader_create(ctx, &up_lab));
    }

    float value = 0.0f;
    /* With a new batch every step the steps are not synchronised one by one: the next batch's
     * copy may overlap this one's work, as in a training loop. A step then lasts from its
     * start to the next one's (the last to the final wait). */
    const int pipelined = o->inputs != INPUTS_RESIDENT;
    double *starts = t[PH_STEP];
    for (int r = 0; r < total; ++r) {
        if (o->profile && r == o->warmup + o->repeat) { /* the timed steps are done */
            CHECK(supcon_context_set_profiling(ctx, 1));
            prof_t0 = now_s();
        }
        double t0 = now_s();
        const supcon_tensor *x = in, *y = lab;
        const float *src = host + (size_t)(r & 1) * in_elems;
        const int64_t *src_labels = host_labels + (size_t)(r & 1) * (size_t)b;
        if (o->inputs == INPUTS_UPLOAD) {
            CHECK(supcon_tensor_upload(in, src, in_elems * sizeof *src));
            if (train) CHECK(supcon_tensor_upload(lab, src_labels, (size_t)b * sizeof *src_labels));
        } else if (o->inputs == INPUTS_PUSH) {
            CHECK(supcon_uploader_push(up_in, SUPCON_FLOAT32, 4, ishape, src, in_elems * sizeof *src, &x));
            if (train)
                CHECK(supcon_uploader_push(up_lab, SUPCON_INT64, 1, lshape, src_labels,
                                           (size_t)b * sizeof *src_labels, &y));
        }
        CHECK(supcon_model_forward(m, x));
        double t1 = now_s(), t2 = t1, t3 = t1, t4 = t1;
        if (supcon) {
            /* The head output [2B, 128] viewed as [B, 2, 128]: a wrap, no copy. */
            supcon_tensor *z = (supcon_tensor *)supcon_model_head_output(m);
            CHECK(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 3, fshape, supcon_tensor_data(z),
                                     supcon_tensor_memory(z), &feat));
            CHECK(supcon_loss_forward(loss, feat, y, NULL, &value));
            CHECK(supcon_loss_backward(loss, grad));
            supcon_tensor_free(feat);
            feat = NULL;
            t2 = now_s();
            CHECK(supcon_model_zero_grad(m));
            CHECK(supcon_model_backward(m, grad, NULL, NULL));
            t3 = now_s();
            CHECK(supcon_sgd_step(opt));
            t4 = now_s();
        } else if (train) {
            CHECK(supcon_model_cross_entropy(m, y, &value, NULL, NULL, grad));
            t2 = now_s();
            CHECK(supcon_model_zero_grad(m));
            CHECK(supcon_model_backward(m, NULL, grad, NULL));
            t3 = now_s();
            CHECK(supcon_sgd_step(opt));
            t4 = now_s();
        }
        if (sync && (!pipelined || r + 1 == total)) { /* CUDA work is queued: a 4-byte download waits for all of it */
            float one;
            CHECK(supcon_tensor_download(sync, &one, sizeof one));
            t4 = now_s();
        }
        t[PH_FWD][r] = t1 - t0;
        t[PH_LOSS][r] = t2 - t1;
        t[PH_BWD][r] = t3 - t2; /* zero_grad (a memset) is counted with the backward */
        t[PH_OPT][r] = t4 - t3;
        if (pipelined) starts[r] = t0;
        else t[PH_STEP][r] = t4 - t0;
    }
    if (pipelined) { /* the last step ended with the final wait, just now */
        starts[total] = now_s();
        for (int r = 0; r < total; ++r) starts[r] = starts[r + 1] - starts[r];
    }
    if (o->profile) {
        res->prof_step_ms = 1e3 * (now_s() - prof_t0) / o->profile;
        supcon_profile_entry *e = calloc(MAX_PROF, sizeof *e);
        if (!e) {
            snprintf(res->error, sizeof res->error, "host allocation failed");
            goto done;
        }
        int64_t cnt = 0;
        supcon_status ps = supcon_context_profile(ctx, e, MAX_PROF, &cnt);
        if (ps != SUPCON_OK) {
            free(e);
            CHECK(ps);
        }
        res->nprof = cnt < MAX_PROF ? cnt : MAX_PROF;
        for (int64_t i = 0; i < res->nprof; ++i) {
            const double ms = 1e3 * e[i].seconds / o->profile;
            snprintf(res->prof[i].name, sizeof res->prof[i].name, "%s", e[i].name);
            res->prof[i].calls = e[i].calls / o->profile;
            res->prof[i].ms = ms;
            res->cat_ms[category_of(e[i].name)] += ms;
        }
        free(e);
    }
    long long rss1 = peak_rss_bytes();
    res->rss_peak = rss1;
    res->rss_delta = (rss0 >= 0 && rss1 >= 0) ? rss1 - rss0 : -1;
    res->ctx_peak = supcon_context_peak_bytes(ctx);
    res->model_bytes = supcon_model_bytes(m);
    res->act_bytes = supcon_model_activation_bytes(m);
    res->loss = value;
    for (int p = 0; p < NPH; ++p) res->ms[p] = 1e3 * median_of(t[p] + o->warmup, o->repeat);
    res->ms_min = 1e300;
    for (int r = o->warmup; r < o->warmup + o->repeat; ++r)
        if (t[PH_STEP][r] < res->ms_min) res->ms_min = t[PH_STEP][r];
    res->ms_min *= 1e3;
    for (int r = 0; r < o->repeat; ++r) res->step_ms[r] = 1e3 * t[PH_STEP][o->warmup + r];
    res->ok = 1;
done:
    supcon_uploader_free(up_in);
    supcon_uploader_free(up_lab);
    supcon_tensor_free(sync);
    supcon_tensor_free(feat);
    supcon_sgd_free(opt);
    supcon_loss_free(loss);
    supcon_tensor_free(grad);
    supcon_tensor_free(lab);
    supcon_tensor_free(in);
    supcon_model_free(m);
    supcon_context_free(ctx);
    for (int p = 0; p < NPH; ++p) free(t[p]);
    free(host_labels);
    free(host);
}

/* ---- Command line ---------------------------------------------------------------------- */
static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_model [--case supcon|ce|infer] [--arch resnet18|resnet34|resnet50|resnet101]\n"
            "                   [--bsz B] [--repeat R] [--warmup W] [--threads T] [--seed S] [--json]\n"
            "                   [--backend cpu|cuda|auto] [--precision fp32|tf32|bf16] [--profile N]\n"
            "                   [--inputs resident|upload|push] [--variant NAME]\n"
            "supcon: 2*B images (two views) through encoder + MLP head, SupConLoss (labels,\n"
            "        temperature 0.1), backward, SGD (momentum 0.9, weight decay 1e-4)\n"
            "ce:     B images, encoder + Linear(d, %d), cross-entropy, backward, SGD\n"
            "infer:  B images through the encoder in inference mode, forward only\n"
            "Images are 3x32x32. W warm-up and R timed steps; prints median times of the step\n"
            "and its phases, images/s, and peak memory (context and RSS).\n"
            "--profile N: then N more steps with the library's profiling on (each backend call\n"
            "timed, the GPU synchronised around it), reported per category and per call.\n"
            "--inputs: resident (default) keeps one batch on the backend and times the network\n"
            "alone; upload and push send a new host batch every step (supcon_tensor_upload, or a\n"
            "supcon_uploader: pinned memory and a copy stream on CUDA), and the steps are not\n"
            "synchronised one by one: a step is the time from its start to the next one's.\n"
            "--variant: a name for what else differs in this run (an environment setting, say),\n"
            "written to the JSON line beside the precision.\n",
            NUM_CLASSES);
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.kind = CASE_SUPCON, .arch = SUPCON_RESNET18, .bsz = 32, .repeat = 5,
                   .warmup = 2, .seed = 12345, .backend = SUPCON_BACKEND_CPU};
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE() do { if (!v) { fprintf(stderr, "%s needs a value\n", a); return 0; } ++i; } while (0)
        if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--case")) {
            NEEDS_VALUE();
            if (!strcmp(v, "supcon")) o->kind = CASE_SUPCON;
            else if (!strcmp(v, "ce")) o->kind = CASE_CE;
            else if (!strcmp(v, "infer")) o->kind = CASE_INFER;
            else { fprintf(stderr, "unknown case '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--backend")) {
            NEEDS_VALUE();
            if (!strcmp(v, "cpu")) o->backend = SUPCON_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) o->backend = SUPCON_BACKEND_CUDA;
            else if (!strcmp(v, "auto")) o->backend = SUPCON_BACKEND_AUTO;
            else { fprintf(stderr, "unknown backend '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--precision")) {
            NEEDS_VALUE();
            if (!strcmp(v, "fp32")) o->precision = SUPCON_PRECISION_FP32;
            else if (!strcmp(v, "tf32")) o->precision = SUPCON_PRECISION_TF32;
            else if (!strcmp(v, "bf16")) o->precision = SUPCON_PRECISION_BF16;
            else { fprintf(stderr, "unknown precision '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--variant")) {
            NEEDS_VALUE();
            if (strlen(v) >= sizeof o->variant || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v)) {
                fprintf(stderr, "--variant: '%s' is not up to 31 of a-z, 0-9 and -\n", v);
                return 0;
            }
            strcpy(o->variant, v);
        } else if (!strcmp(a, "--inputs")) {
            NEEDS_VALUE();
            if (!strcmp(v, "resident")) o->inputs = INPUTS_RESIDENT;
            else if (!strcmp(v, "upload")) o->inputs = INPUTS_UPLOAD;
            else if (!strcmp(v, "push")) o->inputs = INPUTS_PUSH;
            else { fprintf(stderr, "unknown inputs '%s'\n", v); return 0; }
        } else if (!strcmp(a, "--arch")) {
            NEEDS_VALUE();
            if (supcon_arch_from_name(v, &o->arch) != SUPCON_OK) {
                fprintf(stderr, "unknown arch '%s'\n", v);
                return 0;
            }
        } else if (!strcmp(a, "--bsz") || !strcmp(a, "--repeat") || !strcmp(a, "--warmup") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--seed") || !strcmp(a, "--profile")) {
            NEEDS_VALUE();
            char *end;
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno || *end || x < 0) { fprintf(stderr, "bad value for %s: '%s'\n", a, v); return 0; }
            if (!strcmp(a, "--bsz")) o->bsz = x;
            else if (!strcmp(a, "--repeat")) o->repeat = (int)x;
            else if (!strcmp(a, "--warmup")) o->warmup = (int)x;
            else if (!strcmp(a, "--threads")) o->threads = (int)x;
            else if (!strcmp(a, "--profile")) o->profile = (int)x;
            else o->seed = (uint64_t)x;
        } else {
            fprintf(stderr, "unknown option '%s'\n", a);
            usage(stderr);
            return 0;
        }
#undef NEEDS_VALUE
    }
    if (o->profile > 1000) {
        fprintf(stderr, "--profile takes at most 1000 steps\n");
        return 0;
    }
    if (o->bsz < 1 || o->repeat < 1) {
        fprintf(stderr, "--bsz and --repeat must be >= 1\n");
        return 0;
    }
    if (o->kind == CASE_SUPCON && o->bsz < 2) {
        fprintf(stderr, "supcon needs --bsz >= 2\n");
        return 0;
    }
    return 1;
}

static void json_string(const char *s) {
    putchar('"');
    for (const char *c = s; *c; ++c)
        if (*c == '"' || *c == '\\') printf("\\%c", *c);
        else if ((unsigned char)*c >= 0x20) putchar(*c);
    putchar('"');
}

/* The profile as text: categories, then every call name, in ms per step. */
static void print_profile(const result *r, int steps) {
    double total = 0.0;
    for (int c = 0; c < NCAT; ++c) total += r->cat_ms[c];
    printf("profile: %d steps, %.1f ms per step with every call synchronised, %.1f ms in the calls\n", steps,
           r->prof_step_ms, total);
    for (int c = 0; c < NCAT; ++c)
        if (r->cat_ms[c] > 0.0)
            printf("  %-22s %9.2f ms  %5.1f %%\n", cat_names[c], r->cat_ms[c], total > 0 ? 100.0 * r->cat_ms[c] / total : 0.0);
    printf("  per call name (calls per step, ms per step):\n");
    for (int64_t i = 0; i < r->nprof; ++i)
        printf("    %-50s %4lld %9.3f\n", r->prof[i].name, (long long)r->prof[i].calls, r->prof[i].ms);
}

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) return 2;
    /* The library coordinates its own threads with OpenBLAS's; give both the same count. */
    if (o.threads > 0) openblas_set_num_threads(o.threads);

    result r;
    r.step_ms = calloc((size_t)o.repeat, sizeof(double));
    if (!r.step_ms) return 1;
    run_case(&o, &r);
    const char *cname = case_names[o.kind], *aname = supcon_arch_name(o.arch);
    double ips = r.ok ? (double)r.images / (r.ms[PH_STEP] * 1e-3) : -1.0;
    if (o.json) {
        printf("{\"kind\":\"model\",\"impl\":\"libsupcon\",\"precision\":\"%s\",\"variant\":\"%s\",\"backend\":\"%s\","
               "\"case\":\"%s\",\"arch\":\"%s\",\"inputs\":\"%s\","
               "\"bsz\":%lld,\"images\":%lld,\"threads\":%d,\"warmup\":%d,\"repeat\":%d,"
               "\"openblas_core\":\"%s\",\"openblas_threads\":%d,\"libsupcon\":\"%s\",",
               o.precision == SUPCON_PRECISION_TF32   ? "tf32"
               : o.precision == SUPCON_PRECISION_BF16 ? "bf16"
                                                      : "fp32",
               o.variant, o.backend == SUPCON_BACKEND_CUDA ? "cuda" : o.backend == SUPCON_BACKEND_AUTO ? "auto" : "cpu",
               cname, aname, inputs_names[o.inputs], (long long)o.bsz, (long long)r.images, o.threads, o.warmup,
               o.repeat, openblas_get_corename(), openblas_get_num_threads(),
               supcon_version_string());
        if (!r.ok) {
            printf("\"error\":");
            json_string(r.error);
            printf("}\n");
        } else {
            printf("\"ms_median\":%.3f,\"ms_min\":%.3f,\"images_per_s\":%.2f,"
                   "\"fwd_ms\":%.3f,\"loss_ms\":%.3f,\"bwd_ms\":%.3f,\"opt_ms\":%.3f,"
                   "\"params\":%lld,\"model_bytes\":%zu,\"activation_bytes\":%zu,"
                   "\"ctx_peak_bytes\":%zu,\"rss_delta_bytes\":%lld,\"rss_peak_bytes\":%lld,"
                   "\"loss\":%.7g,\"step_ms\":[",
                   r.ms[PH_STEP], r.ms_min, ips, r.ms[PH_FWD], r.ms[PH_LOSS], r.ms[PH_BWD],
                   r.ms[PH_OPT], (long long)r.params, r.model_bytes, r.act_bytes, r.ctx_peak,
                   r.rss_delta, r.rss_peak, r.loss);
            for (int i = 0; i < o.repeat; ++i) printf("%s%.3f", i ? "," : "", r.step_ms[i]);
            printf("]");
            if (o.profile) {
                printf(",\"profile_step_ms\":%.3f,\"profile\":{", r.prof_step_ms);
                for (int c = 0; c < NCAT; ++c) printf("%s\"%s\":%.3f", c ? "," : "", cat_names[c], r.cat_ms[c]);
                printf("},\"profile_calls\":[");
                for (int64_t i = 0; i < r.nprof; ++i) {
                    printf("%s{\"name\":", i ? "," : "");
                    json_string(r.prof[i].name);
                    printf(",\"calls\":%lld,\"ms\":%.4f}", (long long)r.prof[i].calls, r.prof[i].ms);
                }
                printf("]");
            }
            printf("}\n");
        }
    } else {
        printf("libsupcon %s, %s %s bsz %lld (%lld images/step), inputs %s, %d warm-up + %d timed, "
               "OpenBLAS %s\n",
               supcon_version_string(), cname, aname, (long long)o.bsz, (long long)r.images,
               inputs_names[o.inputs], o.warmup, o.repeat, openblas_get_corename());
        if (!r.ok) {
            printf("FAILED: %s\n", r.error);
        } else {
            printf("step: median %.1f ms, min %.1f ms, %.1f images/s\n", r.ms[PH_STEP],
                   r.ms_min, ips);
            printf("  forward %.1f ms, loss %.1f ms, backward %.1f ms, optimizer %.1f ms\n",
                   r.ms[PH_FWD], r.ms[PH_LOSS], r.ms[PH_BWD], r.ms[PH_OPT]);
            printf("memory: context peak %.1f MB (model %.1f MB, of which activations %.1f MB), "
                   "RSS +%.1f MB (peak %.1f MB)\n",
                   (double)r.ctx_peak / 1048576.0, (double)r.model_bytes / 1048576.0,
                   (double)r.act_bytes / 1048576.0, (double)r.rss_delta / 1048576.0,
                   (double)r.rss_peak / 1048576.0);
            if (o.kind != CASE_INFER) printf("loss %.6f\n", r.loss);
            if (o.profile) print_profile(&r, o.profile);
        }
    }
    free(r.step_ms);
    return r.ok ? 0 : 1;
}
