/* The CUDA backend against the CPU backend, through the public API only: loss and gradient
 * for every kind of positives, contrast mode, denominator and aggregation, batch and pair
 * forms, shapes up to N = 4096 and blocked runs whose last block is partial; poisoned
 * gradient outputs; the non-finite scan; two CUDA contexts used in turn give identical bits
 * (on one device, and on two where there are two).
 * Small problems are also checked against the double reference (tests/ref), which alone
 * judges the extreme tau = 0.01 cases. Exits 77 ("skipped: <reason>") when no CUDA device
 * or module is usable. */
#define _POSIX_C_SOURCE 200112L /* setenv */

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/loss_ref.h"
#include "supcon/supcon.h"
#include "test_util.h"
#include "test_check.h"

#define LOSS_TOL 1e-5 /* relative, floor 1e-2 */
#define GRAD_TOL 1e-4 /* relative in the 2-norm, floored (grad_floor) */
#define REF_MAX_ROWS 400 /* problems up to this many rows are also run in double */

/* A budget of 45000 bytes gives blocks of 18 rows at N_C = 600 (600 = 33 * 18 + 6), of 2
 * rows at N_C = 4099 and of 10 at N_C = 1031 (129 = 12 * 10 + 9): many blocks, the last one
 * partial. */
#define TINY_TILE_BYTES "45000"

enum { POS_NONE = 0, POS_LABELS = 1, POS_LABELS32 = 2, POS_MASK = 3 };
static const char *const POS_NAME[] = {"simclr", "labels", "labels-int32", "mask"};
static const char *const DEN_NAME[] = {"all", "positive", "negatives"};
static const char *const AGG_NAME[] = {"out", "in"};
static const char *const MODE_NAME[] = {"all", "one"};

static int g_quiet; /* errors are expected: don't print them */


/* ---- inputs ------------------------------------------------------------------------------ */

/* Features that look like a trained encoder's: each row is its cluster's centre plus noise,
 * L2-normalised, so positives sit near each other (this keeps tau = 0.01 meaningful). A
 * cluster is a class (labels) or a sample (SimCLR); for masks the rows are independent. */
static void make_features(tu_rng *r, float *x, int64_t b, int64_t v, int64_t d, const int64_t *cluster,
                          int64_t nclusters, double noise) {
    float *centre = malloc(sizeof(float) * (size_t)(nclusters * d));
    tu_fill_rows(r, centre, nclusters, d, 1);
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < v; j++) {
            float *row = x + (i * v + j) * d;
            const float *c = centre + (cluster ? cluster[i] : i) % nclusters * d;
            double ss = 0.0, sd = noise / sqrt((double)d); /* noise of norm ~ `noise` */
            for (int64_t k = 0; k < d; k++) {
                row[k] = (float)(c[k] + sd * tu_normal(r));
                ss += (double)row[k] * row[k];
            }
            float inv = (float)(1.0 / sqrt(ss));
            for (int64_t k = 0; k < d; k++) row[k] *= inv;
        }
    free(centre);
}

/* Weighted, asymmetric: ~60 % zeros, weights in [0.25, 1.5]; a row without positives and a
 * row without negatives when there is room. */
static void make_mask(tu_rng *r, float *m, int64_t b) {
    for (int64_t i = 0; i < b * b; i++)
        m[i] = tu_uniform(r) < 0.6 ? 0.0f : (float)(0.25 + 1.25 * tu_uniform(r));
    if (b > 3) {
        for (int64_t j = 0; j < b; j++) m[1 * b + j] = 0.0f;
        for (int64_t j = 0; j < b; j++) m[2 * b + j] = 1.0f;
    }
}

/* ---- running one loss -------------------------------------------------------------------- */

static supcon_tensor *upload_tensor(supcon_context *ctx, supcon_dtype dt, int ndim, const int64_t *shape,
                                    const void *data) {
    supcon_tensor *t = NULL;
    if (supcon_tensor_create(ctx, dt, ndim, shape, &t) != SUPCON_OK) {
        printf("tensor_create failed: %s\n", supcon_context_last_error(ctx));
        return NULL;
    }
    if (data && supcon_tensor_upload(t, data, supcon_tensor_bytes(t)) != SUPCON_OK) {
        printf("tensor_upload failed: %s\n", supcon_context_last_error(ctx));
        supcon_tensor_free(t);
        return NULL;
    }
    return t;
}

/* NaN everywhere, so that an element the backward does not write shows up. */
static int poison(supcon_tensor *t) {
    size_t n = supcon_tensor_bytes(t) / sizeof(float);
    float *p = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    int ok = supcon_tensor_upload(t, p, n * sizeof(float)) == SUPCON_OK;
    free(p);
    return ok;
}

typedef struct batch_case {
    int64_t b, v, d;
    int pos;
    const float *x;
    const int64_t *labels; /* POS_LABELS / POS_LABELS32 */
    const float *mask;     /* POS_MASK */
} batch_case;

/* Forward (and backward into grad when grad != NULL). Returns the forward status; a failure
 * after it is reported as SUPCON_ERR_INTERNAL with the message printed. */
static supcon_status run_batch(supcon_context *ctx, const supcon_loss_config *cfg, const batch_case *c,
                               float *value, float *grad) {
    int64_t shape[3] = {c->b, c->v, c->d}, lshape[1] = {c->b}, mshape[2] = {c->b, c->b};
    supcon_tensor *x = upload_tensor(ctx, SUPCON_FLOAT32, 3, shape, c->x), *lab = NULL, *mask = NULL,
                  *g = NULL;
    supcon_loss *loss = NULL;
    supcon_status s = x ? SUPCON_OK : SUPCON_ERR_INTERNAL;
    if (s == SUPCON_OK && c->pos == POS_LABELS) {
        lab = upload_tensor(ctx, SUPCON_INT64, 1, lshape, c->labels);
        if (!lab) s = SUPCON_ERR_INTERNAL;
    } else if (s == SUPCON_OK && c->pos == POS_LABELS32) {
        int32_t *l32 = malloc(sizeof(int32_t) * (size_t)c->b);
        for (int64_t i = 0; i < c->b; i++) l32[i] = (int32_t)c->labels[i];
        lab = upload_tensor(ctx, SUPCON_INT32, 1, lshape, l32);
        free(l32);
        if (!lab) s = SUPCON_ERR_INTERNAL;
    } else if (s == SUPCON_OK && c->pos == POS_MASK) {
        mask = upload_tensor(ctx, SUPCON_FLOAT32, 2, mshape, c->mask);
        if (!mask) s = SUPCON_ERR_INTERNAL;
    }
    if (s == SUPCON_OK) s = supcon_loss_create(ctx, cfg, &loss);
    if (s == SUPCON_OK) s = supcon_loss_forward(loss, x, lab, mask, value);
    if (s != SUPCON_OK && s != SUPCON_ERR_INTERNAL && !g_quiet)
        printf("  forward on %s: %s: %s\n", supcon_context_backend_name(ctx), supcon_status_name(s),
               supcon_context_last_error(ctx));
    if (s == SUPCON_OK && grad) {
        g = upload_tensor(ctx, SUPCON_FLOAT32, 3, shape, NULL);
        if (!g || !poison(g) || supcon_loss_backward(loss, g) != SUPCON_OK ||
            supcon_tensor_download(g, grad, supcon_tensor_bytes(g)) != SUPCON_OK) {
            printf("  backward on %s: %s\n", supcon_context_backend_name(ctx), supcon_context_last_error(ctx));
            s = SUPCON_ERR_INTERNAL;
        }
    }
    supcon_loss_free(loss);
    supcon_tensor_free(g);
    supcon_tensor_free(mask);
    supcon_tensor_free(lab);
    supcon_tensor_free(x);
    return s;
}

typedef struct pair_case {
    int64_t na, nc, d;
    int same; /* anchors and contrast are one tensor */
    int want_ga, want_gc;
    const float *a, *c;
    const int64_t *la, *lc;
} pair_case;

static supcon_status run_pair(supcon_context *ctx, const supcon_loss_config *cfg, const pair_case *p,
                              float *value, float *ga, float *gc) {
    int64_t sa[2] = {p->na, p->d}, sc[2] = {p->nc, p->d}, sla[1] = {p->na}, slc[1] = {p->nc};
    supcon_tensor *a = upload_tensor(ctx, SUPCON_FLOAT32, 2, sa, p->a);
    supcon_tensor *c = p->same ? a : upload_tensor(ctx, SUPCON_FLOAT32, 2, sc, p->c);
    supcon_tensor *la = upload_tensor(ctx, SUPCON_INT64, 1, sla, p->la);
    supcon_tensor *lc = p->same ? la : upload_tensor(ctx, SUPCON_INT64, 1, slc, p->lc);
    supcon_tensor *tga = NULL, *tgc = NULL;
    supcon_loss *loss = NULL;
    supcon_status s = a && c && la && lc ? SUPCON_OK : SUPCON_ERR_INTERNAL;
    if (s == SUPCON_OK) s = supcon_loss_create(ctx, cfg, &loss);
    if (s == SUPCON_OK) s = supcon_loss_forward_pair(loss, a, la, c, lc, value);
    if (s != SUPCON_OK && s != SUPCON_ERR_INTERNAL)
        printf("  forward_pair on %s: %s: %s\n", supcon_context_backend_name(ctx), supcon_status_name(s),
               supcon_context_last_error(ctx));
    if (s == SUPCON_OK && (p->want_ga || p->want_gc)) {
        if (p->want_ga) tga = upload_tensor(ctx, SUPCON_FLOAT32, 2, sa, NULL);
        if (p->want_gc) tgc = upload_tensor(ctx, SUPCON_FLOAT32, 2, sc, NULL);
        int ok = (!p->want_ga || (tga && poison(tga))) && (!p->want_gc || (tgc && poison(tgc))) &&
                 supcon_loss_backward_pair(loss, tga, tgc) == SUPCON_OK &&
                 (!tga || supcon_tensor_download(tga, ga, supcon_tensor_bytes(tga)) == SUPCON_OK) &&
                 (!tgc || supcon_tensor_download(tgc, gc, supcon_tensor_bytes(tgc)) == SUPCON_OK);
        if (!ok) {
            printf("  backward_pair on %s: %s\n", supcon_context_backend_name(ctx), supcon_context_last_error(ctx));
            s = SUPCON_ERR_INTERNAL;
        }
    }
    supcon_loss_free(loss);
    supcon_tensor_free(tgc);
    supcon_tensor_free(tga);
    if (!p->same) supcon_tensor_free(lc);
    supcon_tensor_free(la);
    if (!p->same) supcon_tensor_free(c);
    supcon_tensor_free(a);
    return s;
}

/* ---- comparisons ------------------------------------------------------------------------- */

/* The gradient's natural size is sqrt(rows) / (tau_b N_A) (unit features); 1 % of it is
 * the floor below which differences count as rounding: a saturated row's gradient is tiny
 * and the float32 cancellation in it is not a disagreement. */
static double grad_floor(int64_t rows, int64_t n_anchors, double tau_b) {
    return 1e-2 * sqrt((double)rows) / (tau_b * (double)n_anchors);
}

static double rel_norm(const float *got, const float *want, int64_t n, double floor_) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] - (double)want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    return sqrt(num) / (sqrt(den) > floor_ ? sqrt(den) : floor_);
}

static int64_t first_nonfinite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

/* Loss and gradient (n = rows * d floats, or none) of the CUDA run against the CPU run. */
static void compare(const char *name, float v_cpu, float v_gpu, const float *g_cpu, const float *g_gpu,
                    int64_t n, double gfloor) {
    double le = tu_rel_err(v_gpu, v_cpu, 1e-2);
    check(isfinite(v_gpu) && le <= LOSS_TOL, "%s: loss cuda %.9g vs cpu %.9g (rel %.3g)", name, (double)v_gpu,
          (double)v_cpu, le);
    if (!g_cpu) return;
    int64_t bad_cpu = first_nonfinite(g_cpu, n), bad_gpu = first_nonfinite(g_gpu, n);
    check(bad_gpu < 0, "%s: cuda gradient element %lld not written (or not finite)", name, (long long)bad_gpu);
    check(bad_cpu < 0, "%s: cpu gradient element %lld not written (or not finite)", name, (long long)bad_cpu);
    if (bad_cpu >= 0 || bad_gpu >= 0) return;
    double ge = rel_norm(g_gpu, g_cpu, n, gfloor);
    check(ge <= GRAD_TOL, "%s: gradient cuda vs cpu rel error %.3g", name, ge);
}

/* The CUDA run against the double reference. */
static void compare_ref(const char *name, float v_gpu, double v_ref, const float *g_gpu, const double *g_ref,
                        int64_t n, double gfloor) {
    double le = tu_rel_err(v_gpu, v_ref, 1e-3);
    check(isfinite(v_gpu) && le <= LOSS_TOL, "%s: loss cuda %.9g vs double reference %.9g (rel %.3g)", name,
          (double)v_gpu, v_ref, le);
    if (!g_gpu) return;
    double ge = tu_rel_norm_err_fd(g_gpu, g_ref, n, gfloor);
    check(ge <= GRAD_TOL, "%s: gradient cuda vs double reference rel error %.3g", name, ge);
}

/* ---- the cases --------------------------------------------------------------------------- */

typedef struct temps {
    float t, tb;
} temps;
/* The sweep's temperatures; tau = 0.01 has its own cases (stability) below. */
static const temps TEMPS[] = {{0.07f, 0.07f}, {0.1f, 0.07f}, {0.5f, 0.5f}};
#define N_TEMPS 3

static supcon_loss_config make_cfg(int mode, int den, int agg, temps tt) {
    supcon_loss_config cfg = supcon_loss_config_default();
    cfg.contrast_mode = (supcon_contrast_mode)mode;
    cfg.denominator = (supcon_loss_denominator)den;
    cfg.aggregation = (supcon_loss_aggregation)agg;
    cfg.temperature = tt.t;
    cfg.base_temperature = tt.tb;
    return cfg;
}

static double *to_double(const float *x, int64_t n) {
    double *y = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* One batch problem on CPU and CUDA (and in double when small), every check on it. */
static void batch_one(supcon_context *cpu, supcon_context *gpu, const char *name, const batch_case *c,
                      const supcon_loss_config *cfg, int with_ref) {
    const int64_t n = c->b * c->v * c->d;
    const int64_t na = cfg->contrast_mode == SUPCON_CONTRAST_ONE ? c->b : c->b * c->v;
    float *g_cpu = malloc(sizeof(float) * (size_t)n), *g_gpu = malloc(sizeof(float) * (size_t)n);
    float v_cpu = NAN, v_gpu = NAN;
    supcon_status s1 = cpu ? run_batch(cpu, cfg, c, &v_cpu, g_cpu) : SUPCON_OK;
    supcon_status s2 = run_batch(gpu, cfg, c, &v_gpu, g_gpu);
    check(s1 == SUPCON_OK && s2 == SUPCON_OK, "%s: status cpu %s, cuda %s", name, supcon_status_name(s1),
          supcon_status_name(s2));
    const double gfloor = grad_floor(c->b * c->v, na, cfg->base_temperature);
    if (cpu && s1 == SUPCON_OK && s2 == SUPCON_OK) compare(name, v_cpu, v_gpu, g_cpu, g_gpu, n, gfloor);
    if (with_ref && s2 == SUPCON_OK) {
        loss_ref_config rc = {cfg->temperature, cfg->base_temperature, (int)cfg->contrast_mode,
                              (int)cfg->denominator, (int)cfg->aggregation};
        double *xd = to_double(c->x, n), *gr = malloc(sizeof(double) * (size_t)n), *md = NULL;
        if (c->pos == POS_MASK) md = to_double(c->mask, c->b * c->b);
        int labelled = c->pos == POS_LABELS || c->pos == POS_LABELS32;
        double want = loss_ref_batch(&rc, xd, c->b, c->v, c->d, labelled ? c->labels : NULL, md, gr);
        compare_ref(name, v_gpu, want, g_gpu, gr, n, gfloor);
        free(md);
        free(gr);
        free(xd);
    }
    free(g_gpu);
    free(g_cpu);
}

/* Every positives kind x mode x denominator x aggregation on one shape. */
static void batch_shape(supcon_context *cpu, supcon_context *gpu, const char *tag, int64_t b, int64_t v,
                        int64_t d, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    const int64_t n = b * v * d;
    float *x = malloc(sizeof(float) * (size_t)n), *mask = malloc(sizeof(float) * (size_t)(b * b));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)b);
    int64_t nclass = b >= 40 ? 10 : (b + 1) / 2;
    for (int64_t i = 0; i < b; i++) lab[i] = tu_randint(&r, nclass);
    make_mask(&r, mask, b);
    const int with_ref = b * v <= REF_MAX_ROWS;
    int variant = 0;
    for (int pos = POS_NONE; pos <= POS_MASK; pos++) {
        /* Fresh features for every kind of positives. */
        if (pos == POS_NONE)
            make_features(&r, x, b, v, d, NULL, b, 0.6);
        else if (pos == POS_MASK)
            make_features(&r, x, b, v, d, NULL, b, 3.0);
        else
            make_features(&r, x, b, v, d, lab, nclass, 0.6);
        batch_case c = {b, v, d, pos, x, lab, mask};
        for (int mode = 0; mode < 2; mode++)
            for (int den = 0; den < 3; den++)
                for (int agg = 0; agg < 2; agg++, variant++) {
                    temps tt = TEMPS[variant % N_TEMPS];
                    supcon_loss_config cfg = make_cfg(mode, den, agg, tt);
                    char name[200];
                    snprintf(name, sizeof name, "batch %s B=%lld V=%lld D=%lld %s mode=%s den=%s agg=%s tau=%g/%g",
                             tag, (long long)b, (long long)v, (long long)d, POS_NAME[pos], MODE_NAME[mode],
                             DEN_NAME[den], AGG_NAME[agg], (double)tt.t, (double)tt.tb);
                    batch_one(cpu, gpu, name, &c, &cfg, with_ref);
                }
        /* The forward-only path (no gradient work at all) gives the same value. */
        supcon_loss_config cfg = make_cfg(0, 0, 0, TEMPS[0]);
        cfg.forward_only = 1;
        float v_cpu = NAN, v_gpu = NAN;
        supcon_status s1 = run_batch(cpu, &cfg, &c, &v_cpu, NULL), s2 = run_batch(gpu, &cfg, &c, &v_gpu, NULL);
        char name[160];
        snprintf(name, sizeof name, "batch %s B=%lld %s forward_only", tag, (long long)b, POS_NAME[pos]);
        check(s1 == SUPCON_OK && s2 == SUPCON_OK, "%s: status cpu %s, cuda %s", name, supcon_status_name(s1),
              supcon_status_name(s2));
        if (s1 == SUPCON_OK && s2 == SUPCON_OK) compare(name, v_cpu, v_gpu, NULL, NULL, 0, 0.0);
    }
    free(lab);
    free(mask);
    free(x);
}

/* Queue form (separate tensors) and self form (one tensor), every denominator x aggregation. */
static void pair_shape(supcon_context *cpu, supcon_context *gpu, const char *tag, int64_t na, int64_t nc,
                       int64_t d, int same, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    if (same) nc = na;
    float *a = malloc(sizeof(float) * (size_t)(na * d)), *c = malloc(sizeof(float) * (size_t)(nc * d));
    int64_t *la = malloc(sizeof(int64_t) * (size_t)na), *lc = malloc(sizeof(int64_t) * (size_t)nc);
    float *ga_cpu = malloc(sizeof(float) * (size_t)(na * d)), *ga_gpu = malloc(sizeof(float) * (size_t)(na * d));
    float *gc_cpu = malloc(sizeof(float) * (size_t)(nc * d)), *gc_gpu = malloc(sizeof(float) * (size_t)(nc * d));
    const int64_t nclass = 12;
    for (int64_t i = 0; i < na; i++) la[i] = tu_randint(&r, nclass);
    for (int64_t i = 0; i < nc; i++) lc[i] = tu_randint(&r, nclass);
    make_features(&r, a, na, 1, d, la, nclass, 0.6);
    make_features(&r, c, nc, 1, d, lc, nclass, 0.6);
    const int with_ref = na * nc <= REF_MAX_ROWS * REF_MAX_ROWS;
    int variant = 0;
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++, variant++) {
            temps tt = TEMPS[(variant + 1) % N_TEMPS];
            supcon_loss_config cfg = make_cfg(0, den, agg, tt);
            /* Alternate which gradients are asked for: both, then anchors only. */
            pair_case p = {na, nc, d, same, 1, variant % 2 == 0, a, same ? a : c, la, same ? la : lc};
            char name[200];
            snprintf(name, sizeof name, "pair %s NA=%lld NC=%lld D=%lld %s den=%s agg=%s tau=%g/%g grads=%s", tag,
                     (long long)na, (long long)nc, (long long)d, same ? "self" : "queue", DEN_NAME[den],
                     AGG_NAME[agg], (double)tt.t, (double)tt.tb, p.want_gc ? "both" : "anchors");
            float v_cpu = NAN, v_gpu = NAN;
            supcon_status s1 = run_pair(cpu, &cfg, &p, &v_cpu, ga_cpu, gc_cpu);
            supcon_status s2 = run_pair(gpu, &cfg, &p, &v_gpu, ga_gpu, gc_gpu);
            check(s1 == SUPCON_OK && s2 == SUPCON_OK, "%s: status cpu %s, cuda %s", name, supcon_status_name(s1),
                  supcon_status_name(s2));
            if (s1 != SUPCON_OK || s2 != SUPCON_OK) continue;
            const double fa = grad_floor(na, na, tt.tb), fc = grad_floor(nc, na, tt.tb);
            char sub[240];
            snprintf(sub, sizeof sub, "%s grad_anchors", name);
            compare(sub, v_cpu, v_gpu, ga_cpu, ga_gpu, na * d, fa);
            if (p.want_gc) {
                snprintf(sub, sizeof sub, "%s grad_contrast", name);
                compare(sub, v_cpu, v_gpu, gc_cpu, gc_gpu, nc * d, fc);
            }
            if (with_ref) {
                loss_ref_config rc = {tt.t, tt.tb, 0, den, agg};
                double *ad = to_double(a, na * d), *cd = same ? ad : to_double(c, nc * d);
                double *ra = malloc(sizeof(double) * (size_t)(na * d)), *rcg = malloc(sizeof(double) * (size_t)(nc * d));
                double want = loss_ref_pair(&rc, ad, la, na, cd, same ? la : lc, nc, d, same, ra, rcg);
                snprintf(sub, sizeof sub, "%s grad_anchors", name);
                compare_ref(sub, v_gpu, want, ga_gpu, ra, na * d, fa);
                if (p.want_gc) {
                    snprintf(sub, sizeof sub, "%s grad_contrast", name);
                    compare_ref(sub, v_gpu, want, gc_gpu, rcg, nc * d, fc);
                }
                free(rcg);
                free(ra);
                if (!same) free(cd);
                free(ad);
            }
        }
    free(gc_gpu);
    free(gc_cpu);
    free(ga_gpu);
    free(ga_cpu);
    free(lc);
    free(la);
    free(c);
    free(a);
}

/* tau = 0.01 on unit vectors: logits up to +-100. (a) Clustered features, as a trained
 * encoder gives, against the CPU and the reference; (b) anchors whose entries lie 190 apart,
 * where e^(z - row max) is 0 in float32 (every sum needs its own maximum), and identical
 * features (all logits 100), against the reference alone. */
static void stability(supcon_context *cpu, supcon_context *gpu) {
    tu_rng r = tu_rng_seed(31);
    const int64_t b = 64, v = 2, d = 32, n = b * v * d;
    float *x = malloc(sizeof(float) * (size_t)n);
    int64_t lab[64];
    for (int64_t i = 0; i < b; i++) lab[i] = tu_randint(&r, 8);
    make_features(&r, x, b, v, d, lab, 8, 1.0);
    batch_case c = {b, v, d, POS_LABELS, x, lab, NULL};
    for (int mode = 0; mode < 2; mode++)
        for (int den = 0; den < 3; den++)
            for (int agg = 0; agg < 2; agg++) {
                temps tt = {0.01f, mode ? 0.01f : 0.07f};
                supcon_loss_config cfg = make_cfg(mode, den, agg, tt);
                char name[160];
                snprintf(name, sizeof name, "tau=0.01 clustered mode=%s den=%s agg=%s", MODE_NAME[mode], DEN_NAME[den],
                         AGG_NAME[agg]);
                batch_one(cpu, gpu, name, &c, &cfg, 1);
            }
    free(x);

    /* anchor 0 = (1, 0): positives at cos 0.9 (z = 90) and cos -1 (z = -100), a negative at
     * cos -1 */
    const float far[8] = {1.0f, 0.0f, 0.9f, 0.43588989f, -1.0f, 0.0f, -1.0f, 0.0f};
    const int64_t far_lab[4] = {0, 0, 0, 1};
    batch_case cf = {4, 1, 2, POS_LABELS, far, far_lab, NULL};
    float same[16 * 2 * 8];
    for (int i = 0; i < 16 * 2; i++)
        for (int j = 0; j < 8; j++) same[i * 8 + j] = j == 0 ? 1.0f : 0.0f;
    batch_case cs = {16, 2, 8, POS_NONE, same, NULL, NULL};
    for (int den = 0; den < 3; den++)
        for (int agg = 0; agg < 2; agg++) {
            supcon_loss_config cfg = make_cfg(0, den, agg, (temps){0.01f, 0.07f});
            char name[160];
            snprintf(name, sizeof name, "tau=0.01 logits 190 apart den=%s agg=%s", DEN_NAME[den], AGG_NAME[agg]);
            batch_one(NULL, gpu, name, &cf, &cfg, 1);
            snprintf(name, sizeof name, "tau=0.01 identical features den=%s agg=%s", DEN_NAME[den], AGG_NAME[agg]);
            batch_one(NULL, gpu, name, &cs, &cfg, 1);
        }
}

/* Two CUDA contexts driven in turn from one thread: identical bits, no interference. */
static void alternate(supcon_context *g1, supcon_context *g2) {
    const int64_t b = 700, v = 2, d = 96, n = b * v * d;
    tu_rng r = tu_rng_seed(77);
    float *x = malloc(sizeof(float) * (size_t)n);
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)b);
    for (int64_t i = 0; i < b; i++) lab[i] = tu_randint(&r, 10);
    make_features(&r, x, b, v, d, lab, 10, 0.6);
    float *g[4];
    float val[4];
    for (int i = 0; i < 4; i++) g[i] = malloc(sizeof(float) * (size_t)n);
    batch_case c = {b, v, d, POS_LABELS, x, lab, NULL};
    supcon_loss_config cfg = make_cfg(0, 0, 0, TEMPS[1]);
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= run_batch(i % 2 ? g2 : g1, &cfg, &c, &val[i], g[i]) == SUPCON_OK;
    check(ok, "alternating contexts: a run failed");
    if (ok)
        for (int i = 1; i < 4; i++)
            check(memcmp(&val[i], &val[0], sizeof val[0]) == 0 &&
                      memcmp(g[i], g[0], sizeof(float) * (size_t)n) == 0,
                  "alternating contexts: run %d (context %d) differs from run 0: loss %.9g vs %.9g", i,
                  i % 2 + 1, (double)val[i], (double)val[0]);
    for (int i = 0; i < 4; i++) free(g[i]);
    free(lab);
    free(x);
}

/* The digits of a message, in order: the index a non-finite error names, whatever words
 * surround it. */
static void digits_of(const char *msg, char *out, size_t len) {
    size_t k = 0;
    for (const char *p = msg; *p && k + 2 < len; p++) {
        if (isdigit((unsigned char)*p))
            out[k++] = *p;
        else if (k && out[k - 1] != ' ')
            out[k++] = ' ';
    }
    out[k] = '\0';
}

static void nonfinite(supcon_context *cpu, supcon_context *gpu) {
    const int64_t b = 2048, v = 2, d = 128, n = b * v * d;
    tu_rng r = tu_rng_seed(5);
    float *x = malloc(sizeof(float) * (size_t)n);
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)b);
    for (int64_t i = 0; i < b; i++) lab[i] = tu_randint(&r, 10);
    /* Several bad values; the first must be reported, wherever the threads meet them. */
    const int64_t spots[][3] = {{n - 1, -1, -1}, {300001, 400000, n - 1}, {0, 5, 7}};
    for (int t = 0; t < 3; t++) {
        make_features(&r, x, b, v, d, lab, 10, 0.6);
        for (int j = 0; j < 3; j++)
            if (spots[t][j] >= 0) x[spots[t][j]] = j == 1 ? INFINITY : (j == 2 ? -INFINITY : NAN);
        batch_case c = {b, v, d, POS_LABELS, x, lab, NULL};
        supcon_loss_config cfg = supcon_loss_config_default();
        float v1 = 0, v2 = 0;
        g_quiet = 1;
        supcon_status s1 = run_batch(cpu, &cfg, &c, &v1, NULL);
        char m1[1024], m2[1024], d1[1024], d2[1024];
        snprintf(m1, sizeof m1, "%s", supcon_context_last_error(cpu));
        supcon_status s2 = run_batch(gpu, &cfg, &c, &v2, NULL);
        snprintf(m2, sizeof m2, "%s", supcon_context_last_error(gpu));
        g_quiet = 0;
        check(s1 == SUPCON_ERR_NON_FINITE && s2 == SUPCON_ERR_NON_FINITE,
              "non-finite %d: status cpu %s, cuda %s", t, supcon_status_name(s1), supcon_status_name(s2));
        digits_of(m1, d1, sizeof d1);
        digits_of(m2, d2, sizeof d2);
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)spots[t][0]);
        check(strcmp(d1, d2) == 0 && strstr(d2, want) != NULL,
              "non-finite %d: cuda names another index than cpu (first is %s)\n  cpu:  %s\n  cuda: %s", t, want,
              m1, m2);
    }
    /* The context still works after the error. */
    make_features(&r, x, b, v, d, lab, 10, 0.6);
    batch_case c = {b, v, d, POS_LABELS, x, lab, NULL};
    supcon_loss_config cfg = supcon_loss_config_default();
    float v1 = 0, v2 = 0;
    supcon_status s1 = run_batch(cpu, &cfg, &c, &v1, NULL), s2 = run_batch(gpu, &cfg, &c, &v2, NULL);
    check(s1 == SUPCON_OK && s2 == SUPCON_OK, "after non-finite: status cpu %s, cuda %s", supcon_status_name(s1),
          supcon_status_name(s2));
    if (s1 == SUPCON_OK && s2 == SUPCON_OK) compare("after non-finite", v1, v2, NULL, NULL, 0, 0.0);
    free(lab);
    free(x);
}

static supcon_context *make_ctx_on(supcon_backend_kind kind, int device, supcon_status *s) {
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = kind;
    cfg.device = device;
    supcon_context *ctx = NULL;
    *s = supcon_context_create(&cfg, &ctx);
    return ctx;
}

static supcon_context *make_ctx(supcon_backend_kind kind, supcon_status *s) { return make_ctx_on(kind, 0, s); }

int main(void) {
    supcon_status s;
    supcon_context *gpu = make_ctx(SUPCON_BACKEND_CUDA, &s);
    if (s == SUPCON_ERR_BACKEND_UNAVAILABLE) {
        printf("skipped: no usable CUDA backend: %s\n", supcon_context_last_error(NULL));
        return 77;
    }
    if (s != SUPCON_OK) {
        printf("FAIL creating a CUDA context: %s: %s\n", supcon_status_name(s), supcon_context_last_error(NULL));
        return 1;
    }
    supcon_context *gpu2 = make_ctx(SUPCON_BACKEND_CUDA, &s);
    supcon_context *cpu = s == SUPCON_OK ? make_ctx(SUPCON_BACKEND_CPU, &s) : NULL;
    supcon_context *tiny = NULL;
    if (s == SUPCON_OK) {
        /* Read once, when the context is made: only this context works in tiny blocks. */
        setenv("SUPCON_CUDA_TILE_BYTES", TINY_TILE_BYTES, 1);
        tiny = make_ctx(SUPCON_BACKEND_CUDA, &s);
        unsetenv("SUPCON_CUDA_TILE_BYTES");
    }
    if (s != SUPCON_OK) {
        printf("FAIL creating contexts: %s: %s\n", supcon_status_name(s), supcon_context_last_error(NULL));
        return 1;
    }

    batch_shape(cpu, gpu, "tiny", 2, 2, 8, 11);
    batch_shape(cpu, gpu, "small", 8, 2, 16, 12);
    batch_shape(cpu, gpu, "odd", 37, 3, 40, 13);
    batch_shape(cpu, gpu, "mid", 100, 2, 128, 14);
    /* On the CUDA emulation (tests/cuda_emu) the largest shapes would take minutes: smaller
     * ones keep the blocked runs' partial last block. */
    const char *emu = getenv("SUPCON_TEST_EMU");
    const int large = !(emu && *emu);
    if (large) batch_shape(cpu, gpu, "N=4096", 2048, 2, 128, 15);
    else printf("note: SUPCON_TEST_EMU is set: N = 4096 and N_C = 4099 left out, N_C = 1031 instead\n");
    batch_shape(cpu, tiny, "blocked", 300, 2, 33, 16);
    batch_shape(cpu, tiny, "blocked-v3", 77, 3, 20, 17);

    pair_shape(cpu, gpu, "", 64, 1000, 128, 0, 21);
    pair_shape(cpu, gpu, "", large ? 513 : 129, large ? 4099 : 1031, 64, 0, 22);
    pair_shape(cpu, gpu, "", 300, 0, 48, 1, 23);
    pair_shape(cpu, tiny, "blocked", large ? 513 : 129, large ? 4099 : 1031, 64, 0, 24);
    pair_shape(cpu, tiny, "blocked", 600, 0, 32, 1, 25);

    stability(cpu, gpu);
    alternate(gpu, gpu2);
    /* A second device, where there is one (the emulation makes two): contexts on different
     * devices driven in turn from one thread must not run on each other's device. */
    supcon_status s_dev1;
    supcon_context *dev1 = make_ctx_on(SUPCON_BACKEND_CUDA, 1, &s_dev1);
    if (s_dev1 == SUPCON_OK) alternate(gpu, dev1);
    else printf("note: no second device (%s): contexts on two devices not checked\n", supcon_status_name(s_dev1));
    supcon_context_free(dev1);
    nonfinite(cpu, gpu);

    supcon_context_free(tiny);
    supcon_context_free(cpu);
    supcon_context_free(gpu2);
    supcon_context_free(gpu);
    printf("cuda_parity: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
