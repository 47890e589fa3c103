/* Profiling (supcon_context_set_profiling, supcon_context_profile) on the CPU: one SupCon
 * training step of a small ResNet-18 is counted call by call — 20 convolutions forward and
 * their filter gradients, 19 data gradients (the input's is not asked for), 20 batch norms
 * each way (17 forward and 9 backward fused with their ReLU), one loss with gradients, one
 * SGD update — the times are positive and add up to no more than the step's wall time,
 * switching off freezes the counts, switching on again starts empty. Plus every misuse.
 * Public API only. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <supcon/supcon.h>

#include "test_expect_err.h"

#define B 2 /* samples, two views each */
#define FEAT 8
#define SIDE 8

typedef struct step_rig {
    supcon_context *ctx;
    supcon_model *model;
    supcon_loss *loss;
    supcon_sgd *opt;
    supcon_tensor *x, *feats, *labels, *gfeats, *ghead;
} step_rig;

static supcon_tensor *mk(supcon_context *ctx, supcon_dtype dt, int ndim, const int64_t *shape) {
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(ctx, dt, ndim, shape, &t), SUPCON_OK);
    return t;
}

static void rig_open(step_rig *r) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = 1;
    assert_int_equal(supcon_context_create(&cc, &r->ctx), SUPCON_OK);
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = 4;
    mc.head = SUPCON_HEAD_MLP;
    mc.feat_dim = FEAT;
    assert_int_equal(supcon_model_create(r->ctx, &mc, &r->model), SUPCON_OK);
    assert_int_equal(supcon_loss_create(r->ctx, NULL, &r->loss), SUPCON_OK);
    assert_int_equal(supcon_sgd_create(r->ctx, NULL, &r->opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_model(r->opt, 0, r->model, NULL, 0), SUPCON_OK);
    const int64_t xs[4] = {2 * B, 3, SIDE, SIDE}, fs[3] = {B, 2, FEAT}, ls[1] = {B}, hs[2] = {2 * B, FEAT};
    r->x = mk(r->ctx, SUPCON_FLOAT32, 4, xs);
    r->feats = mk(r->ctx, SUPCON_FLOAT32, 3, fs);
    r->gfeats = mk(r->ctx, SUPCON_FLOAT32, 3, fs);
    r->ghead = mk(r->ctx, SUPCON_FLOAT32, 2, hs);
    r->labels = mk(r->ctx, SUPCON_INT64, 1, ls);
    float *px = supcon_tensor_data(r->x);
    for (int64_t i = 0; i < supcon_tensor_numel(r->x); i++) px[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    int64_t *pl = supcon_tensor_data(r->labels);
    for (int i = 0; i < B; i++) pl[i] = i % 2;
}

static void rig_close(step_rig *r) {
    supcon_tensor_free(r->x), supcon_tensor_free(r->feats), supcon_tensor_free(r->gfeats);
    supcon_tensor_free(r->ghead), supcon_tensor_free(r->labels);
    supcon_sgd_free(r->opt);
    supcon_loss_free(r->loss);
    supcon_model_free(r->model);
    supcon_context_free(r->ctx);
}

/* Rows of the head output are view-major (view v of sample i at row v B + i); the loss takes
 * [B, V, D]. On the CPU the tensors are host memory. */
static void rig_step(step_rig *r) {
    assert_int_equal(supcon_model_zero_grad(r->model), SUPCON_OK);
    assert_int_equal(supcon_model_forward(r->model, r->x), SUPCON_OK);
    const float *z = supcon_tensor_data((supcon_tensor *)supcon_model_head_output(r->model));
    float *f = supcon_tensor_data(r->feats), *gf = supcon_tensor_data(r->gfeats), *gh = supcon_tensor_data(r->ghead);
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < B; i++) memcpy(f + (i * 2 + v) * FEAT, z + (v * B + i) * FEAT, FEAT * sizeof(float));
    float value = 0.0f;
    assert_int_equal(supcon_loss_forward(r->loss, r->feats, r->labels, NULL, &value), SUPCON_OK);
    assert_int_equal(supcon_loss_backward(r->loss, r->gfeats), SUPCON_OK);
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < B; i++) memcpy(gh + (v * B + i) * FEAT, gf + (i * 2 + v) * FEAT, FEAT * sizeof(float));
    assert_int_equal(supcon_model_backward(r->model, r->ghead, NULL, NULL), SUPCON_OK);
    assert_int_equal(supcon_sgd_step(r->opt), SUPCON_OK);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define MAX_ENTRIES 256

/* Calls under names that start with prefix. */
static int64_t calls_with_prefix(const supcon_profile_entry *e, int64_t n, const char *prefix) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        if (strncmp(e[i].name, prefix, strlen(prefix)) == 0) c += e[i].calls;
    return c;
}

static int64_t calls_of(const supcon_profile_entry *e, int64_t n, const char *name) {
    for (int64_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0) return e[i].calls;
    return -1;
}

static void test_one_step_counted(void **st) {
    (void)st;
    step_rig r;
    rig_open(&r);
    rig_step(&r); /* plans the arena: the counted step is a steady one */
    int64_t n = -1;
    assert_int_equal(supcon_context_profile(r.ctx, NULL, 0, &n), SUPCON_OK);
    assert_int_equal(n, 0); /* never switched on */

    assert_int_equal(supcon_context_set_profiling(r.ctx, 1), SUPCON_OK);
    const double t0 = now();
    rig_step(&r);
    const double wall = now() - t0;
    supcon_profile_entry e[MAX_ENTRIES];
    assert_int_equal(supcon_context_profile(r.ctx, e, MAX_ENTRIES, &n), SUPCON_OK);
    assert_true(n > 10 && n < MAX_ENTRIES);

    assert_int_equal(calls_with_prefix(e, n, "conv2d forward "), 20);
    assert_int_equal(calls_with_prefix(e, n, "conv2d backward (filter) "), 20);
    assert_int_equal(calls_with_prefix(e, n, "conv2d backward (data) "), 19);
    /* the CPU fuses the ReLU (and the residual add) into 17 of the 20 batch norms: all but
     * the three shortcuts'; backward, the ReLUs inside the blocks and the stem's (9) */
    assert_int_equal(calls_with_prefix(e, n, "batchnorm+relu forward"), 17);
    assert_int_equal(calls_with_prefix(e, n, "batchnorm forward"), 3);
    assert_int_equal(calls_with_prefix(e, n, "batchnorm+relu backward"), 9);
    assert_int_equal(calls_with_prefix(e, n, "batchnorm backward"), 11);
    assert_int_equal(calls_with_prefix(e, n, "add+relu forward"), 0);
    assert_int_equal(calls_with_prefix(e, n, "relu backward"), 8); /* the blocks' outputs */
    /* layer1's four 3x3 convolutions share one shape; the stem has its own */
    assert_int_equal(calls_of(e, n, "conv2d forward 4x8x8 -> 4 k3 s1"), 4);
    assert_int_equal(calls_of(e, n, "conv2d forward 3x8x8 -> 4 k3 s1"), 1);
    assert_int_equal(calls_of(e, n, "conv2d forward 4x8x8 -> 8 k1 s2"), 1); /* layer2's shortcut */
    assert_int_equal(calls_of(e, n, "supcon loss with gradients"), 1);
    assert_int_equal(calls_of(e, n, "sgd update"), 1);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        assert_true(e[i].calls > 0);
        assert_true(e[i].seconds >= 0.0);
        assert_non_null(e[i].name);
        total += e[i].seconds;
    }
    if (!(total > 0.0 && total <= wall))
        fail_msg("profiled calls took %.6f s in all, the step %.6f s", total, wall);

    /* a short buffer: the first entries, and the full count */
    supcon_profile_entry two[2];
    int64_t n2 = -1;
    assert_int_equal(supcon_context_profile(r.ctx, two, 2, &n2), SUPCON_OK);
    assert_int_equal(n2, n);
    assert_string_equal(two[0].name, e[0].name);
    assert_string_equal(two[1].name, e[1].name);

    /* off: counts stay */
    assert_int_equal(supcon_context_set_profiling(r.ctx, 0), SUPCON_OK);
    rig_step(&r);
    assert_int_equal(supcon_context_profile(r.ctx, e, MAX_ENTRIES, &n2), SUPCON_OK);
    assert_int_equal(n2, n);
    assert_int_equal(calls_of(e, n, "sgd update"), 1);
    /* on again: empty, then counting afresh */
    assert_int_equal(supcon_context_set_profiling(r.ctx, 1), SUPCON_OK);
    assert_int_equal(supcon_context_profile(r.ctx, e, MAX_ENTRIES, &n2), SUPCON_OK);
    assert_int_equal(n2, 0);
    rig_step(&r);
    assert_int_equal(supcon_context_profile(r.ctx, e, MAX_ENTRIES, &n2), SUPCON_OK);
    assert_int_equal(n2, n);
    assert_int_equal(calls_of(e, n2, "sgd update"), 1);
    rig_close(&r);
}

static void test_misuse(void **st) {
    (void)st;
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cc, &ctx), SUPCON_OK);
    EXPECT_ERR(supcon_context_set_profiling(NULL, 1), SUPCON_ERR_INVALID_ARGUMENT, NULL, "ctx");
    EXPECT_ERR(supcon_context_set_profiling(ctx, 2), SUPCON_ERR_INVALID_ARGUMENT, ctx, "on");
    int64_t n = 0;
    supcon_profile_entry e[1];
    EXPECT_ERR(supcon_context_profile(NULL, e, 1, &n), SUPCON_ERR_INVALID_ARGUMENT, NULL, "ctx");
    EXPECT_ERR(supcon_context_profile(ctx, e, 1, NULL), SUPCON_ERR_INVALID_ARGUMENT, ctx, "count");
    EXPECT_ERR(supcon_context_profile(ctx, e, -1, &n), SUPCON_ERR_INVALID_ARGUMENT, ctx, "capacity");
    EXPECT_ERR(supcon_context_profile(ctx, NULL, 3, &n), SUPCON_ERR_INVALID_ARGUMENT, ctx, "entries");
    /* off without ever being on is fine, and leaves nothing */
    assert_int_equal(supcon_context_set_profiling(ctx, 0), SUPCON_OK);
    assert_int_equal(supcon_context_profile(ctx, e, 1, &n), SUPCON_OK);
    assert_int_equal(n, 0);
    supcon_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_step_counted),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
