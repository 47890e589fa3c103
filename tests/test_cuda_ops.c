/* The CUDA backend's layers against the CPU backend's, slot by slot through the two backend
 * tables (lib/backend.h): the CPU table built in, the CUDA one from the module by dlopen.
 * Awkward shapes (odd sizes, batch 1, stride 2, padding 0/1, 1x1/3x3/1x3 kernels), outputs
 * poisoned with NaN so an unwritten element fails, accumulating outputs started from the same
 * values, every call run twice on the GPU for identical bits, and the errors (labels out of
 * range, a one-value batch norm) with nothing written. Exits 77 ("skipped: <reason>") when the
 * module is not built or no CUDA device is usable. */
#define _POSIX_C_SOURCE 200809L /* unsetenv */

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "test_bf16_case.h"
#include "test_util.h"
#include "test_check.h"

#define TOL 1e-4       /* fp32: relative, in the 2-norm */
#define TOL_TIGHT 1e-5 /* ops summed in double on both sides */

static const supcon_backend_ops *C, *G; /* CPU, CUDA */
static void *cs, *gs;


/* Worst relative error seen per family, printed at the end. */
enum {
    F_CONV, F_BN, F_ELT, F_POOL, F_LIN, F_L2, F_XENT, F_CONV_TF32, F_CONV_TF32_DATA, F_CONV_TF32_FILTER, F_LIN_TF32,
    F_CONV_BF16, F_COUNT
};
static const char *const FAMILY[F_COUNT] = {"conv2d", "batchnorm", "eltwise", "avgpool", "linear", "l2norm",
                                            "xent", "conv2d tf32", "conv2d tf32 data", "conv2d tf32 filter",
                                            "linear tf32", "conv2d bf16"};
static double g_worst[F_COUNT];

static void ok_status(supcon_status s, void *state, const supcon_backend_ops *o, const char *what) {
    check(s == SUPCON_OK, "%s (%s): %s: %s", what, o->name, supcon_status_name(s), o->last_message(state));
}

/* ---- device buffers ------------------------------------------------------------------------ */

static void *dalloc(size_t bytes) {
    void *p = NULL;
    supcon_status s = G->alloc(gs, bytes ? bytes : 4, &p);
    if (s != SUPCON_OK || !p) {
        printf("FAIL cuda alloc of %zu bytes: %s\n", bytes, G->last_message(gs));
        exit(1);
    }
    return p;
}

static void dput(void *d, const void *h, size_t bytes) {
    if (bytes && G->upload(gs, d, h, bytes) != SUPCON_OK) {
        printf("FAIL cuda upload: %s\n", G->last_message(gs));
        exit(1);
    }
}

static void dget(void *h, const void *d, size_t bytes) {
    if (bytes && G->download(gs, h, d, bytes) != SUPCON_OK) {
        printf("FAIL cuda download: %s\n", G->last_message(gs));
        exit(1);
    }
}

static float *dfrom(const float *h, int64_t n) {
    float *d = dalloc((size_t)n * sizeof(float));
    dput(d, h, (size_t)n * sizeof(float));
    return d;
}

static float *hnew(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static float *hnan(int64_t n) {
    float *h = hnew(n);
    for (int64_t i = 0; i < n; i++) h[i] = NAN;
    return h;
}

/* A device buffer of n floats, all NaN. */
static float *dpoisoned(int64_t n) {
    float *h = hnan(n);
    float *d = dfrom(h, n);
    free(h);
    return d;
}

static float *hrand(tu_rng *r, int64_t n, double mean, double sd) {
    float *h = hnew(n);
    for (int64_t i = 0; i < n; i++) h[i] = (float)(mean + sd * tu_normal(r));
    return h;
}

static float *hcopy(const float *x, int64_t n) {
    float *h = hnew(n);
    memcpy(h, x, (size_t)n * sizeof(float));
    return h;
}

/* When > 0, the norm the error is measured against is at least this: for results that are
 * a small difference of large terms (batch norm's dx with two values per channel is
 * mathematically near 0), rounding scales with the terms, not with the result. */
static double g_norm_floor;

/* got (the GPU's, on the host) against the CPU's want: every element finite where want is,
 * and ||got - want|| <= tol ||want|| (absolute tol when want is all zero). */
static double compare_host(int fam, const char *what, const float *got, const float *want, int64_t n, double tol) {
    double num = 0.0, den = 0.0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(want[i]) && !isfinite(got[i]) && bad < 0) bad = i;
        const double e = (double)got[i] - want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    if (g_norm_floor > 0.0 && den < g_norm_floor * g_norm_floor) den = g_norm_floor * g_norm_floor;
    const double err = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
    if (bad >= 0)
        check(0, "%s: element %lld is %g on the GPU, %g on the CPU (unwritten?)", what, (long long)bad,
              (double)got[bad], (double)want[bad]);
    else
        check(err <= tol, "%s: relative error %.3g > %.1g", what, err, tol);
    if (err > g_worst[fam] || err != err) g_worst[fam] = err;
    return err;
}

/* The same for the GPU buffer d of n floats. */
static double compare(int fam, const char *what, const float *d, const float *want, int64_t n, double tol) {
    float *got = hnew(n);
    dget(got, d, (size_t)n * sizeof(float));
    const double err = compare_host(fam, what, got, want, n, tol);
    free(got);
    return err;
}

/* Two GPU results that must be the same bits. */
static void same_bits(const char *what, const float *d1, const float *d2, int64_t n) {
    float *a = hnew(n), *b = hnew(n);
    dget(a, d1, (size_t)n * sizeof(float));
    dget(b, d2, (size_t)n * sizeof(float));
    check(memcmp(a, b, (size_t)n * sizeof(float)) == 0, "%s: two runs on the GPU differ", what);
    free(a);
    free(b);
}

/* ---- conv2d --------------------------------------------------------------------------------- */

static const char *g_conv_mode = ""; /* which algorithm ranking the CUDA state uses */
/* Tolerance and error family of the convolution and linear comparisons: TOL and F_CONV /
 * F_LIN in float32, looser under TF32 (inputs rounded to a 10-bit mantissa). */
static double g_prod_tol = TOL;
static int g_conv_fam = F_CONV, g_lin_fam = F_LIN;
/* 1 while both states are SUPCON_PRECISION_BF16: results must be bfloat16 values, and without
 * a workspace every call must refuse (the bfloat16 copies live there). */
static int g_bf16;

/* Every element of the GPU buffer d is a bfloat16 value (its low 16 bits zero). */
static void all_bf16(const char *what, const float *d, int64_t n) {
    float *h = hnew(n);
    dget(h, d, (size_t)n * sizeof(float));
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++) {
        uint32_t u;
        memcpy(&u, &h[i], sizeof u);
        if (u & 0xffffu) bad = i;
    }
    check(bad < 0, "%s: element %lld (%.9g) is not a bfloat16 value", what, (long long)bad, bad < 0 ? 0.0 : h[bad]);
    free(h);
}

static void conv_case(tu_rng *r, supcon_conv_desc d) {
    char tag[160];
    snprintf(tag, sizeof tag, "conv%s n%lld c%lld %lldx%lld -> c%lld k%lldx%lld s%lldx%lld p%lldx%lld", g_conv_mode,
             (long long)d.n, (long long)d.c_in, (long long)d.h, (long long)d.w, (long long)d.c_out, (long long)d.kh, (long long)d.kw,
             (long long)d.stride_h, (long long)d.stride_w, (long long)d.pad_h, (long long)d.pad_w);
    const int64_t oh = supcon_conv_out_h(&d), ow = supcon_conv_out_w(&d);
    const int64_t nx = d.n * d.c_in * d.h * d.w, ny = d.n * d.c_out * oh * ow, nw = d.c_out * d.c_in * d.kh * d.kw;
    float *x = hrand(r, nx, 0.0, 1.0), *w = hrand(r, nw, 0.0, 1.0 / sqrt((double)(d.c_in * d.kh * d.kw)));
    float *dy = hrand(r, ny, 0.0, 1.0), *dx0 = hrand(r, nx, 0.0, 1.0), *dw0 = hrand(r, nw, 0.0, 1.0);
    float *y = hnew(ny), *dx = hnew(nx), *dxa = hcopy(dx0, nx), *dw = hcopy(dw0, nw);

    const size_t cws_bytes = C->conv2d_workspace_bytes(cs, &d);
    void *cws = malloc(cws_bytes ? cws_bytes : 1);
    ok_status(C->conv2d_forward(cs, &d, y, x, w, cws, cws_bytes), cs, C, tag);
    ok_status(C->conv2d_backward_data(cs, &d, dx, dy, w, 0, cws, cws_bytes), cs, C, tag);
    ok_status(C->conv2d_backward_data(cs, &d, dxa, dy, w, 1, cws, cws_bytes), cs, C, tag);
    ok_status(C->conv2d_backward_filter(cs, &d, dw, dy, x, cws, cws_bytes), cs, C, tag);
    free(cws);

    const size_t gws_bytes = G->conv2d_workspace_bytes(gs, &d);
    void *gws = gws_bytes ? dalloc(gws_bytes) : NULL;
    float *gx = dfrom(x, nx), *gw = dfrom(w, nw), *gdy = dfrom(dy, ny);
    /* twice: with the workspace asked for, then with none (other algorithms, same result) */
    for (int pass = 0; pass < 2; pass++) {
        void *ws = pass == 0 ? gws : NULL;
        const size_t wb = pass == 0 ? gws_bytes : 0;
        char t[200];
        snprintf(t, sizeof t, "%s%s", tag, pass ? " (no workspace)" : "");
        /* Bits are compared with the workspace asked for, where cuDNN's deterministic algorithms
         * are chosen; without one, only non-deterministic ones may fit. */
        const int runs = pass == 0 ? 2 : 1;
        float *gy[2], *gdx[2], *gdxa[2], *gdw[2];
        int fits[4] = {1, 1, 1, 1}; /* forward, data, data +=, filter: an algorithm fitted */
        for (int run = 0; run < runs; run++) {
            gy[run] = dpoisoned(ny);
            gdx[run] = dpoisoned(nx);
            gdxa[run] = dfrom(dx0, nx);
            gdw[run] = dfrom(dw0, nw);
            /* BF16's second run: the workspace one byte off its alignment (the copies and cuDNN's
             * part are aligned inside it), for the same bits */
            const int off = ws && g_bf16 && run == 1;
            void *rws = off ? (char *)ws + 1 : ws;
            const size_t rwb = off ? wb - 1 : wb;
            supcon_status st4[4];
            char msg4[4][SUPCON_BACKEND_MSG_LEN];
            for (int k = 0; k < 4; k++) {
                st4[k] = k == 0   ? G->conv2d_forward(gs, &d, gy[run], gx, gw, rws, rwb)
                         : k == 1 ? G->conv2d_backward_data(gs, &d, gdx[run], gdy, gw, 0, rws, rwb)
                         : k == 2 ? G->conv2d_backward_data(gs, &d, gdxa[run], gdy, gw, 1, rws, rwb)
                                  : G->conv2d_backward_filter(gs, &d, gdw[run], gdy, gx, rws, rwb);
                snprintf(msg4[k], sizeof msg4[k], "%s", st4[k] == SUPCON_OK ? "" : G->last_message(gs));
            }
            for (int k = 0; k < 4; k++) {
                /* Without a workspace, "no algorithm fits" is the documented answer for the
                 * backward calls; the forward always has implicit GEMM. */
                if (pass == 1 && g_bf16) {
                    check(st4[k] == SUPCON_ERR_INVALID_ARGUMENT && strstr(msg4[k], "bfloat16"),
                          "%s call %d: %s without the workspace for the bfloat16 copies (%s)", t, k,
                          supcon_status_name(st4[k]), msg4[k]);
                    fits[k] = 0;
                    continue;
                }
                if (pass == 1 && k > 0 && st4[k] == SUPCON_ERR_INVALID_ARGUMENT) {
                    printf("note: %s: %s\n", t, msg4[k]);
                    fits[k] = 0;
                    continue;
                }
                check(st4[k] == SUPCON_OK, "%s call %d (cuda): %s: %s", t, k, supcon_status_name(st4[k]), msg4[k]);
            }
        }
        char what[260];
        snprintf(what, sizeof what, "%s forward", t);
        if (fits[0]) compare(g_conv_fam, what, gy[0], y, ny, g_prod_tol);
        if (fits[0] && g_bf16) all_bf16(what, gy[0], ny);
        snprintf(what, sizeof what, "%s backward data", t);
        if (fits[1] && g_bf16) all_bf16(what, gdx[0], nx);
        snprintf(what, sizeof what, "%s backward data", t);
        /* under TF32 each direction has its own family: each must show TF32 in use */
        const int tf32 = g_conv_fam == F_CONV_TF32;
        const int fam_data = tf32 ? F_CONV_TF32_DATA : g_conv_fam, fam_filter = tf32 ? F_CONV_TF32_FILTER : g_conv_fam;
        if (fits[1]) compare(fam_data, what, gdx[0], dx, nx, g_prod_tol);
        snprintf(what, sizeof what, "%s backward data +=", t);
        if (fits[2]) compare(fam_data, what, gdxa[0], dxa, nx, g_prod_tol);
        snprintf(what, sizeof what, "%s backward filter +=", t);
        if (fits[3]) compare(fam_filter, what, gdw[0], dw, nw, g_prod_tol);
        if (runs == 2) {
            snprintf(what, sizeof what, "%s forward", t);
            same_bits(what, gy[0], gy[1], ny);
            snprintf(what, sizeof what, "%s backward data", t);
            same_bits(what, gdx[0], gdx[1], nx);
            snprintf(what, sizeof what, "%s backward data +=", t);
            same_bits(what, gdxa[0], gdxa[1], nx);
            snprintf(what, sizeof what, "%s backward filter", t);
            same_bits(what, gdw[0], gdw[1], nw);
        }
        for (int run = 0; run < runs; run++) {
            G->release(gs, gy[run]);
            G->release(gs, gdx[run]);
            G->release(gs, gdxa[run]);
            G->release(gs, gdw[run]);
        }
    }
    G->release(gs, gws);
    G->release(gs, gx);
    G->release(gs, gw);
    G->release(gs, gdy);
    free(x), free(w), free(dy), free(dx0), free(dw0), free(y), free(dx), free(dxa), free(dw);
}

static void test_conv(void) {
    tu_rng r = tu_rng_seed(101);
    /* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w */
    const supcon_conv_desc cases[] = {
        {1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1},   {2, 4, 8, 8, 6, 1, 1, 2, 2, 0, 0},    {3, 5, 9, 7, 4, 3, 3, 2, 2, 1, 1},
        {2, 3, 6, 5, 7, 3, 3, 1, 1, 0, 0},   {1, 16, 5, 5, 8, 1, 1, 1, 1, 0, 0},   {2, 3, 9, 8, 4, 1, 3, 1, 2, 0, 1},
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},   {1, 2, 3, 3, 3, 3, 3, 2, 2, 1, 1},    {2, 32, 11, 13, 48, 3, 3, 2, 2, 1, 1},
        {4, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1}, {8, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1}, {5, 128, 4, 4, 256, 1, 1, 2, 2, 0, 0},
        {3, 256, 4, 4, 64, 1, 1, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case(&r, cases[i]);
}

/* A second CUDA state that ranks the algorithms by timing them (SUPCON_CUDA_CONV_FIND=1, read
 * when a state is made): other algorithms, the same results. */
static void test_conv_find(void) {
    supcon_backend_init cfg = {.device = 0, .num_threads = 0, .precision = SUPCON_PRECISION_FP32};
    char msg[SUPCON_BACKEND_MSG_LEN] = "";
    void *found = NULL;
    setenv("SUPCON_CUDA_CONV_FIND", "1", 1);
    supcon_status s = G->init(&cfg, &found, msg, sizeof msg);
    unsetenv("SUPCON_CUDA_CONV_FIND");
    check(s == SUPCON_OK, "a CUDA state with SUPCON_CUDA_CONV_FIND=1: %s: %s", supcon_status_name(s), msg);
    if (s != SUPCON_OK) return;
    void *keep = gs;
    gs = found;
    g_conv_mode = " (find)";
    tu_rng r = tu_rng_seed(102);
    const supcon_conv_desc cases[] = {
        {3, 5, 9, 7, 4, 3, 3, 2, 2, 1, 1}, {8, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1}, {4, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1},
        {5, 128, 4, 4, 256, 1, 1, 2, 2, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case(&r, cases[i]);
    g_conv_mode = "";
    gs = keep;
    G->shutdown(found);
}

/* ---- batch norm ----------------------------------------------------------------------------- */

static void bn_case(tu_rng *r, int64_t n, int64_t c, int64_t hw) {
    char tag[96];
    snprintf(tag, sizeof tag, "batchnorm n%lld c%lld hw%lld", (long long)n, (long long)c, (long long)hw);
    const int64_t nx = n * c * hw;
    const double momentum = 0.1, eps = 1e-5;
    float *x = hnew(nx);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(3.0 + 0.5 * (double)((i / hw) % c) + 2.0 * tu_normal(r));
    float *gamma = hrand(r, c, 1.0, 0.3), *beta = hrand(r, c, 0.0, 0.5), *dy = hrand(r, nx, 0.0, 1.0);
    float *rm0 = hrand(r, c, 0.0, 1.0), *rv0 = hnew(c), *dg0 = hrand(r, c, 0.0, 1.0), *db0 = hrand(r, c, 0.0, 1.0);
    for (int64_t i = 0; i < c; i++) rv0[i] = (float)(0.5 + tu_uniform(r));

    /* CPU */
    float *y = hnew(nx), *mean = hnew(c), *invstd = hnew(c), *rm = hcopy(rm0, c), *rv = hcopy(rv0, c);
    float *dx = hnew(nx), *dg = hcopy(dg0, c), *db = hcopy(db0, c);
    float *yi = hnew(nx), *meani = hnew(c), *invstdi = hnew(c), *dxi = hnew(nx), *dgi = hcopy(dg0, c), *dbi = hcopy(db0, c);
    int64_t nbt = 5;
    ok_status(C->batchnorm_forward_train(cs, y, mean, invstd, rm, rv, &nbt, x, gamma, beta, n, c, hw, momentum, eps), cs,
              C, tag);
    ok_status(C->batchnorm_backward(cs, dx, dg, db, dy, x, gamma, mean, invstd, n, c, hw, 1), cs, C, tag);
    ok_status(C->batchnorm_forward_infer(cs, yi, meani, invstdi, x, gamma, beta, rm0, rv0, n, c, hw, eps), cs, C, tag);
    ok_status(C->batchnorm_backward(cs, dxi, dgi, dbi, dy, x, gamma, meani, invstdi, n, c, hw, 0), cs, C, tag);

    /* GPU, twice */
    float *gx = dfrom(x, nx), *ggamma = dfrom(gamma, c), *gbeta = dfrom(beta, c), *gdy = dfrom(dy, nx);
    float *grm0 = dfrom(rm0, c), *grv0 = dfrom(rv0, c);
    float *gy[2], *gmean[2], *ginvstd[2], *grm[2], *grv[2], *gdx[2], *gdg[2], *gdb[2];
    float *gyi[2], *gmeani[2], *ginvstdi[2], *gdxi[2], *gdgi[2], *gdbi[2];
    int64_t *gnbt[2];
    for (int run = 0; run < 2; run++) {
        gy[run] = dpoisoned(nx), gmean[run] = dpoisoned(c), ginvstd[run] = dpoisoned(c);
        grm[run] = dfrom(rm0, c), grv[run] = dfrom(rv0, c);
        gdx[run] = dpoisoned(nx), gdg[run] = dfrom(dg0, c), gdb[run] = dfrom(db0, c);
        gyi[run] = dpoisoned(nx), gmeani[run] = dpoisoned(c), ginvstdi[run] = dpoisoned(c);
        gdxi[run] = dpoisoned(nx), gdgi[run] = dfrom(dg0, c), gdbi[run] = dfrom(db0, c);
        int64_t five = 5;
        gnbt[run] = dalloc(sizeof(int64_t));
        dput(gnbt[run], &five, sizeof five);
        ok_status(G->batchnorm_forward_train(gs, gy[run], gmean[run], ginvstd[run], grm[run], grv[run], gnbt[run], gx,
                                             ggamma, gbeta, n, c, hw, momentum, eps),
                  gs, G, tag);
        ok_status(G->batchnorm_backward(gs, gdx[run], gdg[run], gdb[run], gdy, gx, ggamma, gmean[run], ginvstd[run], n,
                                        c, hw, 1),
                  gs, G, tag);
        ok_status(G->batchnorm_forward_infer(gs, gyi[run], gmeani[run], ginvstdi[run], gx, ggamma, gbeta, grm0, grv0, n,
                                             c, hw, eps),
                  gs, G, tag);
        ok_status(G->batchnorm_backward(gs, gdxi[run], gdgi[run], gdbi[run], gdy, gx, ggamma, gmeani[run],
                                        ginvstdi[run], n, c, hw, 0),
                  gs, G, tag);
    }
    char what[160];
#define BN_CMP(dev, host, cnt, name)                                                                                  \
    do {                                                                                                              \
        snprintf(what, sizeof what, "%s %s", tag, name);                                                              \
        compare(F_BN, what, dev[0], host, cnt, TOL);                                                                  \
        same_bits(what, dev[0], dev[1], cnt);                                                                         \
    } while (0)
    BN_CMP(gy, y, nx, "train y");
    BN_CMP(gmean, mean, c, "train save_mean");
    BN_CMP(ginvstd, invstd, c, "train save_invstd");
    BN_CMP(grm, rm, c, "running_mean");
    BN_CMP(grv, rv, c, "running_var");
    /* dx = gamma invstd (dy - mean dy - xhat mean(dy xhat)): measured against the size of the
     * terms it is the difference of, ||gamma invstd dy||. */
    double terms = 0.0;
    for (int64_t i = 0; i < nx; i++) {
        const double t = (double)gamma[(i / hw) % c] * invstd[(i / hw) % c] * dy[i];
        terms += t * t;
    }
    g_norm_floor = sqrt(terms);
    BN_CMP(gdx, dx, nx, "train dx");
    g_norm_floor = 0.0;
    BN_CMP(gdg, dg, c, "train dgamma +=");
    BN_CMP(gdb, db, c, "train dbeta +=");
    BN_CMP(gyi, yi, nx, "infer y");
    BN_CMP(gmeani, meani, c, "infer save_mean");
    BN_CMP(ginvstdi, invstdi, c, "infer save_invstd");
    BN_CMP(gdxi, dxi, nx, "frozen dx");
    BN_CMP(gdgi, dgi, c, "frozen dgamma +=");
    BN_CMP(gdbi, dbi, c, "frozen dbeta +=");
#undef BN_CMP
    int64_t got = 0;
    dget(&got, gnbt[0], sizeof got);
    check(got == nbt && nbt == 6, "%s num_batches_tracked: GPU %lld, CPU %lld (from 5)", tag, (long long)got,
          (long long)nbt);

    /* Optional outputs left out: only y, the saved statistics and dx. */
    float *gy2 = dpoisoned(nx), *gm2 = dpoisoned(c), *gi2 = dpoisoned(c), *gdx2 = dpoisoned(nx);
    ok_status(G->batchnorm_forward_train(gs, gy2, gm2, gi2, NULL, NULL, NULL, gx, ggamma, gbeta, n, c, hw, momentum, eps),
              gs, G, tag);
    ok_status(G->batchnorm_backward(gs, gdx2, NULL, NULL, gdy, gx, ggamma, gm2, gi2, n, c, hw, 1), gs, G, tag);
    snprintf(what, sizeof what, "%s train y (no running stats)", tag);
    compare(F_BN, what, gy2, y, nx, TOL);
    snprintf(what, sizeof what, "%s train dx (no parameter gradients)", tag);
    g_norm_floor = sqrt(terms);
    compare(F_BN, what, gdx2, dx, nx, TOL);
    g_norm_floor = 0.0;
    G->release(gs, gy2), G->release(gs, gm2), G->release(gs, gi2), G->release(gs, gdx2);

    for (int run = 0; run < 2; run++) {
        float *all[] = {gy[run],  gmean[run],  ginvstd[run],  grm[run],  grv[run],  gdx[run],  gdg[run],
                        gdb[run], gyi[run], gmeani[run], ginvstdi[run], gdxi[run], gdgi[run], gdbi[run]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) G->release(gs, all[i]);
        G->release(gs, gnbt[run]);
    }
    G->release(gs, gx), G->release(gs, ggamma), G->release(gs, gbeta), G->release(gs, gdy);
    G->release(gs, grm0), G->release(gs, grv0);
    float *hall[] = {x, gamma, beta, dy, rm0, rv0, dg0, db0, y, mean, invstd, rm, rv, dx, dg, db, yi, meani, invstdi, dxi, dgi, dbi};
    for (size_t i = 0; i < sizeof hall / sizeof hall[0]; i++) free(hall[i]);
}

/* The fused slots (BN + residual + ReLU, BN + ReLU in inference, the masked backward): within
 * TOL of the CPU's fused slots, and the same bits as the GPU's own separate calls (batch norm,
 * add+relu or relu; relu_backward, batch norm backward), in place too (y == residual). */
/* The fused slots against the CPU's and against the GPU's separate calls, bit for bit: with
 * and without the residual, the training forward (running statistics, saved statistics and
 * the batch counter compared too), the inference forward (its saved values too), and the
 * backward through the batch statistics (training) or the frozen ones (after the inference
 * forward); dgamma and dbeta accumulate onto random values. */
static void bn_fused_case(tu_rng *r, int64_t n, int64_t c, int64_t hw, int use_res, int training) {
    char tag[128], what[240];
    snprintf(tag, sizeof tag, "batchnorm+relu n%lld c%lld hw%lld%s, %s backward", (long long)n, (long long)c,
             (long long)hw, use_res ? " + residual" : "", training ? "training" : "frozen");
    const int64_t nx = n * c * hw;
    const double momentum = 0.1, eps = 1e-5;
    float *x = hrand(r, nx, 0.5, 2.0), *res_h = hrand(r, nx, 0.0, 1.0), *dy = hrand(r, nx, 0.0, 1.0);
    float *gamma = hrand(r, c, 1.0, 0.3), *beta = hrand(r, c, 0.0, 0.5), *rm0 = hrand(r, c, 0.0, 1.0);
    float *dg0 = hrand(r, c, 0.0, 1.0), *db0 = hrand(r, c, 0.0, 1.0);
    const float *res = use_res ? res_h : NULL;
    float *rv0 = hnew(c);
    for (int64_t i = 0; i < c; i++) rv0[i] = (float)(0.5 + tu_uniform(r));
    float *y = hnew(nx), *yi = hnew(nx), *mean = hnew(c), *invstd = hnew(c), *rm = hcopy(rm0, c), *rv = hcopy(rv0, c);
    float *imean = hnew(c), *iinv = hnew(c), *dx = hnew(nx), *dg = hcopy(dg0, c), *db = hcopy(db0, c);
    int64_t count = 41;
    ok_status(C->batchnorm_relu_forward_train(cs, y, mean, invstd, rm, rv, &count, x, gamma, beta, res, n, c, hw,
                                              momentum, eps),
              cs, C, tag);
    ok_status(C->batchnorm_relu_forward_infer(cs, yi, imean, iinv, x, gamma, beta, rm0, rv0, res, n, c, hw, eps), cs,
              C, tag);
    /* the backward of the forward it follows: the training one, or the inference one */
    const float *by = training ? y : yi, *bmean = training ? mean : imean, *binv = training ? invstd : iinv;
    ok_status(C->batchnorm_relu_backward(cs, dx, dg, db, dy, by, x, gamma, bmean, binv, n, c, hw, training), cs, C,
              tag);

    float *gx = dfrom(x, nx), *gres = use_res ? dfrom(res_h, nx) : NULL, *gdy = dfrom(dy, nx);
    float *ggamma = dfrom(gamma, c), *gbeta = dfrom(beta, c), *grm0 = dfrom(rm0, c), *grv0 = dfrom(rv0, c);
    float *gy = dpoisoned(nx), *gyi = dpoisoned(nx), *gmean = dpoisoned(c), *ginv = dpoisoned(c);
    float *gimean = dpoisoned(c), *giinv = dpoisoned(c);
    float *grm = dfrom(rm0, c), *grv = dfrom(rv0, c), *gdx = dpoisoned(nx), *gdg = dfrom(dg0, c), *gdb = dfrom(db0, c);
    int64_t *gcount = NULL, gcount_h = 41;
    if (G->alloc(gs, sizeof(int64_t), (void **)&gcount) != SUPCON_OK) {
        printf("FAIL cuda alloc of the batch counter: %s\n", G->last_message(gs));
        exit(1);
    }
    dput(gcount, &gcount_h, sizeof gcount_h);
    ok_status(G->batchnorm_relu_forward_train(gs, gy, gmean, ginv, grm, grv, gcount, gx, ggamma, gbeta, gres, n, c, hw,
                                              momentum, eps),
              gs, G, tag);
    ok_status(G->batchnorm_relu_forward_infer(gs, gyi, gimean, giinv, gx, ggamma, gbeta, grm0, grv0, gres, n, c, hw,
                                              eps),
              gs, G, tag);
    const float *gby = training ? gy : gyi, *gbmean = training ? gmean : gimean, *gbinv = training ? ginv : giinv;
    ok_status(G->batchnorm_relu_backward(gs, gdx, gdg, gdb, gdy, gby, gx, ggamma, gbmean, gbinv, n, c, hw, training),
              gs, G, tag);
    const struct { const char *name; const float *got, *want; int64_t count; } outs[] = {
        {"train y", gy, y, nx},          {"save_mean", gmean, mean, c},   {"save_invstd", ginv, invstd, c},
        {"running_mean", grm, rm, c},    {"running_var", grv, rv, c},     {"infer y", gyi, yi, nx},
        {"infer save_mean", gimean, imean, c}, {"infer save_invstd", giinv, iinv, c},
        {"dgamma +=", gdg, dg, c},       {"dbeta +=", gdb, db, c}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        snprintf(what, sizeof what, "%s %s", tag, outs[i].name);
        compare(F_BN, what, outs[i].got, outs[i].want, outs[i].count, TOL);
    }
    dget(&gcount_h, gcount, sizeof gcount_h);
    check(count == 42 && gcount_h == 42, "%s: batch counter cpu %lld, cuda %lld, want 42", tag, (long long)count,
          (long long)gcount_h);
    double terms = 0.0;
    for (int64_t i = 0; i < nx; i++) {
        const double t = (double)gamma[(i / hw) % c] * binv[(i / hw) % c] * dy[i];
        terms += t * t;
    }
    g_norm_floor = sqrt(terms);
    snprintf(what, sizeof what, "%s dx", tag);
    compare(F_BN, what, gdx, dx, nx, TOL);
    g_norm_floor = 0.0;

    /* the GPU's separate calls, and in place (y == residual) */
    float *sy = dpoisoned(nx), *sm = dpoisoned(c), *si = dpoisoned(c), *sinfer = dpoisoned(nx);
    ok_status(G->batchnorm_forward_train(gs, sy, sm, si, NULL, NULL, NULL, gx, ggamma, gbeta, n, c, hw, momentum, eps),
              gs, G, tag);
    ok_status(use_res ? G->add_relu_forward(gs, sy, sy, gres, nx) : G->relu_forward(gs, sy, sy, nx), gs, G, tag);
    ok_status(G->batchnorm_forward_infer(gs, sinfer, NULL, NULL, gx, ggamma, gbeta, grm0, grv0, n, c, hw, eps), gs, G,
              tag);
    ok_status(use_res ? G->add_relu_forward(gs, sinfer, sinfer, gres, nx) : G->relu_forward(gs, sinfer, sinfer, nx), gs,
              G, tag);
    float *inplace = use_res ? dfrom(res_h, nx) : dpoisoned(nx);
    ok_status(G->batchnorm_relu_forward_train(gs, inplace, sm, si, NULL, NULL, NULL, gx, ggamma, gbeta,
                                              use_res ? inplace : NULL, n, c, hw, momentum, eps),
              gs, G, tag);
    float *sdy = dfrom(dy, nx), *sdx = dpoisoned(nx), *sdg = dfrom(dg0, c), *sdb = dfrom(db0, c);
    ok_status(G->relu_backward(gs, sdy, sdy, gby, nx), gs, G, tag);
    ok_status(G->batchnorm_backward(gs, sdx, sdg, sdb, sdy, gx, ggamma, gbmean, gbinv, n, c, hw, training), gs, G, tag);
    const struct { const char *name; const float *fused, *separate; int64_t count; } pairs[] = {
        {"train y", gy, sy, nx},   {"train y in place", gy, inplace, nx}, {"infer y", gyi, sinfer, nx},
        {"dx", gdx, sdx, nx},      {"dgamma", gdg, sdg, c},               {"dbeta", gdb, sdb, c}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(what, sizeof what, "%s fused = separate: %s", tag, pairs[i].name);
        same_bits(what, pairs[i].fused, pairs[i].separate, pairs[i].count);
    }
    float *dev[] = {gx, gdy, ggamma, gbeta, grm0, grv0, gy, gyi, gmean, ginv, gimean, giinv, grm, grv, gdx, gdg, gdb,
                    sy, sm, si, sinfer, inplace, sdy, sdx, sdg, sdb};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) G->release(gs, dev[i]);
    if (gres) G->release(gs, gres);
    G->release(gs, gcount);
    float *host[] = {x, res_h, dy, gamma, beta, rm0, rv0, dg0, db0, y, yi, mean, invstd, rm, rv, imean, iinv, dx, dg, db};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_batchnorm(void) {
    tu_rng r = tu_rng_seed(202);
    const int64_t cases[][3] = {{2, 3, 25}, {1, 5, 9},   {7, 4, 1},    {3, 64, 64}, {1, 1, 2},
                                {16, 17, 49}, {64, 8, 1024}, {2, 300, 16}, {5, 2048, 1}, {5, 40, 1000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) bn_case(&r, cases[i][0], cases[i][1], cases[i][2]);
    /* {5, 40, 1000}: 5 000 values per channel, split over blocks unevenly */
    const int64_t fused[][3] = {{2, 3, 25}, {16, 17, 49}, {64, 8, 1024}, {8, 64, 256}, {5, 40, 1000}};
    for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++)
        for (int k = 0; k < 4; k++) bn_fused_case(&r, fused[i][0], fused[i][1], fused[i][2], k & 1, k >> 1);

    /* one value per channel: ERR_SHAPE, as on the CPU (and PyTorch) */
    float *gx = dpoisoned(3), *gy = dpoisoned(3), *gp = dpoisoned(3);
    int64_t *gn = dalloc(sizeof(int64_t)), zero = 0, after = -1;
    dput(gn, &zero, sizeof zero);
    supcon_status s = G->batchnorm_forward_train(gs, gy, gp, gp, gp, gp, gn, gx, gp, gp, 1, 3, 1, 0.1, 1e-5);
    dget(&after, gn, sizeof after);
    check(s == SUPCON_ERR_SHAPE && after == 0, "batchnorm n1 hw1 training: %s (want ERR_SHAPE), counter %lld",
          supcon_status_name(s), (long long)after);
    G->release(gs, gx), G->release(gs, gy), G->release(gs, gp), G->release(gs, gn);
}

/* ---- element-wise ------------------------------------------------------------------------- */

/* fill_zero (ABI 7) writes zeros over exactly its range, queued like the other calls: a
 * kernel's result written just before is overwritten, the floats around it are not. */
static void test_fill_zero(void) {
    const int64_t n = 100003;
    for (int64_t first = 0; first < 3; first++) {
        const int64_t count = n - 2 * first;
        float *h = hnew(n), *ones = hnew(n);
        for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
        float *d = dpoisoned(n), *src = dfrom(ones, n);
        ok_status(G->add_forward(gs, d, src, src, n), gs, G, "fill_zero: the add before it");
        ok_status(G->fill_zero(gs, d + first, (size_t)count * sizeof(float)), gs, G, "fill_zero");
        dget(h, d, (size_t)n * sizeof(float));
        int64_t bad = -1;
        for (int64_t i = 0; i < n && bad < 0; i++)
            if (h[i] != (i >= first && i < first + count ? 0.0f : 2.0f)) bad = i;
        check(bad < 0, "fill_zero of [%lld, %lld): element %lld is %g", (long long)first, (long long)(first + count),
              (long long)bad, bad < 0 ? 0.0 : (double)h[bad]);
        G->release(gs, d);
        G->release(gs, src);
        free(h);
        free(ones);
    }
}

static void test_eltwise(void) {
    tu_rng r = tu_rng_seed(303);
    const int64_t counts[] = {1, 3, 4, 1000, 100003, 1 << 20};
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
        for (int off = 0; off < 2; off++) { /* off 1: pointers not 16-byte aligned */
            const int64_t n = counts[ci];
            char tag[64];
            snprintf(tag, sizeof tag, "eltwise count %lld%s", (long long)n, off ? " unaligned" : "");
            float *a = hrand(&r, n, 0.0, 1.0), *b = hrand(&r, n, 0.0, 1.0), *acc = hrand(&r, n, 0.0, 1.0);
            float *relu = hnew(n), *relu_b = hnew(n), *add = hnew(n), *add_relu = hnew(n), *accd = hcopy(acc, n);
            ok_status(C->relu_forward(cs, relu, a, n), cs, C, tag);
            ok_status(C->relu_backward(cs, relu_b, b, relu, n), cs, C, tag);
            ok_status(C->add_forward(cs, add, a, b, n), cs, C, tag);
            ok_status(C->add_relu_forward(cs, add_relu, a, b, n), cs, C, tag);
            ok_status(C->accumulate(cs, accd, a, n), cs, C, tag);

            float *ba = dalloc((size_t)(n + 1) * 4), *bb = dalloc((size_t)(n + 1) * 4), *bo = dalloc((size_t)(n + 1) * 4);
            float *ga = ba + off, *gb = bb + off, *go = bo + off;
            dput(ga, a, (size_t)n * 4);
            dput(gb, b, (size_t)n * 4);
            char what[128];
#define ELT(call, want, name)                                                                                          \
    do {                                                                                                               \
        ok_status(call, gs, G, tag);                                                                                   \
        snprintf(what, sizeof what, "%s %s", tag, name);                                                               \
        compare(F_ELT, what, go, want, n, 0.0);                                                                        \
    } while (0)
            float *nan = hnan(n);
            dput(go, nan, (size_t)n * 4);
            ELT(G->relu_forward(gs, go, ga, n), relu, "relu");
            ELT(G->relu_backward(gs, go, gb, go, n), relu_b, "relu backward (dx = y's buffer)");
            dput(go, nan, (size_t)n * 4);
            ELT(G->add_forward(gs, go, ga, gb, n), add, "add");
            dput(go, nan, (size_t)n * 4);
            ELT(G->add_relu_forward(gs, go, ga, gb, n), add_relu, "add+relu");
            dput(go, acc, (size_t)n * 4);
            ELT(G->accumulate(gs, go, ga, n), accd, "accumulate");
            /* in place: y == x, y == a */
            dput(go, a, (size_t)n * 4);
            ELT(G->relu_forward(gs, go, go, n), relu, "relu in place");
            dput(go, a, (size_t)n * 4);
            ELT(G->add_relu_forward(gs, go, go, gb, n), add_relu, "add+relu in place");
#undef ELT
            G->release(gs, ba), G->release(gs, bb), G->release(gs, bo);
            free(a), free(b), free(acc), free(relu), free(relu_b), free(add), free(add_relu), free(accd), free(nan);
        }
}

/* ---- average pool ----------------------------------------------------------------------------- */

static void test_avgpool(void) {
    tu_rng r = tu_rng_seed(404);
    const int64_t cases[][3] = {{1, 1, 1}, {3, 7, 16}, {2, 33, 49}, {4, 512, 16}, {2, 5, 1000}, {1, 2048, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t n = cases[i][0], c = cases[i][1], hw = cases[i][2], nx = n * c * hw;
        char tag[64], what[128];
        snprintf(tag, sizeof tag, "avgpool n%lld c%lld hw%lld", (long long)n, (long long)c, (long long)hw);
        float *x = hrand(&r, nx, 0.5, 1.0), *dy = hrand(&r, n * c, 0.0, 1.0), *dx0 = hrand(&r, nx, 0.0, 1.0);
        float *y = hnew(n * c), *dx = hnew(nx), *dxa = hcopy(dx0, nx);
        ok_status(C->avgpool_forward(cs, y, x, n, c, hw), cs, C, tag);
        ok_status(C->avgpool_backward(cs, dx, dy, n, c, hw, 0), cs, C, tag);
        ok_status(C->avgpool_backward(cs, dxa, dy, n, c, hw, 1), cs, C, tag);
        float *gx = dfrom(x, nx), *gdy = dfrom(dy, n * c), *gy = dpoisoned(n * c), *gdx = dpoisoned(nx),
              *gdxa = dfrom(dx0, nx);
        ok_status(G->avgpool_forward(gs, gy, gx, n, c, hw), gs, G, tag);
        ok_status(G->avgpool_backward(gs, gdx, gdy, n, c, hw, 0), gs, G, tag);
        ok_status(G->avgpool_backward(gs, gdxa, gdy, n, c, hw, 1), gs, G, tag);
        snprintf(what, sizeof what, "%s forward", tag);
        compare(F_POOL, what, gy, y, n * c, TOL_TIGHT);
        snprintf(what, sizeof what, "%s backward", tag);
        compare(F_POOL, what, gdx, dx, nx, TOL_TIGHT);
        snprintf(what, sizeof what, "%s backward +=", tag);
        compare(F_POOL, what, gdxa, dxa, nx, TOL_TIGHT);
        G->release(gs, gx), G->release(gs, gdy), G->release(gs, gy), G->release(gs, gdx), G->release(gs, gdxa);
        free(x), free(dy), free(dx0), free(y), free(dx), free(dxa);
    }
}

/* ---- linear ------------------------------------------------------------------------------------ */

static void test_linear(void) {
    tu_rng r = tu_rng_seed(505);
    const int64_t cases[][3] = {{1, 1, 1}, {1, 3, 5}, {7, 33, 10}, {64, 512, 128}, {33, 2048, 100}, {5, 0, 4}, {256, 128, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int with_bias = 1; with_bias >= 0; with_bias--) {
            const int64_t n = cases[i][0], in = cases[i][1], out = cases[i][2];
            char tag[80], what[160];
            snprintf(tag, sizeof tag, "linear n%lld %lld -> %lld%s", (long long)n, (long long)in, (long long)out,
                     with_bias ? "" : " no bias");
            float *x = hrand(&r, n * in, 0.0, 1.0), *w = hrand(&r, out * in, 0.0, 0.1), *b = hrand(&r, out, 0.0, 1.0);
            float *dy = hrand(&r, n * out, 0.0, 1.0), *dw0 = hrand(&r, out * in, 0.0, 1.0), *db0 = hrand(&r, out, 0.0, 1.0);
            float *y = hnew(n * out), *dx = hnew(n * in), *dw = hcopy(dw0, out * in), *db = hcopy(db0, out);
            ok_status(C->linear_forward(cs, y, x, w, with_bias ? b : NULL, n, in, out), cs, C, tag);
            ok_status(C->linear_backward(cs, dx, dw, db, dy, x, w, n, in, out), cs, C, tag);
            float *gx = dfrom(x, n * in), *gw = dfrom(w, out * in), *gb = dfrom(b, out), *gdy = dfrom(dy, n * out);
            float *gy[2], *gdx[2], *gdw[2], *gdb[2];
            for (int run = 0; run < 2; run++) {
                gy[run] = dpoisoned(n * out), gdx[run] = dpoisoned(n * in);
                gdw[run] = dfrom(dw0, out * in), gdb[run] = dfrom(db0, out);
                ok_status(G->linear_forward(gs, gy[run], gx, gw, with_bias ? gb : NULL, n, in, out), gs, G, tag);
                ok_status(G->linear_backward(gs, gdx[run], gdw[run], gdb[run], gdy, gx, gw, n, in, out), gs, G, tag);
            }
#define LIN_CMP(dev, host, cnt, name)                                                                                 \
    do {                                                                                                              \
        snprintf(what, sizeof what, "%s %s", tag, name);                                                              \
        compare(g_lin_fam, what, dev[0], host, cnt, g_prod_tol);                                                      \
        same_bits(what, dev[0], dev[1], cnt);                                                                         \
    } while (0)
            LIN_CMP(gy, y, n * out, "forward");
            LIN_CMP(gdx, dx, n * in, "dx");
            LIN_CMP(gdw, dw, out * in, "dweight +=");
            LIN_CMP(gdb, db, out, "dbias +=");
#undef LIN_CMP
            /* each gradient alone */
            float *gdx1 = dpoisoned(n * in), *gdw1 = dfrom(dw0, out * in), *gdb1 = dfrom(db0, out);
            ok_status(G->linear_backward(gs, gdx1, NULL, NULL, gdy, gx, gw, n, in, out), gs, G, tag);
            ok_status(G->linear_backward(gs, NULL, gdw1, NULL, gdy, gx, gw, n, in, out), gs, G, tag);
            ok_status(G->linear_backward(gs, NULL, NULL, gdb1, gdy, gx, gw, n, in, out), gs, G, tag);
            snprintf(what, sizeof what, "%s dx alone", tag);
            compare(g_lin_fam, what, gdx1, dx, n * in, g_prod_tol);
            snprintf(what, sizeof what, "%s dweight alone", tag);
            compare(g_lin_fam, what, gdw1, dw, out * in, g_prod_tol);
            snprintf(what, sizeof what, "%s dbias alone", tag);
            compare(g_lin_fam, what, gdb1, db, out, g_prod_tol);
            G->release(gs, gdx1), G->release(gs, gdw1), G->release(gs, gdb1);
            for (int run = 0; run < 2; run++)
                G->release(gs, gy[run]), G->release(gs, gdx[run]), G->release(gs, gdw[run]), G->release(gs, gdb[run]);
            G->release(gs, gx), G->release(gs, gw), G->release(gs, gb), G->release(gs, gdy);
            free(x), free(w), free(b), free(dy), free(dw0), free(db0), free(y), free(dx), free(dw), free(db);
        }
}

/* ---- L2 normalisation ------------------------------------------------------------------------------ */

static void test_l2norm(void) {
    tu_rng r = tu_rng_seed(606);
    const int64_t cases[][2] = {{1, 1}, {5, 128}, {37, 33}, {256, 128}, {3, 2048}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t n = cases[i][0], d = cases[i][1];
        char tag[64], what[128];
        snprintf(tag, sizeof tag, "l2norm n%lld d%lld", (long long)n, (long long)d);
        float *x = hrand(&r, n * d, 0.0, 1.0), *dy = hrand(&r, n * d, 0.0, 1.0);
        if (n > 2) { /* a zero row and a row under the clamp */
            for (int64_t k = 0; k < d; k++) x[1 * d + k] = 0.0f, x[2 * d + k] = (float)(1e-14 * tu_normal(&r));
        }
        float *y = hnew(n * d), *norms = hnew(n), *dx = hnew(n * d);
        ok_status(C->l2norm_forward(cs, y, norms, x, n, d), cs, C, tag);
        ok_status(C->l2norm_backward(cs, dx, dy, x, norms, n, d), cs, C, tag);
        float *gx = dfrom(x, n * d), *gdy = dfrom(dy, n * d), *gy = dpoisoned(n * d), *gn = dpoisoned(n),
              *gdx = dpoisoned(n * d);
        ok_status(G->l2norm_forward(gs, gy, gn, gx, n, d), gs, G, tag);
        ok_status(G->l2norm_backward(gs, gdx, gdy, gx, gn, n, d), gs, G, tag);
        snprintf(what, sizeof what, "%s forward", tag);
        compare(F_L2, what, gy, y, n * d, TOL_TIGHT);
        snprintf(what, sizeof what, "%s norms", tag);
        compare(F_L2, what, gn, norms, n, TOL_TIGHT);
        /* rows under the clamp have gradients ~1e12 times dy: compare rows apart */
        float *got = hnew(n * d);
        dget(got, gdx, (size_t)(n * d) * 4);
        for (int64_t row = 0; row < n; row++) {
            snprintf(what, sizeof what, "%s backward row %lld", tag, (long long)row);
            compare_host(F_L2, what, got + row * d, dx + row * d, d, TOL_TIGHT);
        }
        free(got);
        G->release(gs, gx), G->release(gs, gdy), G->release(gs, gy), G->release(gs, gn), G->release(gs, gdx);
        free(x), free(dy), free(y), free(norms), free(dx);
    }
}

/* ---- cross-entropy ------------------------------------------------------------------------------------ */

static void xent_case(tu_rng *r, int64_t n, int64_t k, int ties) {
    char tag[80], what[160];
    snprintf(tag, sizeof tag, "xent n%lld classes %lld%s", (long long)n, (long long)k, ties ? " ties" : "");
    float *z = hrand(r, n * k, 0.0, 2.0);
    if (ties)
        for (int64_t i = 0; i < n * k; i++) z[i] = (float)floor(z[i]);
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) lab[i] = tu_randint(r, k);
    float *p = hnew(n * k), *dz = hnew(n * k);
    double loss = 0.0;
    int64_t t1 = -1, t5 = -1;
    ok_status(C->xent_forward(cs, &loss, &t1, &t5, p, z, lab, n, k), cs, C, tag);
    ok_status(C->xent_backward(cs, dz, p, lab, n, k, 0.7f), cs, C, tag);

    float *gz = dfrom(z, n * k), *gp = dpoisoned(n * k), *gdz = dpoisoned(n * k);
    int64_t *glab = dalloc(sizeof(int64_t) * (size_t)n);
    dput(glab, lab, sizeof(int64_t) * (size_t)n);
    double gloss[2] = {0, 0};
    int64_t g1[2] = {-1, -1}, g5[2] = {-1, -1};
    for (int run = 0; run < 2; run++)
        ok_status(G->xent_forward(gs, &gloss[run], &g1[run], &g5[run], gp, gz, glab, n, k), gs, G, tag);
    ok_status(G->xent_backward(gs, gdz, gp, glab, n, k, 0.7f), gs, G, tag);
    const double lerr = fabs(gloss[0] - loss) / (fabs(loss) > 1e-6 ? fabs(loss) : 1e-6);
    if (lerr > g_worst[F_XENT]) g_worst[F_XENT] = lerr;
    check(lerr <= 1e-6, "%s loss: GPU %.9g, CPU %.9g", tag, gloss[0], loss);
    check(gloss[0] == gloss[1] && g1[0] == g1[1] && g5[0] == g5[1], "%s: two runs on the GPU differ", tag);
    check(g1[0] == t1 && g5[0] == t5, "%s top1/top5: GPU %lld/%lld, CPU %lld/%lld", tag, (long long)g1[0],
          (long long)g5[0], (long long)t1, (long long)t5);
    snprintf(what, sizeof what, "%s probs", tag);
    compare(F_XENT, what, gp, p, n * k, TOL_TIGHT);
    snprintf(what, sizeof what, "%s dlogits", tag);
    compare(F_XENT, what, gdz, dz, n * k, TOL_TIGHT);
    /* in place: dlogits == probs */
    ok_status(G->xent_backward(gs, gp, gp, glab, n, k, 0.7f), gs, G, tag);
    snprintf(what, sizeof what, "%s dlogits in place", tag);
    compare(F_XENT, what, gp, dz, n * k, TOL_TIGHT);
    /* top counts optional */
    ok_status(G->xent_forward(gs, &gloss[1], NULL, NULL, NULL, gz, glab, n, k), gs, G, tag);
    check(gloss[1] == gloss[0], "%s: loss without probs or counts differs", tag);

    /* a label out of range (one past the end, then negative): the CPU's error, nothing written */
    if (n >= 3) {
        for (int bad = 0; bad < 2; bad++) {
            const int64_t row = n / 2, keep = lab[row], keep_last = lab[n - 1];
            lab[row] = bad == 0 ? k : -1;
            lab[n - 1] = bad == 0 ? k + 7 : -3; /* a later bad row must not be the one named */
            int64_t *gbad = dalloc(sizeof(int64_t) * (size_t)n);
            dput(gbad, lab, sizeof(int64_t) * (size_t)n);
            float *gp2 = dpoisoned(n * k), *gd2 = dpoisoned(n * k);
            double l2 = 12345.0;
            int64_t a1 = 777, a5 = 777;
            supcon_status sc = C->xent_forward(cs, &l2, &a1, &a5, p, z, lab, n, k);
            char cmsg[SUPCON_BACKEND_MSG_LEN];
            snprintf(cmsg, sizeof cmsg, "%s", C->last_message(cs));
            supcon_status sg = G->xent_forward(gs, &l2, &a1, &a5, gp2, gz, gbad, n, k);
            check(sc == SUPCON_ERR_INVALID_ARGUMENT && sg == SUPCON_ERR_INVALID_ARGUMENT,
                  "%s bad label: CPU %s, GPU %s", tag, supcon_status_name(sc), supcon_status_name(sg));
            check(strcmp(cmsg, G->last_message(gs)) == 0, "%s bad label: messages differ\n  cpu:  %s\n  cuda: %s", tag,
                  cmsg, G->last_message(gs));
            check(l2 == 12345.0 && a1 == 777 && a5 == 777, "%s bad label: host results written", tag);
            sg = G->xent_backward(gs, gd2, gp, gbad, n, k, 1.0f);
            check(sg == SUPCON_ERR_INVALID_ARGUMENT, "%s bad label backward: GPU %s", tag, supcon_status_name(sg));
            float *back = hnew(n * k);
            int64_t written = 0;
            dget(back, gp2, (size_t)(n * k) * 4);
            for (int64_t i = 0; i < n * k; i++) written += !isnan(back[i]);
            dget(back, gd2, (size_t)(n * k) * 4);
            for (int64_t i = 0; i < n * k; i++) written += !isnan(back[i]);
            check(written == 0, "%s bad label: %lld elements written", tag, (long long)written);
            free(back);
            G->release(gs, gbad), G->release(gs, gp2), G->release(gs, gd2);
            lab[row] = keep;
            lab[n - 1] = keep_last;
        }
    }
    G->release(gs, gz), G->release(gs, gp), G->release(gs, gdz), G->release(gs, glab);
    free(z), free(lab), free(p), free(dz);
}

static void test_xent(void) {
    tu_rng r = tu_rng_seed(707);
    xent_case(&r, 1, 1, 0);
    xent_case(&r, 7, 10, 0);
    xent_case(&r, 33, 100, 0);
    xent_case(&r, 64, 3, 0);
    xent_case(&r, 300, 1000, 0);
    xent_case(&r, 2000, 10, 0);
    xent_case(&r, 50, 10, 1);
    xent_case(&r, 40, 4, 1);
}

/* ---- SGD: the same bits as the CPU for every combination of the update's options ---------------------- */

static void test_sgd(void) {
    tu_rng r = tu_rng_seed(909);
    const int64_t n = 100003; /* not a multiple of any block */
    float *w0 = hrand(&r, n, 0, 1), *g = hrand(&r, n, 0, 1), *b0 = hrand(&r, n, 0, 1);
    for (int combo = 0; combo < 16; combo++) {
        const int decay = combo & 1, momentum = (combo >> 1) & 1, first = (combo >> 2) & 1, nesterov = (combo >> 3) & 1;
        float *cw = hcopy(w0, n), *cb = hcopy(b0, n);
        float *gw = dfrom(w0, n), *gg = dfrom(g, n), *gb = dfrom(b0, n);
        supcon_sgd_segment seg = {cw, g, momentum ? cb : NULL, n, 0.05f, decay ? 1e-4f : 0.0f,
                                  momentum ? 0.9f : 0.0f, 1.0f, nesterov, first};
        ok_status(C->sgd_update(cs, &seg, 1), cs, C, "sgd cpu");
        seg.param = gw, seg.grad = gg, seg.momentum_buffer = momentum ? gb : NULL;
        ok_status(G->sgd_update(gs, &seg, 1), gs, G, "sgd cuda");
        float *hw = hnew(n), *hb = hnew(n);
        dget(hw, gw, (size_t)n * 4);
        dget(hb, gb, (size_t)n * 4);
        check(memcmp(hw, cw, (size_t)n * 4) == 0, "sgd decay %d momentum %d first %d nesterov %d: parameters differ from the CPU",
              decay, momentum, first, nesterov);
        check(memcmp(hb, cb, (size_t)n * 4) == 0, "sgd decay %d momentum %d first %d nesterov %d: buffers differ from the CPU",
              decay, momentum, first, nesterov);
        free(hw), free(hb), free(cw), free(cb);
        G->release(gs, gw), G->release(gs, gg), G->release(gs, gb);
    }
    free(w0), free(g), free(b0);
}

/* ---- main ---------------------------------------------------------------------------------------------- */

static int layer_slots_filled(const supcon_backend_ops *o) {
    const void *slots[] = {
        (const void *)o->conv2d_workspace_bytes, (const void *)o->conv2d_forward, (const void *)o->conv2d_backward_data,
        (const void *)o->conv2d_backward_filter, (const void *)o->batchnorm_forward_train,
        (const void *)o->batchnorm_forward_infer, (const void *)o->batchnorm_backward, (const void *)o->relu_forward,
        (const void *)o->relu_backward, (const void *)o->add_forward, (const void *)o->add_relu_forward,
        (const void *)o->accumulate, (const void *)o->avgpool_forward, (const void *)o->avgpool_backward,
        (const void *)o->linear_forward, (const void *)o->linear_backward, (const void *)o->l2norm_forward,
        (const void *)o->l2norm_backward, (const void *)o->xent_forward, (const void *)o->xent_backward,
        (const void *)o->batchnorm_relu_forward_train, (const void *)o->batchnorm_relu_forward_infer,
        (const void *)o->batchnorm_relu_backward};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (!slots[i]) {
            printf("FAIL %s backend: layer slot %zu is empty\n", o->name, i);
            return 0;
        }
    return 1;
}

/* ---- TF32 ----------------------------------------------------------------------------------- */

/* TF32 tolerance: products of inputs rounded to 11 significant bits, about 2^-11 relative
 * each, partly averaging out over a sum. */
#define TOL_TF32 3e-3

/* A third CUDA state made with SUPCON_PRECISION_TF32: convolutions and linear
 * layers within the TF32 tolerance of the CPU's float32, and TF32 visibly in use — a typical
 * ResNet layer's error above what float32 gives (about 1e-6), else the option did nothing. */
static void test_tf32(void) {
    supcon_backend_init cfg = {.device = 0, .num_threads = 0, .precision = SUPCON_PRECISION_TF32};
    char msg[SUPCON_BACKEND_MSG_LEN] = "";
    void *tf = NULL;
    supcon_status s = G->init(&cfg, &tf, msg, sizeof msg);
    check(s == SUPCON_OK, "a CUDA state with SUPCON_PRECISION_TF32: %s: %s", supcon_status_name(s), msg);
    if (s != SUPCON_OK) return;
    void *keep = gs;
    gs = tf;
    g_conv_mode = " (tf32)";
    g_prod_tol = TOL_TF32;
    g_conv_fam = F_CONV_TF32;
    g_lin_fam = F_LIN_TF32;
    tu_rng r = tu_rng_seed(103);
    const supcon_conv_desc cases[] = {{3, 5, 9, 7, 4, 3, 3, 2, 2, 1, 1}, {8, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1},
                                      {16, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1}, {5, 128, 4, 4, 256, 1, 1, 2, 2, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case(&r, cases[i]);
    check(g_worst[F_CONV_TF32] > 1e-5 && g_worst[F_CONV_TF32_DATA] > 1e-5 && g_worst[F_CONV_TF32_FILTER] > 1e-5,
          "tf32: the convolutions' worst errors (forward %.3g, backward data %.3g, filter %.3g) include float32's: "
          "TF32 not in use there",
          g_worst[F_CONV_TF32], g_worst[F_CONV_TF32_DATA], g_worst[F_CONV_TF32_FILTER]);
    test_linear();
    check(g_worst[F_LIN_TF32] > 1e-5,
          "tf32: the linear layers' worst error %.3g is float32's: TF32 not in use",
          g_worst[F_LIN_TF32]);
    g_conv_mode = "";
    g_prod_tol = TOL;
    g_conv_fam = F_CONV;
    g_lin_fam = F_LIN;
    gs = keep;
    G->shutdown(tf);
}

/* ---- BF16 ----------------------------------------------------------------------------------- */

/* Both sides round the same operands and results: what differs is the order of the float32
 * sums, which moves a result across a rounding boundary now and then (one bfloat16 step,
 * 2^-7 relative, in a few elements): on the CPU, another order costs at most 6e-5 in these
 * cases, while bfloat16 is 3e-3 from float32 (so 1e-3 also catches unrounded operands or
 * truncation instead of rounding to nearest). */
#define TOL_BF16 1e-3

/* x = 1 + 2^-8 + 2^-12 rounds up to 1 + 2^-7, w = 1 - 2^-10 rounds to 1: every result of a
 * one-product convolution is 1 + 2^-7 exactly, where float32 gives about 1.00317. */
static void bf16_one_product(void) {
    const supcon_conv_desc d = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const float a = 1.0f + 0x1p-8f + 0x1p-12f, b = 1.0f - 0x1p-10f, want = 1.0f + 0x1p-7f;
    const size_t wsb = G->conv2d_workspace_bytes(gs, &d);
    void *ws = dalloc(wsb);
    float *ga = dfrom(&a, 1), *gb = dfrom(&b, 1), *gy = dpoisoned(1), *gdx = dpoisoned(1);
    const float quarter = 0.25f, half = 0.5f;
    float *gdxa = dfrom(&quarter, 1), *gdw = dfrom(&half, 1);
    ok_status(G->conv2d_forward(gs, &d, gy, ga, gb, ws, wsb), gs, G, "bf16 one product forward");
    ok_status(G->conv2d_backward_data(gs, &d, gdx, ga, gb, 0, ws, wsb), gs, G, "bf16 one product data");
    ok_status(G->conv2d_backward_data(gs, &d, gdxa, ga, gb, 1, ws, wsb), gs, G, "bf16 one product data +=");
    ok_status(G->conv2d_backward_filter(gs, &d, gdw, ga, gb, ws, wsb), gs, G, "bf16 one product filter");
    float y, dx, dxa, dw;
    dget(&y, gy, 4), dget(&dx, gdx, 4), dget(&dxa, gdxa, 4), dget(&dw, gdw, 4);
    check(y == want && dx == want && dxa == 0.25f + want && dw == 0.5f + want,
          "bf16 one product: y %.9g, dx %.9g, dx += %.9g, dW += %.9g; want %.9g (+ 0.25, + 0.5)", y, dx, dxa, dw,
          want);
    G->release(gs, ws), G->release(gs, ga), G->release(gs, gb), G->release(gs, gy);
    G->release(gs, gdx), G->release(gs, gdxa), G->release(gs, gdw);
}

/* The two-by-two case of test_bf16_case.h through the casts that transpose (the copies are
 * channels last unless the state says NCHW). */
static void bf16_two_by_two(void) {
    const bf16_case c = bf16_two_by_two_case();
    const size_t wsb = G->conv2d_workspace_bytes(gs, &c.d);
    void *ws = dalloc(wsb);
    float *gx = dfrom(c.x, 4), *gw = dfrom(c.w, 4), *gdy = dfrom(c.dy, 4), *gy = dpoisoned(4), *gdx = dpoisoned(4);
    const float zero[4] = {0, 0, 0, 0};
    float *gdw = dfrom(zero, 4);
    ok_status(G->conv2d_forward(gs, &c.d, gy, gx, gw, ws, wsb), gs, G, "bf16 2x2 forward");
    ok_status(G->conv2d_backward_data(gs, &c.d, gdx, gdy, gw, 0, ws, wsb), gs, G, "bf16 2x2 data");
    ok_status(G->conv2d_backward_filter(gs, &c.d, gdw, gdy, gx, ws, wsb), gs, G, "bf16 2x2 filter");
    float y[4], dx[4], dw[4];
    dget(y, gy, sizeof y), dget(dx, gdx, sizeof dx), dget(dw, gdw, sizeof dw);
    for (int i = 0; i < 4; i++)
        check(y[i] == c.want_y[i] && dx[i] == c.want_dx[i] && dw[i] == c.want_dw[i],
              "bf16 2x2 element %d: y %.9g (want %g), dx %.9g (want %g), dW %.9g (want %g)", i, y[i], c.want_y[i],
              dx[i], c.want_dx[i], dw[i], c.want_dw[i]);
    G->release(gs, ws), G->release(gs, gx), G->release(gs, gw), G->release(gs, gdy), G->release(gs, gy);
    G->release(gs, gdx), G->release(gs, gdw);
}

/* The GPU's bfloat16 convolution of a typical layer is visibly not float32: further from the
 * CPU's float32 than TOL_BF16 (else the precision did nothing and the comparisons above would
 * prove little). fp32 is a CPU state in float32. */
static void bf16_in_use(void *fp32) {
    tu_rng r = tu_rng_seed(109);
    const supcon_conv_desc d = {8, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1};
    const int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * d.c_in * 9, ny = d.n * d.c_out * d.h * d.w;
    float *x = hrand(&r, nx, 0.0, 1.0), *w = hrand(&r, nw, 0.0, 1.0 / 24.0), *y = hnew(ny);
    const size_t cwb = C->conv2d_workspace_bytes(fp32, &d), gwb = G->conv2d_workspace_bytes(gs, &d);
    void *cws = malloc(cwb ? cwb : 1), *gws = dalloc(gwb);
    ok_status(C->conv2d_forward(fp32, &d, y, x, w, cws, cwb), fp32, C, "bf16 in use: cpu float32");
    float *gx = dfrom(x, nx), *gw = dfrom(w, nw), *gy = dpoisoned(ny);
    ok_status(G->conv2d_forward(gs, &d, gy, gx, gw, gws, gwb), gs, G, "bf16 in use: cuda bfloat16");
    const double keep = g_worst[F_CONV_BF16];
    const double err = compare(F_CONV_BF16, "bf16 in use against float32 (no bound)", gy, y, ny, 1.0);
    g_worst[F_CONV_BF16] = keep; /* not a parity error */
    check(err > TOL_BF16, "bf16: a 64-channel layer is %.3g from float32, within %.0e: bfloat16 not in use", err,
          TOL_BF16);
    free(x), free(w), free(y), free(cws);
    G->release(gs, gws), G->release(gs, gx), G->release(gs, gw), G->release(gs, gy);
}

/* A CUDA state and a CPU state both made with SUPCON_PRECISION_BF16: the convolutions within
 * TOL_BF16 of each other, every stored result a bfloat16 value, two cases exact to the bit,
 * visibly not float32, and the other layers still strict float32 (the linear layers against
 * the float32 tolerance). layout: the bfloat16 copies' (SUPCON_CUDA_BF16_LAYOUT, read when the
 * state is made): "nhwc" (the default; casts that transpose) or "nchw"; find: algorithms
 * ranked by timing them (SUPCON_CUDA_CONV_FIND=1), other algorithms than the heuristics'. */
static void test_bf16(const char *layout, int find) {
    supcon_backend_init gcfg = {.device = 0, .num_threads = 0, .precision = SUPCON_PRECISION_BF16};
    supcon_backend_init ccfg = {.device = 0, .num_threads = 2, .precision = SUPCON_PRECISION_BF16};
    char msg[SUPCON_BACKEND_MSG_LEN] = "";
    void *gbf = NULL, *cbf = NULL;
    setenv("SUPCON_CUDA_BF16_LAYOUT", layout, 1);
    if (find) setenv("SUPCON_CUDA_CONV_FIND", "1", 1);
    supcon_status s = G->init(&gcfg, &gbf, msg, sizeof msg);
    unsetenv("SUPCON_CUDA_BF16_LAYOUT");
    unsetenv("SUPCON_CUDA_CONV_FIND");
    check(s == SUPCON_OK, "a CUDA state with SUPCON_PRECISION_BF16: %s: %s", supcon_status_name(s), msg);
    if (s != SUPCON_OK) return;
    s = C->init(&ccfg, &cbf, msg, sizeof msg);
    check(s == SUPCON_OK, "a CPU state with SUPCON_PRECISION_BF16: %s", msg);
    if (s != SUPCON_OK) {
        G->shutdown(gbf);
        return;
    }
    void *keep_g = gs, *keep_c = cs;
    gs = gbf, cs = cbf;
    bf16_one_product();
    bf16_two_by_two();
    bf16_in_use(keep_c);
    char mode[32];
    snprintf(mode, sizeof mode, " (bf16 %s%s)", layout, find ? ", find" : "");
    g_conv_mode = mode;
    g_prod_tol = TOL_BF16;
    g_conv_fam = F_CONV_BF16;
    g_bf16 = 1;
    tu_rng r = tu_rng_seed(107);
    const supcon_conv_desc cases[] = {{3, 5, 9, 7, 4, 3, 3, 2, 2, 1, 1},    {8, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1},
                                      {16, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1}, {5, 128, 4, 4, 256, 1, 1, 2, 2, 0, 0},
                                      {2, 32, 11, 13, 48, 3, 3, 2, 2, 1, 1},  {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
                                      {3, 40, 7, 5, 33, 3, 3, 1, 1, 1, 1},    {2, 70, 1, 1, 3, 1, 1, 1, 1, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case(&r, cases[i]);
    g_bf16 = 0;
    g_conv_mode = "";
    g_prod_tol = TOL;
    g_conv_fam = F_CONV;
    test_linear(); /* not a convolution: float32 as before */
    gs = keep_g, cs = keep_c;
    G->shutdown(gbf);
    C->shutdown(cbf);
}

int main(void) {
    const char *path = getenv("SUPCON_CUDA_MODULE");
#ifdef SUPCON_TEST_CUDA_MODULE
    if (!path || !*path) path = SUPCON_TEST_CUDA_MODULE;
#endif
    if (!path || !*path) {
        printf("skipped: built without the CUDA module (SUPCON_CUDA=OFF or no CUDA toolkit)\n");
        return 77;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        printf("skipped: the CUDA module could not be loaded: %s\n", dlerror());
        return 77;
    }
    supcon_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, SUPCON_CUDA_ENTRY_SYMBOL);
    if (!entry) {
        printf("FAIL %s has no symbol %s\n", path, SUPCON_CUDA_ENTRY_SYMBOL);
        return 1;
    }
    G = entry();
    if (G && strcmp(G->name, "cuda") != 0) {
        printf("FAIL %s hands out the '%s' table, not CUDA's\n", path, G->name);
        return 1;
    }
    C = sc_cpu_backend();
    if (!G || G->abi != SUPCON_BACKEND_ABI) {
        printf("FAIL the CUDA module was built for backend ABI %u, this test for %u\n", G ? G->abi : 0u,
               SUPCON_BACKEND_ABI);
        return 1;
    }
    /* The defaults (deterministic convolution algorithms, ranked by heuristics) are what the
     * bit-for-bit checks and the first pass over the convolutions need. */
    unsetenv("SUPCON_CUDA_CONV_DETERMINISTIC");
    unsetenv("SUPCON_CUDA_CONV_FIND");
    char msg[SUPCON_BACKEND_MSG_LEN] = "";
    supcon_backend_init gcfg = {.device = 0, .num_threads = 0, .precision = SUPCON_PRECISION_FP32};
    supcon_backend_init ccfg = {.device = 0, .num_threads = 2, .precision = SUPCON_PRECISION_FP32};
    supcon_status s = G->init(&gcfg, &gs, msg, sizeof msg);
    if (s == SUPCON_ERR_BACKEND_UNAVAILABLE) {
        printf("skipped: %s\n", msg);
        return 77;
    }
    if (s != SUPCON_OK) {
        printf("FAIL creating the CUDA state: %s: %s\n", supcon_status_name(s), msg);
        return 1;
    }
    if (C->init(&ccfg, &cs, msg, sizeof msg) != SUPCON_OK) {
        printf("FAIL creating the CPU state: %s\n", msg);
        return 1;
    }
    if (!layer_slots_filled(G) || !layer_slots_filled(C)) return 1;
    if (!G->sgd_update) {
        printf("FAIL cuda backend: sgd_update slot is empty\n");
        return 1;
    }

    test_fill_zero();
    test_eltwise();
    test_avgpool();
    test_l2norm();
    test_linear();
    test_xent();
    test_batchnorm();
    test_conv();
    test_conv_find();
    test_tf32();
    test_bf16("nhwc", 0);
    test_bf16("nchw", 0);
    test_bf16("nhwc", 1); /* algorithms ranked by timing them */
    test_sgd();

    printf("worst relative error:");
    for (int f = 0; f < F_COUNT; f++) printf(" %s %.2g%s", FAMILY[f], g_worst[f], f + 1 < F_COUNT ? "," : "\n");
    printf("cuda workspace after the run: %zu bytes\n", G->workspace_bytes ? G->workspace_bytes(gs) : (size_t)0);
    G->shutdown(gs);
    C->shutdown(cs);
    printf("cuda_ops: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
