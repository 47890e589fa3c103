/* The fused batch norm (BN + ReLU, BN + residual + ReLU, and their backward: the
 * batchnorm_relu_* slots of the backend table) gives the same bits as the separate layers.
 * Two CPU contexts with one seed, one with the CPU's table and one with a copy whose fused
 * slots are NULL (the path a backend without them takes, with the reference's order of
 * layers and plan.c's other lean buffer sharing), run the same ResNet-18 and ResNet-50 steps:
 * training forward and backward (the input gradient too), then inference forward in the
 * lean layout and a backward through it, then training again (the running statistics of the
 * first step show there). Every output and gradient must match bit for bit, and profiling
 * must show each context took the path it was meant to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "context_internal.h"
#include "test_model_util.h"

#define N 4 /* images: 2 samples x 2 views */
#define FEAT 8

typedef struct side {
    supcon_context *ctx;
    supcon_backend_ops ops; /* the unfused copy (used by the second side only) */
    supcon_model *m;
    supcon_tensor *x, *gz, *gx;
} side;

static supcon_tensor *filled(supcon_context *ctx, int ndim, const int64_t *shape, uint64_t salt) {
    supcon_tensor *t = tm_filled(ctx, ndim, shape, salt);
    assert_non_null(t);
    return t;
}

static void side_open(side *s, supcon_arch arch, int unfused) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = 2;
    cc.seed = 5;
    assert_int_equal(supcon_context_create(&cc, &s->ctx), SUPCON_OK);
    if (unfused) {
        s->ops = *s->ctx->ops;
        s->ops.batchnorm_relu_forward_train = NULL;
        s->ops.batchnorm_relu_forward_infer = NULL;
        s->ops.batchnorm_relu_backward = NULL;
        s->ctx->ops = &s->ops; /* before any model plans its buffers */
    }
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = arch;
    mc.width = 4;
    mc.head = SUPCON_HEAD_MLP;
    mc.feat_dim = FEAT;
    assert_int_equal(supcon_model_create(s->ctx, &mc, &s->m), SUPCON_OK);
    const int64_t xs[4] = {N, 3, 16, 12}, zs[2] = {N, FEAT};
    s->x = filled(s->ctx, 4, xs, 1);
    s->gz = filled(s->ctx, 2, zs, 2);
    s->gx = filled(s->ctx, 4, xs, 3);
}

static void side_close(side *s) {
    supcon_tensor_free(s->x), supcon_tensor_free(s->gz), supcon_tensor_free(s->gx);
    supcon_model_free(s->m);
    supcon_context_free(s->ctx);
}

static void same(const supcon_tensor *a, const supcon_tensor *b, const char *what) {
    assert_int_equal(supcon_tensor_bytes(a), supcon_tensor_bytes(b));
    if (memcmp(supcon_tensor_data((supcon_tensor *)a), supcon_tensor_data((supcon_tensor *)b), supcon_tensor_bytes(a)))
        fail_msg("%s: the fused and the separate layers differ", what);
}

static void step(side *s, int training) {
    assert_int_equal(supcon_model_set_training(s->m, training), SUPCON_OK);
    assert_int_equal(supcon_model_forward(s->m, s->x), SUPCON_OK);
    assert_int_equal(supcon_model_zero_grad(s->m), SUPCON_OK);
    assert_int_equal(supcon_model_backward(s->m, s->gz, NULL, s->gx), SUPCON_OK);
}

static void compare(side *a, side *b, const char *when) {
    char what[96];
    snprintf(what, sizeof what, "%s: features", when);
    same(supcon_model_features(a->m), supcon_model_features(b->m), what);
    snprintf(what, sizeof what, "%s: head output", when);
    same(supcon_model_head_output(a->m), supcon_model_head_output(b->m), what);
    snprintf(what, sizeof what, "%s: parameter gradients", when);
    same(supcon_model_flat_grads(a->m), supcon_model_flat_grads(b->m), what);
    snprintf(what, sizeof what, "%s: input gradient", when);
    same(a->gx, b->gx, what);
}

/* Calls under names starting with prefix since profiling was switched on. */
static int64_t calls(const supcon_context *ctx, const char *prefix) {
    supcon_profile_entry e[256];
    int64_t n = 0, c = 0;
    assert_int_equal(supcon_context_profile(ctx, e, 256, &n), SUPCON_OK);
    for (int64_t i = 0; i < n && i < 256; i++)
        if (strncmp(e[i].name, prefix, strlen(prefix)) == 0) c += e[i].calls;
    return c;
}

static void check_arch(supcon_arch arch) {
    side a, b;
    side_open(&a, arch, 0);
    side_open(&b, arch, 1);
    assert_int_equal(supcon_context_set_profiling(a.ctx, 1), SUPCON_OK);
    assert_int_equal(supcon_context_set_profiling(b.ctx, 1), SUPCON_OK);
    step(&a, 1), step(&b, 1);
    compare(&a, &b, "training");
    step(&a, 0), step(&b, 0); /* lean inference forward, then the full layout for the backward */
    compare(&a, &b, "inference");
    step(&a, 1), step(&b, 1); /* the first step's running statistics and nothing else changed */
    compare(&a, &b, "training again");
    assert_true(calls(a.ctx, "batchnorm+relu forward") > 0);
    assert_true(calls(a.ctx, "batchnorm+relu backward") > 0);
    assert_int_equal(calls(a.ctx, "add+relu forward"), 0);
    assert_int_equal(calls(b.ctx, "batchnorm+relu"), 0);
    assert_true(calls(b.ctx, "add+relu forward") > 0);
    side_close(&a);
    side_close(&b);
}

static void test_resnet18(void **st) {
    (void)st;
    check_arch(SUPCON_RESNET18);
}

static void test_resnet50(void **st) {
    (void)st;
    check_arch(SUPCON_RESNET50);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18),
        cmocka_unit_test(test_resnet50),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
