/* SupConLoss against PyTorch: every tests/fixtures/loss_*.txt written by
 * gen_loss_fixtures.py is one test case. The library (CPU backend, float32) must match the
 * float64 autograd loss and gradient; the double reference (tests/ref) must match closely,
 * which ties that reference to PyTorch for the other tests. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/loss_ref.h"
#include "supcon/loss.h"
#include "supcon/tensor.h"
#include "test_util.h"

#define MAX_FIXTURES 256

typedef struct fixture_case {
    char path[1024];
    const char *name; /* file name inside path */
    int index;        /* rank in sorted order: decides int32 / int64 labels */
} fixture_case;

static supcon_context *g_ctx;

static supcon_tensor *make_tensor(supcon_dtype dt, int ndim, const int64_t *shape,
                                  const void *data) {
    supcon_tensor *t = NULL;
    supcon_status s = supcon_tensor_create(g_ctx, dt, ndim, shape, &t);
    if (s != SUPCON_OK) fail_msg("tensor_create: %s", supcon_context_last_error(g_ctx));
    if (data) {
        s = supcon_tensor_upload(t, data, supcon_tensor_bytes(t));
        if (s != SUPCON_OK) fail_msg("tensor_upload: %s", supcon_context_last_error(g_ctx));
    }
    return t;
}

/* Labels as int32 or int64, as the case asks. */
static supcon_tensor *make_labels(const int64_t *lab, int64_t n, int as_int32) {
    int64_t shape[1] = {n};
    if (!as_int32) return make_tensor(SUPCON_INT64, 1, shape, lab);
    int32_t *l32 = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(l32);
    for (int64_t i = 0; i < n; i++) l32[i] = (int32_t)lab[i];
    supcon_tensor *t = make_tensor(SUPCON_INT32, 1, shape, l32);
    free(l32);
    return t;
}

static int parse_enum(const char *s, const char *a, const char *b, const char *c) {
    assert_non_null(s);
    if (a && strcmp(s, a) == 0) return 0;
    if (b && strcmp(s, b) == 0) return 1;
    if (c && strcmp(s, c) == 0) return 2;
    fail_msg("unknown enum value '%s' in fixture", s);
    return -1;
}

static void read_config(const tu_fixture *fx, supcon_loss_config *cfg, loss_ref_config *rc) {
    *cfg = supcon_loss_config_default();
    cfg->temperature = (float)tu_fixture_double(fx, "temperature", NAN);
    cfg->base_temperature = (float)tu_fixture_double(fx, "base_temperature", NAN);
    const char *mode = tu_fixture_str(fx, "mode");
    cfg->contrast_mode = mode ? (supcon_contrast_mode)parse_enum(mode, "all", "one", NULL)
                              : SUPCON_CONTRAST_ALL;
    cfg->denominator = (supcon_loss_denominator)parse_enum(
        tu_fixture_str(fx, "denominator"), "all", "positive", "negatives");
    cfg->aggregation =
        (supcon_loss_aggregation)parse_enum(tu_fixture_str(fx, "aggregation"), "out", "in", NULL);
    rc->temperature = tu_fixture_double(fx, "temperature", NAN);
    rc->base_temperature = tu_fixture_double(fx, "base_temperature", NAN);
    rc->contrast_mode = (int)cfg->contrast_mode;
    rc->denominator = (int)cfg->denominator;
    rc->aggregation = (int)cfg->aggregation;
    assert_true(cfg->temperature > 0 && cfg->base_temperature > 0);
}

/* Reads count values of key, failing the test when the fixture does not hold exactly that. */
static float *need_floats(const tu_fixture *fx, const char *key, int64_t count) {
    assert_int_equal(tu_fixture_count(fx, key), count);
    float *x = malloc(sizeof(float) * (size_t)(count > 0 ? count : 1));
    assert_non_null(x);
    assert_int_equal(tu_fixture_floats(fx, key, x, count), count);
    return x;
}
static double *need_doubles(const tu_fixture *fx, const char *key, int64_t count) {
    assert_int_equal(tu_fixture_count(fx, key), count);
    double *x = malloc(sizeof(double) * (size_t)(count > 0 ? count : 1));
    assert_non_null(x);
    assert_int_equal(tu_fixture_doubles(fx, key, x, count), count);
    return x;
}
static int64_t *need_ints(const tu_fixture *fx, const char *key, int64_t count) {
    assert_int_equal(tu_fixture_count(fx, key), count);
    int64_t *x = malloc(sizeof(int64_t) * (size_t)(count > 0 ? count : 1));
    assert_non_null(x);
    assert_int_equal(tu_fixture_ints(fx, key, x, count), count);
    return x;
}

static void check_loss(const char *name, const char *who, double got, double want, double tol) {
    double e = tu_rel_err(got, want, 1e-6);
    if (!(e <= tol)) fail_msg("%s: %s loss %.9g, PyTorch %.9g (rel err %.3g > %g)", name, who, got, want, e, tol);
}

static void check_grad_f(const char *name, const char *what, const float *got,
                         const double *want, int64_t n, double tol) {
    double e = tu_rel_norm_err_fd(got, want, n, 1e-12);
    if (!(e <= tol)) fail_msg("%s: library %s rel err %.3g > %g", name, what, e, tol);
}

static void check_grad_d(const char *name, const char *what, const double *got,
                         const double *want, int64_t n, double tol) {
    double e = tu_rel_norm_err_dd(got, want, n, 1e-12);
    if (!(e <= tol)) fail_msg("%s: reference %s rel err %.3g > %g", name, what, e, tol);
}

static void run_batch(const tu_fixture *fx, const fixture_case *fc) {
    const char *name = fc->name;
    supcon_loss_config cfg;
    loss_ref_config rc;
    read_config(fx, &cfg, &rc);
    const int64_t b = tu_fixture_int(fx, "B", -1), v = tu_fixture_int(fx, "V", -1),
                  d = tu_fixture_int(fx, "D", -1);
    assert_true(b > 0 && v > 0 && d > 0);
    const int64_t n = b * v * d;
    int64_t shape[SUPCON_MAX_DIMS] = {b, v, d};
    int ndim = 3;
    if (tu_fixture_has(fx, "feature_dims")) {
        int64_t dims[1 + SUPCON_MAX_DIMS];
        int64_t cnt = tu_fixture_count(fx, "feature_dims");
        assert_true(cnt >= 4 && cnt <= 1 + SUPCON_MAX_DIMS);
        assert_int_equal(tu_fixture_ints(fx, "feature_dims", dims, cnt), cnt);
        ndim = (int)dims[0];
        assert_int_equal(ndim, cnt - 1);
        int64_t prod = 1;
        for (int i = 0; i < ndim; i++) shape[i] = dims[1 + i], prod *= dims[1 + i];
        assert_int_equal(prod, n);
    }
    const char *positives = tu_fixture_str(fx, "positives");
    assert_non_null(positives);
    const double tol_grad = cfg.temperature <= 0.01f ? 1e-4 : 1e-5;

    float *feat = need_floats(fx, "features", n);
    double *want_grad = need_doubles(fx, "grad", n);
    const double want_loss = tu_fixture_double(fx, "loss", NAN);
    assert_true(isfinite(want_loss));
    int64_t *labels = NULL;
    float *mask = NULL;
    double *mask_d = NULL;
    if (strcmp(positives, "labels") == 0) {
        labels = need_ints(fx, "labels", b);
    } else if (strcmp(positives, "mask") == 0) {
        mask = need_floats(fx, "mask", b * b);
        mask_d = malloc(sizeof(double) * (size_t)(b * b));
        assert_non_null(mask_d);
        for (int64_t i = 0; i < b * b; i++) mask_d[i] = mask[i];
    } else {
        assert_string_equal(positives, "none");
    }

    /* the double reference agrees with PyTorch */
    double *feat_d = malloc(sizeof(double) * (size_t)n), *ref_grad = malloc(sizeof(double) * (size_t)n);
    assert_non_null(feat_d);
    assert_non_null(ref_grad);
    for (int64_t i = 0; i < n; i++) feat_d[i] = feat[i];
    double ref_loss = loss_ref_batch(&rc, feat_d, b, v, d, labels, mask_d, ref_grad);
    check_loss(name, "reference", ref_loss, want_loss, 1e-10);
    check_grad_d(name, "gradient", ref_grad, want_grad, n, 1e-9);

    /* the library agrees with PyTorch */
    supcon_loss *loss = NULL;
    assert_int_equal(supcon_loss_create(g_ctx, &cfg, &loss), SUPCON_OK);
    supcon_tensor *tf = make_tensor(SUPCON_FLOAT32, ndim, shape, feat);
    supcon_tensor *tl = labels ? make_labels(labels, b, fc->index % 2) : NULL;
    int64_t mshape[2] = {b, b};
    supcon_tensor *tm = mask ? make_tensor(SUPCON_FLOAT32, 2, mshape, mask) : NULL;
    supcon_tensor *tg = make_tensor(SUPCON_FLOAT32, ndim, shape, NULL);
    float value = NAN;
    supcon_status s = supcon_loss_forward(loss, tf, tl, tm, &value);
    if (s != SUPCON_OK) fail_msg("%s: forward: %s", name, supcon_context_last_error(g_ctx));
    check_loss(name, "library", value, want_loss, 1e-5);
    s = supcon_loss_backward(loss, tg);
    if (s != SUPCON_OK) fail_msg("%s: backward: %s", name, supcon_context_last_error(g_ctx));
    float *got = malloc(sizeof(float) * (size_t)n);
    assert_non_null(got);
    assert_int_equal(supcon_tensor_download(tg, got, sizeof(float) * (size_t)n), SUPCON_OK);
    check_grad_f(name, "gradient", got, want_grad, n, tol_grad);

    /* a second call on the same object (workspaces reused) gives the same value */
    float value2 = NAN;
    assert_int_equal(supcon_loss_forward(loss, tf, tl, tm, &value2), SUPCON_OK);
    check_loss(name, "library (repeat)", value2, want_loss, 1e-5);

    supcon_tensor_free(tf);
    supcon_tensor_free(tl);
    supcon_tensor_free(tm);
    supcon_tensor_free(tg);
    supcon_loss_free(loss);
    free(feat), free(want_grad), free(labels), free(mask), free(mask_d), free(feat_d);
    free(ref_grad), free(got);
}

static void run_pair(const tu_fixture *fx, const fixture_case *fc) {
    const char *name = fc->name;
    supcon_loss_config cfg;
    loss_ref_config rc;
    read_config(fx, &cfg, &rc);
    const int64_t na = tu_fixture_int(fx, "NA", -1), nc = tu_fixture_int(fx, "NC", -1),
                  d = tu_fixture_int(fx, "D", -1);
    const int same = (int)tu_fixture_int(fx, "same_tensor", -1);
    assert_true(na > 0 && nc > 0 && d > 0 && (same == 0 || same == 1));
    if (same) assert_int_equal(na, nc);
    const double tol_grad = cfg.temperature <= 0.01f ? 1e-4 : 1e-5;

    float *a = need_floats(fx, "anchors", na * d);
    float *c = need_floats(fx, "contrast", nc * d);
    int64_t *la = need_ints(fx, "anchor_labels", na);
    int64_t *lc = need_ints(fx, "contrast_labels", nc);
    double *want_ga = need_doubles(fx, "grad_anchors", na * d);
    double *want_gc = need_doubles(fx, "grad_contrast", nc * d);
    const double want_loss = tu_fixture_double(fx, "loss", NAN);
    assert_true(isfinite(want_loss));

    /* reference vs PyTorch */
    double *ad = malloc(sizeof(double) * (size_t)(na * d)), *cd = malloc(sizeof(double) * (size_t)(nc * d));
    double *rga = malloc(sizeof(double) * (size_t)(na * d)), *rgc = malloc(sizeof(double) * (size_t)(nc * d));
    assert_true(ad && cd && rga && rgc);
    for (int64_t i = 0; i < na * d; i++) ad[i] = a[i];
    for (int64_t i = 0; i < nc * d; i++) cd[i] = c[i];
    double ref_loss = loss_ref_pair(&rc, ad, la, na, cd, lc, nc, d, same, rga, rgc);
    check_loss(name, "reference", ref_loss, want_loss, 1e-10);
    check_grad_d(name, "anchor gradient", rga, want_ga, na * d, 1e-9);
    check_grad_d(name, "contrast gradient", rgc, want_gc, nc * d, 1e-9);

    /* library vs PyTorch */
    supcon_loss *loss = NULL;
    assert_int_equal(supcon_loss_create(g_ctx, &cfg, &loss), SUPCON_OK);
    int64_t sa[2] = {na, d}, sc[2] = {nc, d};
    supcon_tensor *ta = make_tensor(SUPCON_FLOAT32, 2, sa, a);
    supcon_tensor *tla = make_labels(la, na, fc->index % 2);
    supcon_tensor *tc = same ? ta : make_tensor(SUPCON_FLOAT32, 2, sc, c);
    supcon_tensor *tlc = same ? tla : make_labels(lc, nc, (fc->index + 1) % 2);
    supcon_tensor *tga = make_tensor(SUPCON_FLOAT32, 2, sa, NULL);
    supcon_tensor *tgc = make_tensor(SUPCON_FLOAT32, 2, sc, NULL);
    float value = NAN;
    supcon_status s = supcon_loss_forward_pair(loss, ta, tla, tc, tlc, &value);
    if (s != SUPCON_OK) fail_msg("%s: forward_pair: %s", name, supcon_context_last_error(g_ctx));
    check_loss(name, "library", value, want_loss, 1e-5);
    s = supcon_loss_backward_pair(loss, tga, tgc);
    if (s != SUPCON_OK) fail_msg("%s: backward_pair: %s", name, supcon_context_last_error(g_ctx));
    float *ga = malloc(sizeof(float) * (size_t)(na * d)), *gc = malloc(sizeof(float) * (size_t)(nc * d));
    assert_true(ga && gc);
    assert_int_equal(supcon_tensor_download(tga, ga, sizeof(float) * (size_t)(na * d)), SUPCON_OK);
    assert_int_equal(supcon_tensor_download(tgc, gc, sizeof(float) * (size_t)(nc * d)), SUPCON_OK);
    check_grad_f(name, "anchor gradient", ga, want_ga, na * d, tol_grad);
    check_grad_f(name, "contrast gradient", gc, want_gc, nc * d, tol_grad);

    /* only one of the two gradients asked for: each alone is the same as before */
    memset(gc, 0, sizeof(float) * (size_t)(nc * d));
    assert_int_equal(supcon_tensor_upload(tgc, gc, sizeof(float) * (size_t)(nc * d)), SUPCON_OK);
    s = supcon_loss_backward_pair(loss, NULL, tgc);
    if (s != SUPCON_OK) fail_msg("%s: backward_pair(NULL, c): %s", name, supcon_context_last_error(g_ctx));
    assert_int_equal(supcon_tensor_download(tgc, gc, sizeof(float) * (size_t)(nc * d)), SUPCON_OK);
    check_grad_f(name, "contrast gradient (anchors not asked)", gc, want_gc, nc * d, tol_grad);
    memset(ga, 0, sizeof(float) * (size_t)(na * d));
    assert_int_equal(supcon_tensor_upload(tga, ga, sizeof(float) * (size_t)(na * d)), SUPCON_OK);
    s = supcon_loss_backward_pair(loss, tga, NULL);
    if (s != SUPCON_OK) fail_msg("%s: backward_pair(a, NULL): %s", name, supcon_context_last_error(g_ctx));
    assert_int_equal(supcon_tensor_download(tga, ga, sizeof(float) * (size_t)(na * d)), SUPCON_OK);
    check_grad_f(name, "anchor gradient (contrast not asked)", ga, want_ga, na * d, tol_grad);

    if (!same) {
        supcon_tensor_free(tc);
        supcon_tensor_free(tlc);
    }
    supcon_tensor_free(ta);
    supcon_tensor_free(tla);
    supcon_tensor_free(tga);
    supcon_tensor_free(tgc);
    supcon_loss_free(loss);
    free(a), free(c), free(la), free(lc), free(want_ga), free(want_gc);
    free(ad), free(cd), free(rga), free(rgc), free(ga), free(gc);
}

static void test_fixture(void **state) {
    const fixture_case *fc = (const fixture_case *)*state;
    tu_fixture fx;
    if (tu_fixture_load(&fx, fc->path) != 0) fail_msg("cannot read %s", fc->path);
    const char *kind = tu_fixture_str(&fx, "kind");
    assert_non_null(kind);
    if (strcmp(kind, "batch") == 0)
        run_batch(&fx, fc);
    else if (strcmp(kind, "pair") == 0)
        run_pair(&fx, fc);
    else
        fail_msg("%s: unknown kind '%s'", fc->name, kind);
    tu_fixture_free(&fx);
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int main(void) {
    const char *dir = SUPCON_TEST_FIXTURES;
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "cannot open fixtures folder %s\n", dir);
        return 1;
    }
    char *names[MAX_FIXTURES];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "loss_", 5) != 0 || len < 9 ||
            strcmp(de->d_name + len - 4, ".txt") != 0)
            continue;
        if (count == MAX_FIXTURES) break;
        names[count] = malloc(len + 1);
        if (!names[count]) return 1;
        memcpy(names[count], de->d_name, len + 1);
        count++;
    }
    closedir(dp);
    if (count == 0) {
        fprintf(stderr, "no loss_*.txt fixtures found in %s\n", dir);
        return 1;
    }
    qsort(names, (size_t)count, sizeof(char *), cmp_str);

    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = 2;
    if (supcon_context_create(&cc, &g_ctx) != SUPCON_OK) {
        fprintf(stderr, "context_create: %s\n", supcon_context_last_error(NULL));
        return 1;
    }

    fixture_case *cases = calloc((size_t)count, sizeof(fixture_case));
    struct CMUnitTest *tests = calloc((size_t)count, sizeof(struct CMUnitTest));
    if (!cases || !tests) return 1;
    for (int i = 0; i < count; i++) {
        snprintf(cases[i].path, sizeof cases[i].path, "%s/%s", dir, names[i]);
        cases[i].name = names[i];
        cases[i].index = i;
        tests[i].name = names[i];
        tests[i].test_func = test_fixture;
        tests[i].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests("loss_fixtures", tests, (size_t)count, NULL, NULL);

    supcon_context_free(g_ctx);
    for (int i = 0; i < count; i++) free(names[i]);
    free(cases);
    free(tests);
    return failed ? 1 : 0;
}
