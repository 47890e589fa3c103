/* Every misuse documented in include/supcon/{core,tensor,loss}.h: the documented status,
 * and a last-error message that is not empty and names what was wrong. Also the
 * state machine of forward/backward, and free(NULL) of every handle type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supcon/loss.h"
#include "supcon/tensor.h"
#include "test_cmocka_context.h"
#include "test_util.h"
#include "test_expect_err.h"

enum { B = 4, V = 2, D = 8 };


static supcon_tensor *tensor(supcon_context *ctx, supcon_dtype dt, int ndim, const int64_t *shape,
                             const void *data) {
    supcon_tensor *t = NULL;
    if (supcon_tensor_create(ctx, dt, ndim, shape, &t) != SUPCON_OK)
        fail_msg("tensor_create: %s", supcon_context_last_error(ctx));
    if (data && supcon_tensor_upload(t, data, supcon_tensor_bytes(t)) != SUPCON_OK)
        fail_msg("tensor_upload: %s", supcon_context_last_error(ctx));
    return t;
}

static supcon_tensor *features(supcon_context *ctx, uint64_t seed) {
    float x[B * V * D];
    tu_rng r = tu_rng_seed(seed);
    tu_fill_rows(&r, x, B * V, D, 1);
    int64_t shape[3] = {B, V, D};
    return tensor(ctx, SUPCON_FLOAT32, 3, shape, x);
}

static supcon_tensor *labels(supcon_context *ctx, supcon_dtype dt, int64_t n) {
    int64_t shape[1] = {n};
    if (dt == SUPCON_INT64) {
        int64_t l[64];
        for (int64_t i = 0; i < n; i++) l[i] = i % 2;
        return tensor(ctx, dt, 1, shape, l);
    }
    if (dt == SUPCON_INT32) {
        int32_t l[64];
        for (int64_t i = 0; i < n; i++) l[i] = (int32_t)(i % 2);
        return tensor(ctx, dt, 1, shape, l);
    }
    float l[64];
    for (int64_t i = 0; i < n; i++) l[i] = (float)(i % 2);
    return tensor(ctx, dt, 1, shape, l);
}

static supcon_loss *make_loss(supcon_context *ctx, int forward_only) {
    supcon_loss_config cfg = supcon_loss_config_default();
    cfg.forward_only = forward_only;
    supcon_loss *l = NULL;
    if (supcon_loss_create(ctx, &cfg, &l) != SUPCON_OK)
        fail_msg("loss_create: %s", supcon_context_last_error(ctx));
    return l;
}

/* ---- context ----------------------------------------------------------------------------- */

static void test_context_misuse(void **state) {
    (void)state;
    supcon_context_config cc = supcon_context_config_default();
    supcon_context *c = (supcon_context *)&cc; /* sentinel: must be set to NULL */
    EXPECT_ERR(supcon_context_create(&cc, NULL), SUPCON_ERR_INVALID_ARGUMENT, NULL, "out");

    cc.struct_size = 0;
    EXPECT_ERR(supcon_context_create(&cc, &c), SUPCON_ERR_INVALID_ARGUMENT, NULL, "struct_size");
    assert_null(c);

    cc = supcon_context_config_default();
    cc.backend = (supcon_backend_kind)9;
    c = (supcon_context *)&cc;
    EXPECT_ERR(supcon_context_create(&cc, &c), SUPCON_ERR_INVALID_ARGUMENT, NULL, "backend");
    assert_null(c);

    cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = -1;
    EXPECT_ERR(supcon_context_create(&cc, &c), SUPCON_ERR_INVALID_ARGUMENT, NULL, "num_threads");
    assert_null(c);

    /* a fresh context has no error yet */
    cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    assert_int_equal(supcon_context_create(&cc, &c), SUPCON_OK);
    assert_non_null(c);
    assert_string_equal(supcon_context_last_error(c), "");
    assert_int_equal(supcon_context_backend(c), SUPCON_BACKEND_CPU);
    assert_string_equal(supcon_context_backend_name(c), "cpu");
    supcon_context_free(c);
}

static void test_cuda_unavailable(void **state) {
    (void)state;
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CUDA;
    supcon_context *c = (supcon_context *)&cc;
    supcon_status s = supcon_context_create(&cc, &c);
    if (s == SUPCON_OK) {
        /* only acceptable where a GPU really is present */
        int gpu = access("/dev/nvidia0", F_OK) == 0 || access("/dev/nvidiactl", F_OK) == 0;
        supcon_context_free(c);
        if (!gpu) fail_msg("CUDA context created on a machine without /dev/nvidia*");
        print_message("[  SKIPPED ] a CUDA device is present: ERR_BACKEND_UNAVAILABLE not checked\n");
        return;
    }
    EXPECT_ERR(s, SUPCON_ERR_BACKEND_UNAVAILABLE, NULL, "cuda");
    assert_null(c);
}

static void test_free_null(void **state) {
    (void)state;
    size_t before = supcon_context_bytes_in_use(g_ctx);
    supcon_context_free(NULL);
    supcon_tensor_free(NULL);
    supcon_loss_free(NULL);
    /* reaching here is most of the test; nothing was released from a live context either */
    assert_int_equal(supcon_context_bytes_in_use(g_ctx), before);
}

/* ---- tensors -------------------------------------------------------------------------------- */

static void test_tensor_misuse(void **state) {
    (void)state;
    int64_t shape[2] = {3, 4};
    supcon_tensor *t = (supcon_tensor *)shape;
    EXPECT_ERR(supcon_tensor_create(NULL, SUPCON_FLOAT32, 2, shape, &t), SUPCON_ERR_INVALID_ARGUMENT,
               NULL, "ctx");
    assert_null(t);
    EXPECT_ERR(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, shape, NULL), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "out");
    EXPECT_ERR(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, -1, shape, &t), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "ndim");
    int64_t big[SUPCON_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_ERR(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, SUPCON_MAX_DIMS + 1, big, &t),
               SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "ndim");
    int64_t neg[2] = {3, -4};
    EXPECT_ERR(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, neg, &t), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "shape");
    int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    EXPECT_ERR(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, huge, &t), SUPCON_ERR_INVALID_ARGUMENT,
               g_ctx, "overflow");
    EXPECT_ERR(supcon_tensor_create(g_ctx, (supcon_dtype)7, 2, shape, &t), SUPCON_ERR_DTYPE, g_ctx,
               "dtype");
    assert_null(t);

    /* device memory cannot be wrapped by the CPU backend */
    float host[12];
    EXPECT_ERR(supcon_tensor_wrap(g_ctx, SUPCON_FLOAT32, 2, shape, host, SUPCON_MEMORY_DEVICE, &t),
               SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "device");
    assert_null(t);

    /* copies must be of exactly the tensor's size */
    t = tensor(g_ctx, SUPCON_FLOAT32, 2, shape, NULL);
    float buf[13] = {0};
    EXPECT_ERR(supcon_tensor_upload(t, buf, sizeof(float) * 13), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "bytes");
    EXPECT_ERR(supcon_tensor_upload(t, buf, sizeof(float) * 11), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "bytes");
    EXPECT_ERR(supcon_tensor_download(t, buf, sizeof(float) * 13), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "bytes");
    EXPECT_ERR(supcon_tensor_download(t, buf, 0), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "bytes");
    EXPECT_ERR(supcon_tensor_upload(t, NULL, sizeof(float) * 12), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "src");
    EXPECT_ERR(supcon_tensor_download(t, NULL, sizeof(float) * 12), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "dst");
    EXPECT_ERR(supcon_tensor_upload(NULL, buf, 4), SUPCON_ERR_INVALID_ARGUMENT, NULL, "tensor");
    EXPECT_ERR(supcon_tensor_download(NULL, buf, 4), SUPCON_ERR_INVALID_ARGUMENT, NULL, "tensor");
    supcon_tensor_free(t);
}

/* ---- loss creation -------------------------------------------------------------------------- */

static void expect_bad_config(const supcon_loss_config *cfg, const char *word, int line) {
    supcon_loss *l = (supcon_loss *)g_ctx; /* sentinel */
    supcon_status s = supcon_loss_create(g_ctx, cfg, &l);
    const char *const words[] = {word, NULL};
    expect_err_(s, SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "supcon_loss_create(bad config)", line, words);
    if (l != NULL) fail_msg("line %d: *out not NULL after a failed supcon_loss_create", line);
}

static void test_loss_create_misuse(void **state) {
    (void)state;
    supcon_loss *l = (supcon_loss *)g_ctx;
    EXPECT_ERR(supcon_loss_create(NULL, NULL, &l), SUPCON_ERR_INVALID_ARGUMENT, NULL, "ctx");
    assert_null(l);
    EXPECT_ERR(supcon_loss_create(g_ctx, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "out");

    supcon_loss_config cfg;
#define BAD(field, val, word)                                                                 \
    do {                                                                                      \
        cfg = supcon_loss_config_default();                                                   \
        cfg.field = val;                                                                      \
        expect_bad_config(&cfg, word, __LINE__);                                              \
    } while (0)
    BAD(struct_size, 0, "struct_size");
    BAD(temperature, 0.0f, "temperature");
    BAD(temperature, -0.1f, "temperature");
    BAD(temperature, NAN, "temperature");
    BAD(temperature, INFINITY, "temperature");
    BAD(base_temperature, 0.0f, "base_temperature");
    BAD(base_temperature, NAN, "base_temperature");
    BAD(base_temperature, -1.0f, "base_temperature");
    BAD(contrast_mode, (supcon_contrast_mode)2, "contrast_mode");
    BAD(contrast_mode, (supcon_contrast_mode)-1, "contrast_mode");
    BAD(denominator, (supcon_loss_denominator)3, "denominator");
    BAD(aggregation, (supcon_loss_aggregation)2, "aggregation");
#undef BAD

    /* defaults and NULL config are accepted */
    supcon_loss_config def = supcon_loss_config_default();
    assert_int_equal(def.struct_size, sizeof(supcon_loss_config));
    assert_true(fabsf(def.temperature - 0.07f) < 1e-7f && fabsf(def.base_temperature - 0.07f) < 1e-7f);
    assert_int_equal(def.contrast_mode, SUPCON_CONTRAST_ALL);
    assert_int_equal(def.denominator, SUPCON_DENOMINATOR_ALL);
    assert_int_equal(def.aggregation, SUPCON_AGGREGATE_OUT);
    assert_int_equal(def.forward_only, 0);
    assert_int_equal(supcon_loss_create(g_ctx, NULL, &l), SUPCON_OK);
    assert_non_null(l);
    supcon_loss_free(l);
}

/* ---- forward ------------------------------------------------------------------------------- */

static void test_forward_misuse(void **state) {
    (void)state;
    supcon_loss *l = make_loss(g_ctx, 0);
    supcon_tensor *f = features(g_ctx, 1);
    supcon_tensor *lab = labels(g_ctx, SUPCON_INT64, B);
    float ones[B * B];
    for (int i = 0; i < B * B; i++) ones[i] = 1.0f;
    int64_t mshape[2] = {B, B};
    supcon_tensor *mask = tensor(g_ctx, SUPCON_FLOAT32, 2, mshape, ones);
    float value = 0;

    EXPECT_ERR(supcon_loss_forward(NULL, f, NULL, NULL, &value), SUPCON_ERR_INVALID_ARGUMENT, NULL, "loss");
    EXPECT_ERR(supcon_loss_forward(l, NULL, NULL, NULL, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "features");
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "value");
    EXPECT_ERR(supcon_loss_forward(l, f, lab, mask, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "labels", "mask");

    /* a tensor of another context */
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = 1;
    supcon_context *other = NULL;
    assert_int_equal(supcon_context_create(&cc, &other), SUPCON_OK);
    supcon_tensor *f_other = features(other, 2);
    supcon_tensor *lab_other = labels(other, SUPCON_INT64, B);
    EXPECT_ERR(supcon_loss_forward(l, f_other, NULL, NULL, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "features", "context");
    EXPECT_ERR(supcon_loss_forward(l, f, lab_other, NULL, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx,
               "labels", "context");
    supcon_tensor_free(f_other);
    supcon_tensor_free(lab_other);
    supcon_context_free(other);

    /* shapes */
    int64_t s2[2] = {B, V * D}, s1[1] = {B * V * D};
    supcon_tensor *f2 = tensor(g_ctx, SUPCON_FLOAT32, 2, s2, NULL);
    supcon_tensor *f1 = tensor(g_ctx, SUPCON_FLOAT32, 1, s1, NULL);
    EXPECT_ERR(supcon_loss_forward(l, f2, NULL, NULL, &value), SUPCON_ERR_SHAPE, g_ctx, "features");
    EXPECT_ERR(supcon_loss_forward(l, f1, NULL, NULL, &value), SUPCON_ERR_SHAPE, g_ctx, "features");
    supcon_tensor_free(f2);
    supcon_tensor_free(f1);
    const int64_t zeros[4][4] = {{0, V, D, 1}, {B, 0, D, 1}, {B, V, 0, 1}, {B, V, D, 0}};
    for (int i = 0; i < 4; i++) {
        supcon_tensor *fz = tensor(g_ctx, SUPCON_FLOAT32, i == 3 ? 4 : 3, zeros[i], NULL);
        EXPECT_ERR(supcon_loss_forward(l, fz, NULL, NULL, &value), SUPCON_ERR_SHAPE, g_ctx, "features");
        supcon_tensor_free(fz);
    }
    int64_t s3[3] = {B, V, D};
    supcon_tensor *fi = tensor(g_ctx, SUPCON_INT32, 3, s3, NULL);
    EXPECT_ERR(supcon_loss_forward(l, fi, NULL, NULL, &value), SUPCON_ERR_DTYPE, g_ctx, "features");
    supcon_tensor_free(fi);

    /* labels */
    supcon_tensor *lab_long = labels(g_ctx, SUPCON_INT64, B + 1);
    supcon_tensor *lab_short = labels(g_ctx, SUPCON_INT32, B - 1);
    supcon_tensor *lab_float = labels(g_ctx, SUPCON_FLOAT32, B);
    EXPECT_ERR(supcon_loss_forward(l, f, lab_long, NULL, &value), SUPCON_ERR_SHAPE, g_ctx, "labels");
    EXPECT_ERR(supcon_loss_forward(l, f, lab_short, NULL, &value), SUPCON_ERR_SHAPE, g_ctx, "labels");
    EXPECT_ERR(supcon_loss_forward(l, f, lab_float, NULL, &value), SUPCON_ERR_DTYPE, g_ctx, "labels");
    supcon_tensor_free(lab_long);
    supcon_tensor_free(lab_short);
    supcon_tensor_free(lab_float);

    /* mask */
    int64_t mwide[2] = {B, B + 1}, mflat[1] = {B * B};
    float mbuf[B * (B + 1)];
    for (int i = 0; i < B * (B + 1); i++) mbuf[i] = 1.0f;
    supcon_tensor *m_wide = tensor(g_ctx, SUPCON_FLOAT32, 2, mwide, mbuf);
    supcon_tensor *m_flat = tensor(g_ctx, SUPCON_FLOAT32, 1, mflat, mbuf);
    supcon_tensor *m_int = tensor(g_ctx, SUPCON_INT32, 2, mshape, NULL);
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, m_wide, &value), SUPCON_ERR_SHAPE, g_ctx, "mask");
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, m_flat, &value), SUPCON_ERR_SHAPE, g_ctx, "mask");
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, m_int, &value), SUPCON_ERR_DTYPE, g_ctx, "mask");
    supcon_tensor_free(m_wide);
    supcon_tensor_free(m_flat);
    supcon_tensor_free(m_int);
    float mb[B * B];
    memcpy(mb, ones, sizeof mb);
    mb[6] = -0.5f;
    assert_int_equal(supcon_tensor_upload(mask, mb, sizeof mb), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, mask, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "mask");
    mb[6] = NAN;
    assert_int_equal(supcon_tensor_upload(mask, mb, sizeof mb), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, mask, &value), SUPCON_ERR_NON_FINITE, g_ctx, "mask");
    mb[6] = INFINITY;
    assert_int_equal(supcon_tensor_upload(mask, mb, sizeof mb), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, mask, &value), SUPCON_ERR_NON_FINITE, g_ctx, "mask");

    /* non-finite features: the message gives the first flat index in the caller's layout
     * ([B, V, D]: index 37 is sample 2, view 0, element 5; view-major it would be 21) */
    float x[B * V * D];
    tu_rng r = tu_rng_seed(3);
    tu_fill_rows(&r, x, B * V, D, 1);
    x[45] = NAN;
    x[37] = NAN;
    assert_int_equal(supcon_tensor_upload(f, x, sizeof x), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, NULL, &value), SUPCON_ERR_NON_FINITE, g_ctx, "features", "37");
    x[45] = x[37] = 0.1f;
    x[50] = INFINITY;
    assert_int_equal(supcon_tensor_upload(f, x, sizeof x), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, lab, NULL, &value), SUPCON_ERR_NON_FINITE, g_ctx, "features", "50");
    x[50] = 0.1f;
    x[63] = -INFINITY;
    assert_int_equal(supcon_tensor_upload(f, x, sizeof x), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward(l, f, lab, NULL, &value), SUPCON_ERR_NON_FINITE, g_ctx, "features", "63");

    supcon_tensor_free(f);
    supcon_tensor_free(lab);
    supcon_tensor_free(mask);
    supcon_loss_free(l);
}

/* ---- backward and the forward/backward state ----------------------------------------------- */

static void test_backward_state(void **state) {
    (void)state;
    supcon_loss *l = make_loss(g_ctx, 0);
    supcon_tensor *f = features(g_ctx, 4);
    int64_t s3[3] = {B, V, D}, swapped[3] = {V, B, D}, wide[3] = {B, V, D + 1};
    supcon_tensor *g = tensor(g_ctx, SUPCON_FLOAT32, 3, s3, NULL);
    supcon_tensor *g_swapped = tensor(g_ctx, SUPCON_FLOAT32, 3, swapped, NULL);
    supcon_tensor *g_wide = tensor(g_ctx, SUPCON_FLOAT32, 3, wide, NULL);
    supcon_tensor *g_int = tensor(g_ctx, SUPCON_INT32, 3, s3, NULL);
    float value = 0;

    EXPECT_ERR(supcon_loss_backward(NULL, g), SUPCON_ERR_INVALID_ARGUMENT, NULL, "loss");
    EXPECT_ERR(supcon_loss_backward(l, g), SUPCON_ERR_STATE, g_ctx, "forward");

    assert_int_equal(supcon_loss_forward(l, f, NULL, NULL, &value), SUPCON_OK);
    EXPECT_ERR(supcon_loss_backward(l, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "grad");
    EXPECT_ERR(supcon_loss_backward(l, g_swapped), SUPCON_ERR_SHAPE, g_ctx, "grad");
    EXPECT_ERR(supcon_loss_backward(l, g_wide), SUPCON_ERR_SHAPE, g_ctx, "grad");
    EXPECT_ERR(supcon_loss_backward(l, g_int), SUPCON_ERR_DTYPE, g_ctx, "grad");
    EXPECT_ERR(supcon_loss_backward_pair(l, g, NULL), SUPCON_ERR_STATE, g_ctx, "pair");
    /* the gradient survives failed backward calls, and can be read twice */
    assert_int_equal(supcon_loss_backward(l, g), SUPCON_OK);
    assert_int_equal(supcon_loss_backward(l, g), SUPCON_OK);

    /* a failed forward discards the gradient */
    EXPECT_ERR(supcon_loss_forward(l, f, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "value");
    EXPECT_ERR(supcon_loss_backward(l, g), SUPCON_ERR_STATE, g_ctx, "forward");
    assert_int_equal(supcon_loss_forward(l, f, NULL, NULL, &value), SUPCON_OK);
    float x[B * V * D];
    assert_int_equal(supcon_tensor_download(f, x, sizeof x), SUPCON_OK);
    x[3] = NAN;
    supcon_tensor *f_nan = tensor(g_ctx, SUPCON_FLOAT32, 3, s3, x);
    EXPECT_ERR(supcon_loss_forward(l, f_nan, NULL, NULL, &value), SUPCON_ERR_NON_FINITE, g_ctx, "features");
    EXPECT_ERR(supcon_loss_backward(l, g), SUPCON_ERR_STATE, g_ctx, "forward");

    /* pair forward, then batch backward */
    int64_t sa[2] = {B * V, D};
    supcon_tensor *a = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, NULL);
    assert_int_equal(supcon_tensor_download(f, x, sizeof x), SUPCON_OK);
    assert_int_equal(supcon_tensor_upload(a, x, sizeof x), SUPCON_OK);
    supcon_tensor *la = labels(g_ctx, SUPCON_INT64, B * V);
    supcon_tensor *ga = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, NULL);
    assert_int_equal(supcon_loss_forward_pair(l, a, la, a, la, &value), SUPCON_OK);
    EXPECT_ERR(supcon_loss_backward(l, g), SUPCON_ERR_STATE, g_ctx, "pair");
    assert_int_equal(supcon_loss_backward_pair(l, ga, NULL), SUPCON_OK);
    EXPECT_ERR(supcon_loss_backward_pair(NULL, ga, NULL), SUPCON_ERR_INVALID_ARGUMENT, NULL, "loss");
    EXPECT_ERR(supcon_loss_backward_pair(l, g, NULL), SUPCON_ERR_SHAPE, g_ctx, "grad_anchors");
    EXPECT_ERR(supcon_loss_backward_pair(l, NULL, g_int), SUPCON_ERR_DTYPE, g_ctx, "grad_contrast");

    /* a fresh loss: pair backward before any forward */
    supcon_loss *l2 = make_loss(g_ctx, 0);
    EXPECT_ERR(supcon_loss_backward_pair(l2, ga, ga), SUPCON_ERR_STATE, g_ctx, "forward");
    supcon_loss_free(l2);

    supcon_tensor_free(a);
    supcon_tensor_free(la);
    supcon_tensor_free(ga);
    supcon_tensor_free(f_nan);
    supcon_tensor_free(f);
    supcon_tensor_free(g);
    supcon_tensor_free(g_swapped);
    supcon_tensor_free(g_wide);
    supcon_tensor_free(g_int);
    supcon_loss_free(l);
}

static void test_forward_only(void **state) {
    (void)state;
    supcon_loss *train = make_loss(g_ctx, 0), *eval = make_loss(g_ctx, 1);
    supcon_tensor *f = features(g_ctx, 5);
    supcon_tensor *lab = labels(g_ctx, SUPCON_INT32, B);
    int64_t s3[3] = {B, V, D};
    supcon_tensor *g = tensor(g_ctx, SUPCON_FLOAT32, 3, s3, NULL);
    float v_train = NAN, v_eval = NAN;
    assert_int_equal(supcon_loss_forward(train, f, lab, NULL, &v_train), SUPCON_OK);
    assert_int_equal(supcon_loss_forward(eval, f, lab, NULL, &v_eval), SUPCON_OK);
    assert_true(isfinite(v_eval) && fabsf(v_eval - v_train) <= 1e-6f * fabsf(v_train));
    EXPECT_ERR(supcon_loss_backward(eval, g), SUPCON_ERR_STATE, g_ctx, "forward_only");

    int64_t sa[2] = {B * V, D};
    float x[B * V * D];
    assert_int_equal(supcon_tensor_download(f, x, sizeof x), SUPCON_OK);
    supcon_tensor *a = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, x);
    supcon_tensor *la = labels(g_ctx, SUPCON_INT64, B * V);
    supcon_tensor *ga = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, NULL);
    assert_int_equal(supcon_loss_forward_pair(eval, a, la, a, la, &v_eval), SUPCON_OK);
    assert_true(isfinite(v_eval));
    EXPECT_ERR(supcon_loss_backward_pair(eval, ga, ga), SUPCON_ERR_STATE, g_ctx, "forward_only");

    supcon_tensor_free(a);
    supcon_tensor_free(la);
    supcon_tensor_free(ga);
    supcon_tensor_free(f);
    supcon_tensor_free(lab);
    supcon_tensor_free(g);
    supcon_loss_free(train);
    supcon_loss_free(eval);
}

static void test_pair_misuse(void **state) {
    (void)state;
    supcon_loss *l = make_loss(g_ctx, 0);
    int64_t sa[2] = {6, D}, sc[2] = {10, D}, sd[2] = {10, D + 1}, s1[1] = {6 * D};
    float xa[6 * D], xc[10 * (D + 1)];
    tu_rng r = tu_rng_seed(6);
    tu_fill_rows(&r, xa, 6, D, 1);
    tu_fill_rows(&r, xc, 10, D + 1, 1);
    supcon_tensor *a = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, xa);
    supcon_tensor *c = tensor(g_ctx, SUPCON_FLOAT32, 2, sc, xc);
    supcon_tensor *c_wide = tensor(g_ctx, SUPCON_FLOAT32, 2, sd, xc);
    supcon_tensor *a_flat = tensor(g_ctx, SUPCON_FLOAT32, 1, s1, xa);
    supcon_tensor *la = labels(g_ctx, SUPCON_INT64, 6), *lc = labels(g_ctx, SUPCON_INT32, 10);
    supcon_tensor *la_bad = labels(g_ctx, SUPCON_INT64, 7), *lc_float = labels(g_ctx, SUPCON_FLOAT32, 10);
    float value = 0;

    EXPECT_ERR(supcon_loss_forward_pair(NULL, a, la, c, lc, &value), SUPCON_ERR_INVALID_ARGUMENT, NULL, "loss");
    EXPECT_ERR(supcon_loss_forward_pair(l, NULL, la, c, lc, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "anchors");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, NULL, lc, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "contrast");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, NULL, c, lc, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "anchor_labels");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, c, NULL, &value), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "contrast_labels");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, c, lc, NULL), SUPCON_ERR_INVALID_ARGUMENT, g_ctx, "value");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, c_wide, lc, &value), SUPCON_ERR_SHAPE, g_ctx, "anchors", "contrast");
    EXPECT_ERR(supcon_loss_forward_pair(l, a_flat, la, c, lc, &value), SUPCON_ERR_SHAPE, g_ctx, "anchors");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la_bad, c, lc, &value), SUPCON_ERR_SHAPE, g_ctx, "anchor_labels");
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, c, lc_float, &value), SUPCON_ERR_DTYPE, g_ctx, "contrast_labels");
    xc[13] = NAN;
    assert_int_equal(supcon_tensor_upload(c, xc, sizeof(float) * 10 * D), SUPCON_OK);
    EXPECT_ERR(supcon_loss_forward_pair(l, a, la, c, lc, &value), SUPCON_ERR_NON_FINITE, g_ctx, "contrast", "13");
    /* after all those failures nothing is ready */
    supcon_tensor *ga = tensor(g_ctx, SUPCON_FLOAT32, 2, sa, NULL);
    EXPECT_ERR(supcon_loss_backward_pair(l, ga, NULL), SUPCON_ERR_STATE, g_ctx, "forward");

    supcon_tensor_free(ga);
    supcon_tensor_free(a);
    supcon_tensor_free(c);
    supcon_tensor_free(c_wide);
    supcon_tensor_free(a_flat);
    supcon_tensor_free(la);
    supcon_tensor_free(lc);
    supcon_tensor_free(la_bad);
    supcon_tensor_free(lc_float);
    supcon_loss_free(l);
}

static int setup(void **state) {
    (void)state;
    return tu_open_cpu_context(2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_misuse),  cmocka_unit_test(test_cuda_unavailable),
        cmocka_unit_test(test_free_null),       cmocka_unit_test(test_tensor_misuse),
        cmocka_unit_test(test_loss_create_misuse), cmocka_unit_test(test_forward_misuse),
        cmocka_unit_test(test_backward_state),  cmocka_unit_test(test_forward_only),
        cmocka_unit_test(test_pair_misuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown) ? 1 : 0;
}
