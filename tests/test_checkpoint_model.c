/* Models in checkpoints: a model saved and loaded into another gives the same table; loading
 * is strict (missing, unexpected, mis-shaped entries named) or restricted to a prefix (the
 * encoder of a pre-training checkpoint for linear evaluation); and a training run stopped
 * after two steps, saved (model, SGD state, epoch/iteration metadata) and resumed in a fresh
 * context continues bit for bit as the run that never stopped. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "supcon/supcon.h"
#include "test_util.h"

#define N 8
#define HW 16

static supcon_context *make_ctx(uint64_t seed) {
    supcon_context_config c = supcon_context_config_default();
    c.backend = SUPCON_BACKEND_CPU;
    c.num_threads = 2;
    c.seed = seed;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&c, &ctx), SUPCON_OK);
    return ctx;
}

static supcon_model *make_model(supcon_context *ctx, supcon_head_kind head, int classes) {
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = 4;
    mc.head = head;
    mc.feat_dim = 16;
    mc.num_classes = classes;
    supcon_model *m = NULL;
    if (supcon_model_create(ctx, &mc, &m) != SUPCON_OK) return NULL;
    return m;
}

/* All of a table's values, concatenated as bytes. */
static unsigned char *table_bytes(const supcon_model *m, size_t *size) {
    size_t total = 0;
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) total += supcon_tensor_bytes(supcon_model_param(m, i)->value);
    unsigned char *b = malloc(total), *w = b;
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_tensor *t = supcon_model_param(m, i)->value;
        assert_int_equal(supcon_tensor_download(t, w, supcon_tensor_bytes(t)), SUPCON_OK);
        w += supcon_tensor_bytes(t);
    }
    *size = total;
    return b;
}

static void test_save_load(void **unused) {
    supcon_context *ctx = make_ctx(1);
    supcon_model *a = make_model(ctx, SUPCON_HEAD_MLP, 0), *b = make_model(ctx, SUPCON_HEAD_MLP, 0);
    if (!a) skip();
    /* b differs: other weights */
    supcon_tensor *fp = supcon_model_flat_params(b);
    float *tmp = malloc(supcon_tensor_bytes(fp));
    for (int64_t i = 0; i < supcon_tensor_numel(fp); i++) tmp[i] = 0.5f;
    assert_int_equal(supcon_tensor_upload(fp, tmp, supcon_tensor_bytes(fp)), SUPCON_OK);
    free(tmp);

    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    assert_int_equal(supcon_checkpoint_add_model(st, a), SUPCON_OK);
    assert_int_equal(supcon_safetensors_count(st), supcon_model_param_count(a));
    int64_t k = supcon_safetensors_find(st, "encoder.bn1.num_batches_tracked");
    assert_true(k >= 0);
    assert_int_equal(supcon_safetensors_dtype(st, k), SUPCON_INT64);
    assert_int_equal(supcon_safetensors_ndim(st, k), 0);
    assert_int_equal(supcon_checkpoint_add_model(st, a), SUPCON_ERR_INVALID_ARGUMENT); /* twice */
    char path[] = "/tmp/supcon_model_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(supcon_safetensors_save(st, path), SUPCON_OK);
    supcon_safetensors_free(st);
    assert_int_equal(supcon_safetensors_load(ctx, path, NULL, &st), SUPCON_OK);
    unlink(path);
    assert_int_equal(supcon_checkpoint_load_model(st, b, NULL), SUPCON_OK);
    size_t sa, sb;
    unsigned char *ba = table_bytes(a, &sa), *bb = table_bytes(b, &sb);
    assert_int_equal(sa, sb);
    assert_memory_equal(ba, bb, sa);
    free(ba), free(bb);
    supcon_safetensors_free(st);
    supcon_model_free(a);
    supcon_model_free(b);
    supcon_context_free(ctx);
}

/* A copy of `from` with entry `drop` left out, `rename` entries prefixed "module.", and an
 * optional extra entry. */
static supcon_safetensors *edited(supcon_context *ctx, const supcon_safetensors *from, const char *drop,
                                  int module, const char *extra, const char *reshape) {
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    for (int64_t i = 0; i < supcon_safetensors_count(from); i++) {
        const char *n = supcon_safetensors_name(from, i);
        if (drop && strcmp(n, drop) == 0) continue;
        char name[256];
        if (module && strncmp(n, "encoder.", 8) == 0)
            snprintf(name, sizeof name, "encoder.module.%s", n + 8);
        else
            snprintf(name, sizeof name, "%s", n);
        int64_t sh[SUPCON_MAX_DIMS];
        int nd = supcon_safetensors_ndim(from, i);
        for (int d = 0; d < nd; d++) sh[d] = supcon_safetensors_dim(from, i, d);
        if (reshape && strcmp(n, reshape) == 0 && nd == 4) sh[2] = sh[2] * sh[3], sh[3] = 1;
        assert_int_equal(supcon_safetensors_add(st, name, supcon_safetensors_dtype(from, i), nd, sh,
                                                supcon_safetensors_data(from, i), supcon_safetensors_bytes(from, i)),
                         SUPCON_OK);
    }
    if (extra) {
        const float z = 0;
        const int64_t one = 1;
        assert_int_equal(supcon_safetensors_add(st, extra, SUPCON_FLOAT32, 1, &one, &z, 4), SUPCON_OK);
    }
    return st;
}

static void test_strict(void **unused) {
    supcon_context *ctx = make_ctx(2);
    supcon_model *a = make_model(ctx, SUPCON_HEAD_MLP, 0);
    if (!a) skip();
    supcon_model *lin = make_model(ctx, SUPCON_HEAD_NONE, 10);
    supcon_safetensors *full, *st;
    assert_int_equal(supcon_safetensors_create(ctx, &full), SUPCON_OK);
    assert_int_equal(supcon_checkpoint_add_model(full, a), SUPCON_OK);

    st = edited(ctx, full, "encoder.layer2.0.bn1.running_var", 0, NULL, NULL);
    assert_int_equal(supcon_checkpoint_load_model(st, a, NULL), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "not in the file: encoder.layer2.0.bn1.running_var"));
    supcon_safetensors_free(st);

    st = edited(ctx, full, NULL, 0, "encoder.layer9.weight", NULL);
    assert_int_equal(supcon_checkpoint_load_model(st, a, NULL), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "not the model's: encoder.layer9.weight"));
    /* optimizer entries are not the model's business */
    supcon_safetensors_free(st);
    st = edited(ctx, full, NULL, 0, "optimizer.momentum_buffer.x", NULL);
    assert_int_equal(supcon_checkpoint_load_model(st, a, NULL), SUPCON_OK);
    supcon_safetensors_free(st);

    st = edited(ctx, full, NULL, 0, NULL, "encoder.conv1.weight");
    assert_int_equal(supcon_checkpoint_load_model(st, a, NULL), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(ctx), "encoder.conv1.weight"));
    supcon_safetensors_free(st);

    /* DataParallel names load */
    st = edited(ctx, full, NULL, 1, NULL, NULL);
    assert_int_equal(supcon_safetensors_find(st, "encoder.module.conv1.weight"), 0);
    assert_int_equal(supcon_checkpoint_load_model(st, a, NULL), SUPCON_OK);

    /* linear evaluation: the encoder of a SupCon checkpoint into a model with a classifier */
    assert_int_equal(supcon_checkpoint_load_model(st, lin, NULL), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "fc.weight"));
    assert_non_null(strstr(supcon_context_last_error(ctx), "head.0.weight"));
    assert_int_equal(supcon_checkpoint_load_model(st, lin, "encoder."), SUPCON_OK);
    supcon_safetensors *le;
    assert_int_equal(supcon_safetensors_create(ctx, &le), SUPCON_OK);
    assert_int_equal(supcon_checkpoint_add_model(le, lin), SUPCON_OK);
    for (int64_t i = 0; i < supcon_safetensors_count(full); i++) {
        const char *n = supcon_safetensors_name(full, i);
        if (strncmp(n, "encoder.", 8)) continue;
        int64_t j = supcon_safetensors_find(le, n);
        assert_true(j >= 0);
        assert_memory_equal(supcon_safetensors_data(le, j), supcon_safetensors_data(full, i),
                            supcon_safetensors_bytes(full, i));
    }
    supcon_safetensors_free(le);
    supcon_safetensors_free(st);
    supcon_safetensors_free(full);
    assert_int_equal(supcon_checkpoint_load_model(NULL, a, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_model_free(a);
    supcon_model_free(lin);
    supcon_context_free(ctx);
}

/* ---- Resume ------------------------------------------------------------------------------- */

typedef struct run {
    supcon_context *ctx;
    supcon_model *m;
    supcon_sgd *opt;
    supcon_loss *loss;
    supcon_tensor *x, *labels, *grad;
} run;

static void run_open(run *r, uint64_t seed) {
    r->ctx = make_ctx(seed);
    r->m = make_model(r->ctx, SUPCON_HEAD_MLP, 0);
    assert_non_null(r->m);
    supcon_sgd_config sc = supcon_sgd_config_default();
    assert_int_equal(supcon_sgd_create(r->ctx, &sc, &r->opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_model(r->opt, 0, r->m, NULL, 0), SUPCON_OK);
    supcon_loss_config lc = supcon_loss_config_default();
    lc.temperature = 0.1f;
    assert_int_equal(supcon_loss_create(r->ctx, &lc, &r->loss), SUPCON_OK);
    const int64_t xs[4] = {N, 3, HW, HW}, ls = N, gs[3] = {N, 1, 16};
    assert_int_equal(supcon_tensor_create(r->ctx, SUPCON_FLOAT32, 4, xs, &r->x), SUPCON_OK);
    assert_int_equal(supcon_tensor_create(r->ctx, SUPCON_INT64, 1, &ls, &r->labels), SUPCON_OK);
    assert_int_equal(supcon_tensor_create(r->ctx, SUPCON_FLOAT32, 3, gs, &r->grad), SUPCON_OK);
}

static void run_close(run *r) {
    supcon_tensor_free(r->x);
    supcon_tensor_free(r->labels);
    supcon_tensor_free(r->grad);
    supcon_loss_free(r->loss);
    supcon_sgd_free(r->opt);
    supcon_model_free(r->m);
    supcon_context_free(r->ctx);
}

/* One SupCon step on the batch of iteration `it` (data depends on it alone). */
static void run_step(run *r, int it) {
    tu_rng g = tu_rng_seed(1000 + (uint64_t)it);
    float *x = malloc(sizeof(float) * N * 3 * HW * HW);
    for (int64_t i = 0; i < N * 3 * HW * HW; i++) x[i] = (float)tu_normal(&g);
    int64_t lab[N];
    for (int i = 0; i < N; i++) lab[i] = i % 3;
    assert_int_equal(supcon_tensor_upload(r->x, x, sizeof(float) * N * 3 * HW * HW), SUPCON_OK);
    assert_int_equal(supcon_tensor_upload(r->labels, lab, sizeof lab), SUPCON_OK);
    free(x);
    supcon_lr_config lc = supcon_lr_config_default();
    lc.cosine = 1;
    lc.warm = 1;
    lc.epochs = 20;
    double lr;
    assert_int_equal(supcon_lr_iteration(&lc, 1 + it / 2, it % 2, 2, &lr), SUPCON_OK);
    assert_int_equal(supcon_sgd_set_learning_rate(r->opt, lr), SUPCON_OK);

    assert_int_equal(supcon_model_zero_grad(r->m), SUPCON_OK);
    assert_int_equal(supcon_model_forward(r->m, r->x), SUPCON_OK);
    const supcon_tensor *h = supcon_model_head_output(r->m);
    const int64_t fs[3] = {N, 1, 16};
    supcon_tensor *f;
    assert_int_equal(supcon_tensor_wrap(r->ctx, SUPCON_FLOAT32, 3, fs, supcon_tensor_data((supcon_tensor *)h),
                                        SUPCON_MEMORY_HOST, &f),
                     SUPCON_OK);
    float value;
    assert_int_equal(supcon_loss_forward(r->loss, f, r->labels, NULL, &value), SUPCON_OK);
    assert_int_equal(supcon_loss_backward(r->loss, r->grad), SUPCON_OK);
    assert_int_equal(supcon_model_backward(r->m, r->grad, NULL, NULL), SUPCON_OK);
    assert_int_equal(supcon_sgd_step(r->opt), SUPCON_OK);
    supcon_tensor_free(f);
}

static void test_resume_bit_for_bit(void **unused) {
    supcon_context *probe = make_ctx(0);
    supcon_model *pm = make_model(probe, SUPCON_HEAD_MLP, 0);
    const int have_models = pm != NULL;
    supcon_model_free(pm);
    supcon_context_free(probe);
    if (!have_models) skip();

    run straight, first, resumed;
    run_open(&straight, 42);
    for (int it = 0; it < 4; it++) run_step(&straight, it);

    run_open(&first, 42);
    for (int it = 0; it < 2; it++) run_step(&first, it);
    char dir[] = "/tmp/supcon_resume_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(first.ctx, &st), SUPCON_OK);
    assert_int_equal(supcon_checkpoint_add_model(st, first.m), SUPCON_OK);
    assert_int_equal(supcon_sgd_save_state(first.opt, st), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "epoch", "2"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "iteration", "0"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "seed", "42"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_save(st, path), SUPCON_OK);
    supcon_safetensors_free(st);
    run_close(&first);

    /* another seed: every weight comes from the file */
    run_open(&resumed, 7);
    assert_int_equal(supcon_safetensors_load(resumed.ctx, path, NULL, &st), SUPCON_OK);
    unlink(path);
    rmdir(dir);
    assert_int_equal(supcon_checkpoint_load_model(st, resumed.m, NULL), SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(resumed.opt, st), SUPCON_OK);
    const int epoch = atoi(supcon_safetensors_metadata(st, "epoch"));
    supcon_safetensors_free(st);
    for (int it = 2 * (epoch - 1); it < 4; it++) run_step(&resumed, it);

    size_t sa, sb;
    unsigned char *a = table_bytes(straight.m, &sa), *b = table_bytes(resumed.m, &sb);
    assert_int_equal(sa, sb);
    if (memcmp(a, b, sa) != 0) fail_msg("the resumed run's weights or BN statistics differ from the straight run's");
    free(a), free(b);
    for (int64_t i = 0; i < supcon_sgd_param_count(straight.opt); i++) {
        const supcon_param_info *p = supcon_model_param(straight.m, supcon_model_param_find(straight.m,
                                                                     supcon_sgd_param_name(straight.opt, i)));
        size_t bytes = sizeof(float) * (size_t)p->numel;
        float *x = malloc(bytes), *y = malloc(bytes);
        assert_int_equal(supcon_sgd_get_momentum(straight.opt, i, x, bytes), SUPCON_OK);
        assert_int_equal(supcon_sgd_get_momentum(resumed.opt, i, y, bytes), SUPCON_OK);
        assert_memory_equal(x, y, bytes);
        free(x), free(y);
    }
    assert_int_equal(supcon_sgd_steps(resumed.opt), 4);
    run_close(&straight);
    run_close(&resumed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_resume_bit_for_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
