/* The model's inference layout (lib/model/plan.c) on the CPU: with the encoder in inference
 * mode a forward plans a lean arena (the encoder's activations rotate through four buffers);
 * a backward through the encoder afterwards lays out the full arena, keeps the outputs and
 * recomputes the activations. Checks that the lean arena is smaller, that the outputs and
 * gradients do not depend on which layout was current, and that they repeat bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_model_util.h"

static supcon_context *mk_ctx(int threads) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = threads;
    cc.seed = 11;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cc, &ctx), SUPCON_OK);
    return ctx;
}

static supcon_tensor *mk_filled(supcon_context *ctx, int ndim, const int64_t *shape, uint64_t salt) {
    supcon_tensor *t = tm_filled(ctx, ndim, shape, salt);
    assert_non_null(t);
    return t;
}

static float *dup(const supcon_tensor *t) {
    const size_t bytes = supcon_tensor_bytes(t);
    float *p = malloc(bytes);
    memcpy(p, supcon_tensor_data((supcon_tensor *)t), bytes);
    return p;
}

static void check_arch(supcon_arch arch, int threads) {
    const int64_t n = 6, h = 16, w = 12;
    supcon_context *ctx = mk_ctx(threads);
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = arch;
    mc.width = 4;
    mc.head = SUPCON_HEAD_MLP;
    mc.feat_dim = 8;
    supcon_model *m = NULL, *full = NULL;
    assert_int_equal(supcon_model_create(ctx, &mc, &m), SUPCON_OK);
    assert_int_equal(supcon_model_create(ctx, &mc, &full), SUPCON_OK);
    assert_int_equal(supcon_model_reserve(full, n, h, w), SUPCON_OK); /* training mode: the full layout */
    const size_t full_bytes = supcon_model_activation_bytes(full);

    const int64_t xs[4] = {n, 3, h, w}, gs[2] = {n, 8};
    supcon_tensor *x = mk_filled(ctx, 4, xs, 1), *g = mk_filled(ctx, 2, gs, 2);
    supcon_tensor *gx = mk_filled(ctx, 4, xs, 3);
    assert_int_equal(supcon_model_set_training(m, 0), SUPCON_OK);
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    const size_t lean_bytes = supcon_model_activation_bytes(m);
    if (!(2 * lean_bytes < full_bytes))
        fail_msg("inference arena %zu bytes, training %zu: expected less than half", lean_bytes, full_bytes);
    float *feat0 = dup(supcon_model_features(m)), *z0 = dup(supcon_model_head_output(m));
    const size_t fb = supcon_tensor_bytes(supcon_model_features(m)), zb = supcon_tensor_bytes(supcon_model_head_output(m));

    /* backward through the encoder: the full layout, the outputs kept */
    assert_int_equal(supcon_model_zero_grad(m), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, gx), SUPCON_OK);
    assert_true(supcon_model_activation_bytes(m) >= full_bytes);
    assert_memory_equal(supcon_tensor_data((supcon_tensor *)supcon_model_features(m)), feat0, fb);
    assert_memory_equal(supcon_tensor_data((supcon_tensor *)supcon_model_head_output(m)), z0, zb);
    float *gx1 = dup(gx), *gp1 = dup(supcon_model_flat_grads(m));

    /* an identical model whose arena is already training-sized: the switch to the full
     * layout allocates nothing there, and gives the same bits */
    assert_int_equal(supcon_model_set_training(full, 0), SUPCON_OK);
    assert_int_equal(supcon_model_forward(full, x), SUPCON_OK);
    assert_memory_equal(supcon_tensor_data((supcon_tensor *)supcon_model_features(full)), feat0, fb);
    assert_int_equal(supcon_model_zero_grad(full), SUPCON_OK);
    assert_int_equal(supcon_model_backward(full, g, NULL, gx), SUPCON_OK);
    assert_memory_equal(supcon_tensor_data(gx), gx1, supcon_tensor_bytes(gx));
    assert_memory_equal(supcon_tensor_data(supcon_model_flat_grads(full)), gp1,
                        supcon_tensor_bytes(supcon_model_flat_grads(full)));

    /* again on the first model: lean forward into the larger arena, backward, same bits */
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_memory_equal(supcon_tensor_data((supcon_tensor *)supcon_model_features(m)), feat0, fb);
    assert_int_equal(supcon_model_zero_grad(m), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, gx), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, gx), SUPCON_OK); /* repeatable: grads add up */
    assert_memory_equal(supcon_tensor_data(gx), gx1, supcon_tensor_bytes(gx));

    /* back to training: the full layout again */
    assert_int_equal(supcon_model_set_training(m, 1), SUPCON_OK);
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, NULL), SUPCON_OK);

    free(feat0), free(z0), free(gx1), free(gp1);
    supcon_tensor_free(x);
    supcon_tensor_free(g);
    supcon_tensor_free(gx);
    supcon_model_free(m);
    supcon_model_free(full);
    supcon_context_free(ctx);
}

static void test_resnet18_lean_inference(void **unused) { check_arch(SUPCON_RESNET18, 2); }
static void test_resnet50_lean_inference(void **unused) { check_arch(SUPCON_RESNET50, 3); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18_lean_inference),
        cmocka_unit_test(test_resnet50_lean_inference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
