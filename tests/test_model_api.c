/* The model API apart from the numbers: state_dict names, dtypes and shapes against
 * PyTorch's (tests/fixtures/model_names.txt), the seeded initialisation (SPEC §2, identical
 * for any thread count), planning (no allocation in steady state, growth for a larger batch),
 * freezing the encoder, and every documented misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_model_util.h"

static supcon_context *mk_ctx(int threads, uint64_t seed) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = threads;
    cc.seed = seed;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cc, &ctx), SUPCON_OK);
    return ctx;
}

static supcon_model_config small_cfg(supcon_arch arch, int width, supcon_head_kind head, int classes) {
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = arch;
    mc.width = width;
    mc.head = head;
    mc.feat_dim = 8;
    mc.num_classes = classes;
    return mc;
}

static supcon_model *mk(supcon_context *ctx, const supcon_model_config *mc) {
    supcon_model *m = NULL;
    if (supcon_model_create(ctx, mc, &m) != SUPCON_OK) fail_msg("create: %s", supcon_context_last_error(ctx));
    return m;
}

static supcon_tensor *mk_input(supcon_context *ctx, int64_t n, int64_t c, int64_t h, int64_t w, uint64_t salt) {
    const int64_t shape[4] = {n, c, h, w};
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 4, shape, &t), SUPCON_OK);
    float *p = supcon_tensor_data(t);
    for (int64_t i = 0; i < supcon_tensor_numel(t); i++) p[i] = (float)(2.0 * tm_hash_uniform(salt, 0, (uint64_t)i) - 1.0);
    return t;
}

static supcon_tensor *mk_f32(supcon_context *ctx, int ndim, const int64_t *shape, float value) {
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, ndim, shape, &t), SUPCON_OK);
    float *p = supcon_tensor_data(t);
    for (int64_t i = 0; i < supcon_tensor_numel(t); i++) p[i] = value * (float)((i % 7) - 3);
    return t;
}

/* ---- names ------------------------------------------------------------------------------- */

static void test_names_match_pytorch(void **unused) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model_names.txt", SUPCON_TEST_FIXTURES);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    supcon_context *ctx = mk_ctx(2, 0);
    char line[512];
    supcon_model *m = NULL;
    int64_t next = 0, configs = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (!strncmp(line, "config ", 7)) {
            if (m) assert_int_equal(next, supcon_model_param_count(m));
            supcon_model_free(m);
            char arch[32], head[32];
            int in_ch, width, feat, classes;
            long long nentries, nparams;
            assert_int_equal(sscanf(line + 7, "%31s %d %d %31s %d %d %lld %lld", arch, &in_ch, &width, head, &feat,
                                    &classes, &nentries, &nparams),
                             8);
            supcon_model_config mc = supcon_model_config_default();
            assert_int_equal(supcon_arch_from_name(arch, &mc.arch), SUPCON_OK);
            assert_string_equal(supcon_arch_name(mc.arch), arch);
            mc.in_channels = in_ch;
            mc.width = width;
            mc.head = !strcmp(head, "mlp") ? SUPCON_HEAD_MLP : !strcmp(head, "linear") ? SUPCON_HEAD_LINEAR : SUPCON_HEAD_NONE;
            mc.feat_dim = feat;
            mc.num_classes = classes;
            m = mk(ctx, &mc);
            assert_int_equal(supcon_model_param_count(m), nentries);
            assert_int_equal(supcon_tensor_numel(supcon_model_flat_params(m)), nparams);
            assert_int_equal(supcon_model_feature_dim(m), (mc.arch >= SUPCON_RESNET50 ? 32 : 8) * width);
            next = 0;
            configs++;
            continue;
        }
        char name[160], dtype[16];
        int ndim, used = 0;
        assert_int_equal(sscanf(line, "%159s %15s %d%n", name, dtype, &ndim, &used), 3);
        const supcon_param_info *in = supcon_model_param(m, next);
        assert_non_null(in);
        assert_string_equal(in->name, name);
        assert_int_equal(in->dtype, !strcmp(dtype, "int64") ? SUPCON_INT64 : SUPCON_FLOAT32);
        assert_int_equal(in->kind, (!strcmp(dtype, "int64") || strstr(name, "running_")) ? SUPCON_PARAM_BUFFER
                                                                                          : SUPCON_PARAM_PARAMETER);
        assert_int_equal(in->ndim, ndim);
        const char *p = line + used;
        for (int i = 0; i < ndim; i++) {
            long long s;
            int k;
            assert_int_equal(sscanf(p, "%lld%n", &s, &k), 1);
            p += k;
            assert_int_equal(in->shape[i], s);
            assert_int_equal(supcon_tensor_dim(in->value, i), s);
        }
        assert_int_equal(supcon_tensor_ndim(in->value), ndim);
        assert_int_equal(supcon_model_param_find(m, name), next);
        next++;
    }
    assert_int_equal(next, supcon_model_param_count(m));
    assert_true(configs >= 6);
    supcon_model_free(m);
    supcon_context_free(ctx);
    fclose(f);
}

/* Flat offsets tile the flat tensor in table order; views alias it; DataParallel names. */
static void test_table_layout(void **unused) {
    supcon_context *ctx = mk_ctx(2, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 4, SUPCON_HEAD_MLP, 10);
    supcon_model *m = mk(ctx, &mc);
    int64_t expect = 0;
    float *flat = supcon_tensor_data(supcon_model_flat_params(m));
    float *gflat = supcon_tensor_data(supcon_model_flat_grads(m));
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_param_info *in = supcon_model_param(m, i);
        assert_ptr_equal(in, supcon_model_param(m, i));
        if (in->kind == SUPCON_PARAM_BUFFER) {
            assert_int_equal(in->offset, -1);
            assert_null(in->grad);
            assert_int_equal(in->trainable, 0);
            continue;
        }
        assert_int_equal(in->offset, expect);
        assert_ptr_equal(supcon_tensor_data(in->value), flat + expect);
        assert_ptr_equal(supcon_tensor_data(in->grad), gflat + expect);
        assert_int_equal(in->trainable, 1);
        expect += in->numel;
    }
    assert_int_equal(expect, supcon_tensor_numel(supcon_model_flat_params(m)));
    assert_null(supcon_model_param(m, -1));
    assert_null(supcon_model_param(m, supcon_model_param_count(m)));
    assert_int_equal(supcon_model_param_find(m, "encoder.module.conv1.weight"), 0);
    assert_int_equal(supcon_model_param_find(m, "module.encoder.conv1.weight"), 0);
    assert_int_equal(supcon_model_param_find(m, "module.fc.bias"), supcon_model_param_count(m) - 1);
    assert_int_equal(supcon_model_param_find(m, "encoder.conv1.weights"), -1);
    assert_int_equal(supcon_model_param_find(m, "mymodule.fc.bias"), -1);
    assert_int_equal(supcon_model_param_find(m, NULL), -1);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

/* ---- initialisation ----------------------------------------------------------------------- */

static void test_init_distribution(void **unused) {
    supcon_context *ctx = mk_ctx(2, 7);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 16, SUPCON_HEAD_MLP, 10);
    supcon_model *m = mk(ctx, &mc);
    const double bound = 1.0 / sqrt((double)supcon_model_feature_dim(m));
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_param_info *in = supcon_model_param(m, i);
        if (in->dtype == SUPCON_INT64) {
            assert_int_equal(*(int64_t *)supcon_tensor_data(in->value), 0);
            continue;
        }
        const float *v = supcon_tensor_data(in->value);
        double s = 0, ss = 0, mx = 0;
        for (int64_t k = 0; k < in->numel; k++) {
            s += v[k];
            ss += (double)v[k] * v[k];
            if (fabs(v[k]) > mx) mx = fabs(v[k]);
        }
        const double mean = s / in->numel, sd = sqrt(ss / in->numel - mean * mean);
        if (in->ndim == 4) {
            const double want = sqrt(2.0 / (double)(in->shape[0] * in->shape[2] * in->shape[3]));
            const double tol = 4.0 / sqrt((double)in->numel) + 0.01; /* sampling error of the sd */
            if (fabs(sd / want - 1.0) > tol) fail_msg("%s: sd %g, want %g", in->name, sd, want);
            assert_true(fabs(mean) < 5.0 * want / sqrt((double)in->numel));
        } else if (!strncmp(in->name, "head", 4) || !strncmp(in->name, "fc", 2)) {
            assert_true(mx <= bound);
            if (in->numel >= 100) {
                assert_true(mx > 0.9 * bound);
                assert_true(fabs(sd / (bound / sqrt(3.0)) - 1.0) < 0.1);
            }
        } else if (strstr(in->name, ".weight") || strstr(in->name, "running_var")) {
            for (int64_t k = 0; k < in->numel; k++) assert_true(v[k] == 1.0f);
        } else {
            for (int64_t k = 0; k < in->numel; k++) assert_true(v[k] == 0.0f);
        }
    }
    /* gradients start at zero */
    const float *g = supcon_tensor_data(supcon_model_flat_grads(m));
    for (int64_t k = 0; k < supcon_tensor_numel(supcon_model_flat_grads(m)); k++) assert_true(g[k] == 0.0f);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

static int same_params(supcon_model *a, supcon_model *b) {
    const supcon_tensor *fa = supcon_model_flat_params(a), *fb = supcon_model_flat_params(b);
    return supcon_tensor_bytes(fa) == supcon_tensor_bytes(fb) &&
           !memcmp(supcon_tensor_data((supcon_tensor *)fa), supcon_tensor_data((supcon_tensor *)fb),
                   supcon_tensor_bytes(fa));
}

/* Same seed: bit-identical weights on 1 and 3 threads; another seed: different weights; the
 * encoder's weights do not depend on what head is attached. */
static void test_init_deterministic(void **unused) {
    supcon_context *c1 = mk_ctx(1, 42), *c3 = mk_ctx(3, 42), *c_other = mk_ctx(2, 43);
    supcon_model_config mc = small_cfg(SUPCON_RESNET50, 4, SUPCON_HEAD_MLP, 0);
    supcon_model *a = mk(c1, &mc), *b = mk(c3, &mc), *c = mk(c_other, &mc);
    assert_true(same_params(a, b));
    assert_false(same_params(a, c));
    supcon_model_config lin = small_cfg(SUPCON_RESNET50, 4, SUPCON_HEAD_LINEAR, 10);
    supcon_model *d = mk(c3, &lin);
    int64_t enc = 0;
    for (int64_t i = 0; i < supcon_model_param_count(d); i++) {
        const supcon_param_info *in = supcon_model_param(d, i);
        if (!strncmp(in->name, "encoder.", 8) && in->kind == SUPCON_PARAM_PARAMETER) enc = in->offset + in->numel;
    }
    assert_memory_equal(supcon_tensor_data(supcon_model_flat_params(a)), supcon_tensor_data(supcon_model_flat_params(d)),
                        (size_t)enc * sizeof(float));
    /* and the forward pass agrees bit for bit across thread counts */
    supcon_tensor *x1 = mk_input(c1, 4, 3, 8, 8, 1), *x3 = mk_input(c3, 4, 3, 8, 8, 1);
    assert_int_equal(supcon_model_forward(a, x1), SUPCON_OK);
    assert_int_equal(supcon_model_forward(b, x3), SUPCON_OK);
    assert_memory_equal(supcon_tensor_data((supcon_tensor *)supcon_model_head_output(a)),
                        supcon_tensor_data((supcon_tensor *)supcon_model_head_output(b)),
                        supcon_tensor_bytes(supcon_model_head_output(a)));
    supcon_tensor_free(x1);
    supcon_tensor_free(x3);
    supcon_model_free(a);
    supcon_model_free(b);
    supcon_model_free(c);
    supcon_model_free(d);
    supcon_context_free(c1);
    supcon_context_free(c3);
    supcon_context_free(c_other);
}

static void test_zero_init_residual(void **unused) {
    supcon_context *ctx = mk_ctx(2, 0);
    for (int arch = SUPCON_RESNET18; arch <= SUPCON_RESNET50; arch += 2) {
        supcon_model_config mc = small_cfg((supcon_arch)arch, 2, SUPCON_HEAD_NONE, 0);
        mc.zero_init_residual = 1;
        supcon_model *m = mk(ctx, &mc);
        const char *last = arch == SUPCON_RESNET18 ? ".bn2.weight" : ".bn3.weight";
        int zeroed = 0;
        for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
            const supcon_param_info *in = supcon_model_param(m, i);
            if (strncmp(in->name, "encoder.layer", 13) || !tm_ends(in->name, ".weight") || in->ndim != 1) continue;
            const float want = tm_ends(in->name, last) ? 0.0f : 1.0f;
            zeroed += want == 0.0f;
            for (int64_t k = 0; k < in->numel; k++) assert_true(((float *)supcon_tensor_data(in->value))[k] == want);
        }
        assert_int_equal(zeroed, arch == SUPCON_RESNET18 ? 8 : 16);
        supcon_model_free(m);
    }
    supcon_context_free(ctx);
}

/* ---- planning and memory ------------------------------------------------------------------- */

static void test_memory_plan(void **unused) {
    supcon_context *ctx = mk_ctx(2, 0);
    const size_t base = supcon_context_bytes_in_use(ctx);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 4, SUPCON_HEAD_MLP, 3);
    supcon_model *m = mk(ctx, &mc);
    const size_t weights = supcon_context_bytes_in_use(ctx) - base;
    assert_int_equal(supcon_model_bytes(m), weights);
    assert_int_equal(supcon_model_activation_bytes(m), 0);
    const supcon_tensor *feats = supcon_model_features(m);
    assert_int_equal(supcon_tensor_dim(feats, 0), 0);

    assert_int_equal(supcon_model_reserve(m, 8, 16, 16), SUPCON_OK);
    const size_t planned = supcon_context_bytes_in_use(ctx);
    assert_true(supcon_model_activation_bytes(m) > 0);
    assert_int_equal(supcon_model_bytes(m), planned - base);
    supcon_tensor *x8 = mk_input(ctx, 8, 3, 16, 16, 3), *x4 = mk_input(ctx, 4, 3, 16, 16, 4);
    supcon_tensor *x16 = mk_input(ctx, 16, 3, 16, 16, 5);
    const int64_t gshape[2] = {4, 8};
    supcon_tensor *g4 = mk_f32(ctx, 2, gshape, 0.01f);
    const size_t steady = supcon_context_bytes_in_use(ctx);
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(supcon_model_forward(m, x8), SUPCON_OK);
        assert_int_equal(supcon_tensor_dim(supcon_model_features(m), 0), 8);
        assert_int_equal(supcon_model_forward(m, x4), SUPCON_OK);
        assert_int_equal(supcon_tensor_dim(supcon_model_head_output(m), 0), 4);
        assert_int_equal(supcon_tensor_dim(supcon_model_logits(m), 0), 4);
        assert_int_equal(supcon_model_backward(m, g4, NULL, NULL), SUPCON_OK);
        assert_int_equal(supcon_context_bytes_in_use(ctx), steady); /* nothing allocated */
    }
    /* a larger batch grows the arena once, then stays */
    assert_int_equal(supcon_model_forward(m, x16), SUPCON_OK);
    const size_t grown = supcon_context_bytes_in_use(ctx);
    assert_true(grown > steady);
    assert_true(supcon_context_peak_bytes(ctx) >= grown);
    assert_int_equal(supcon_model_forward(m, x8), SUPCON_OK);
    assert_int_equal(supcon_model_forward(m, x16), SUPCON_OK);
    assert_int_equal(supcon_context_bytes_in_use(ctx), grown);
    supcon_model_free(m);
    assert_int_equal(supcon_context_bytes_in_use(ctx), steady - (planned - base)); /* the inputs */
    supcon_tensor_free(x8);
    supcon_tensor_free(x4);
    supcon_tensor_free(x16);
    supcon_tensor_free(g4);
    assert_int_equal(supcon_context_bytes_in_use(ctx), base);
    supcon_context_free(ctx);
}

/* Reference size: resnet18, width 64, MLP head, 64 images 3x32x32 (two views of 32). */
static void test_memory_resnet18_reference(void **unused) {
    supcon_context *ctx = mk_ctx(2, 0);
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    supcon_model *m = mk(ctx, &mc);
    const size_t params = supcon_model_bytes(m);
    assert_int_equal(supcon_model_reserve(m, 64, 32, 32), SUPCON_OK);
    printf("  resnet18/64 + mlp: %lld parameters; parameters+gradients+buffers %.1f MB, "
           "activations+workspace for 64x3x32x32 %.1f MB, total %.1f MB\n",
           (long long)supcon_tensor_numel(supcon_model_flat_params(m)), params / 1048576.0,
           supcon_model_activation_bytes(m) / 1048576.0, supcon_model_bytes(m) / 1048576.0);
    assert_int_equal(supcon_tensor_numel(supcon_model_flat_params(m)), 11168832 + 512 * 512 + 512 + 512 * 128 + 128);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

/* ---- frozen encoder -------------------------------------------------------------------- */

static void test_frozen_encoder(void **unused) {
    supcon_context *ctx = mk_ctx(2, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 4, SUPCON_HEAD_NONE, 5);
    supcon_model *m = mk(ctx, &mc);
    int64_t off, count;
    const int64_t total = supcon_tensor_numel(supcon_model_flat_params(m));
    assert_int_equal(supcon_model_trainable_range(m, &off, &count), SUPCON_OK);
    assert_int_equal(off, 0);
    assert_int_equal(count, total);
    assert_int_equal(supcon_model_set_encoder_frozen(m, 1), SUPCON_OK);
    assert_int_equal(supcon_model_get_config(m).freeze_encoder, 1);
    assert_int_equal(supcon_model_trainable_range(m, &off, &count), SUPCON_OK);
    assert_int_equal(count, 5 * 32 + 5);
    assert_int_equal(off + count, total);
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_param_info *in = supcon_model_param(m, i);
        const int fc = !strncmp(in->name, "fc.", 3);
        assert_int_equal(in->trainable, fc);
        assert_true((in->grad != NULL) == fc);
    }
    /* training mode, but the encoder's BN uses (and keeps) its running statistics */
    const int64_t nbt = supcon_model_param_find(m, "encoder.bn1.num_batches_tracked");
    const int64_t rv = supcon_model_param_find(m, "encoder.layer4.1.bn2.running_var");
    supcon_tensor *x = mk_input(ctx, 4, 3, 8, 8, 9);
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_int_equal(*(int64_t *)supcon_tensor_data(supcon_model_param(m, nbt)->value), 0);
    assert_true(((float *)supcon_tensor_data(supcon_model_param(m, rv)->value))[0] == 1.0f);
    const int64_t lshape[1] = {4};
    supcon_tensor *labels = NULL, *gl = NULL;
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_INT32, 1, lshape, &labels), SUPCON_OK);
    int32_t *lp = supcon_tensor_data(labels);
    for (int i = 0; i < 4; i++) lp[i] = i;
    const int64_t gshape[2] = {4, 5};
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 2, gshape, &gl), SUPCON_OK);
    float loss;
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, NULL, NULL, gl), SUPCON_OK);
    assert_true(loss > 0.0f);
    assert_int_equal(supcon_model_backward(m, NULL, gl, NULL), SUPCON_OK);
    const float *g = supcon_tensor_data(supcon_model_flat_grads(m));
    double enc = 0, head = 0;
    for (int64_t k = 0; k < total; k++) *(k < off ? &enc : &head) += fabs(g[k]);
    assert_true(enc == 0.0);
    assert_true(head > 0.0);
    /* an input gradient still flows through the frozen encoder, leaving its gradients alone */
    const int64_t xs[4] = {4, 3, 8, 8};
    supcon_tensor *gx = mk_f32(ctx, 4, xs, 0.0f);
    assert_int_equal(supcon_model_backward(m, NULL, gl, gx), SUPCON_OK);
    double gsum = 0;
    for (int64_t k = 0; k < supcon_tensor_numel(gx); k++) gsum += fabs(((float *)supcon_tensor_data(gx))[k]);
    assert_true(gsum > 0.0);
    for (int64_t k = 0; k < off; k++) assert_true(g[k] == 0.0f);
    /* unfreezing restores the slots */
    assert_int_equal(supcon_model_set_encoder_frozen(m, 0), SUPCON_OK);
    assert_non_null(supcon_model_param(m, 0)->grad);
    supcon_tensor_free(gx);
    supcon_tensor_free(x);
    supcon_tensor_free(labels);
    supcon_tensor_free(gl);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

/* ---- misuse -------------------------------------------------------------------------------- */

static void test_create_misuse(void **unused) {
    supcon_context *ctx = mk_ctx(1, 0);
    supcon_model *m = (supcon_model *)&m;
    assert_int_equal(supcon_model_create(NULL, NULL, &m), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_int_equal(supcon_model_create(ctx, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_model_config mc = supcon_model_config_default();
    mc.struct_size = 3;
    assert_int_equal(supcon_model_create(ctx, &mc, &m), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "struct_size"));
    const struct {
        int field, value;
    } bad[] = {{0, 4}, {0, -1}, {1, 0}, {2, 0}, {3, 3}, {4, 0}, {5, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc = supcon_model_config_default();
        switch (bad[i].field) {
        case 0: mc.arch = (supcon_arch)bad[i].value; break;
        case 1: mc.in_channels = bad[i].value; break;
        case 2: mc.width = bad[i].value; break;
        case 3: mc.head = (supcon_head_kind)bad[i].value; break;
        case 4: mc.feat_dim = bad[i].value; break;
        case 5: mc.num_classes = bad[i].value; break;
        }
        assert_int_equal(supcon_model_create(ctx, &mc, &m), SUPCON_ERR_INVALID_ARGUMENT);
        assert_null(m);
    }
    mc = supcon_model_config_default();
    mc.bn_eps = 0.0f;
    assert_int_equal(supcon_model_create(ctx, &mc, &m), SUPCON_ERR_INVALID_ARGUMENT);
    mc = supcon_model_config_default();
    mc.bn_momentum = 1.5f;
    assert_int_equal(supcon_model_create(ctx, &mc, &m), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_arch a;
    assert_int_equal(supcon_arch_from_name("resnet152", &a), SUPCON_ERR_INVALID_ARGUMENT);
    assert_string_equal(supcon_arch_name((supcon_arch)9), "?");
    /* NULL handles */
    supcon_model_free(NULL);
    assert_int_equal(supcon_model_forward(NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_backward(NULL, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_zero_grad(NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_set_training(NULL, 1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_reserve(NULL, 1, 1, 1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_param_count(NULL), 0);
    assert_null(supcon_model_param(NULL, 0));
    assert_null(supcon_model_flat_params(NULL));
    assert_null(supcon_model_features(NULL));
    supcon_context_free(ctx);
}

static void test_forward_misuse(void **unused) {
    supcon_context *ctx = mk_ctx(1, 0), *other = mk_ctx(1, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 2, SUPCON_HEAD_MLP, 0);
    supcon_model *m = mk(ctx, &mc);
    assert_int_equal(supcon_model_forward(m, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    const int64_t s3[3] = {2, 3, 8};
    supcon_tensor *r3 = mk_f32(ctx, 3, s3, 1.0f);
    assert_int_equal(supcon_model_forward(m, r3), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(ctx), "rank"));
    supcon_tensor *c1 = mk_input(ctx, 2, 1, 8, 8, 1);
    assert_int_equal(supcon_model_forward(m, c1), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(ctx), "channels"));
    const int64_t s0[4] = {0, 3, 8, 8};
    supcon_tensor *empty = mk_f32(ctx, 4, s0, 1.0f);
    assert_int_equal(supcon_model_forward(m, empty), SUPCON_ERR_SHAPE);
    supcon_tensor *i64 = NULL;
    const int64_t s4[4] = {2, 3, 8, 8};
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_INT64, 4, s4, &i64), SUPCON_OK);
    assert_int_equal(supcon_model_forward(m, i64), SUPCON_ERR_DTYPE);
    supcon_tensor *foreign = mk_input(other, 2, 3, 8, 8, 1);
    assert_int_equal(supcon_model_forward(m, foreign), SUPCON_ERR_INVALID_ARGUMENT);
    /* one image whose last stage is 1x1: BN cannot train on a single value, inference can */
    supcon_tensor *one = mk_input(ctx, 1, 3, 8, 8, 2);
    assert_int_equal(supcon_model_forward(m, one), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(ctx), "BatchNorm"));
    assert_int_equal(supcon_model_set_training(m, 0), SUPCON_OK);
    assert_int_equal(supcon_model_is_training(m), 0);
    assert_int_equal(supcon_model_forward(m, one), SUPCON_OK);
    supcon_tensor *odd = mk_input(ctx, 1, 3, 5, 7, 2); /* any size works */
    assert_int_equal(supcon_model_forward(m, odd), SUPCON_OK);
    assert_int_equal(supcon_model_reserve(m, 0, 8, 8), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_tensor_free(r3);
    supcon_tensor_free(c1);
    supcon_tensor_free(empty);
    supcon_tensor_free(i64);
    supcon_tensor_free(foreign);
    supcon_tensor_free(one);
    supcon_tensor_free(odd);
    supcon_model_free(m);
    supcon_context_free(ctx);
    supcon_context_free(other);
}

/* A NaN in one input pixel is not lost on the way (ReLU passes NaN on, as PyTorch's): the
 * features hold NaN, and the loss refuses them with ERR_NON_FINITE rather than training on. */
static void test_nan_input_reaches_the_loss(void **unused) {
    supcon_context *ctx = mk_ctx(1, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 2, SUPCON_HEAD_MLP, 0);
    supcon_model *m = mk(ctx, &mc);
    supcon_tensor *x = mk_input(ctx, 4, 3, 8, 8, 3);
    ((float *)supcon_tensor_data(x))[77] = NAN;
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    const supcon_tensor *f = supcon_model_features(m);
    int nans = 0;
    const float *fv = supcon_tensor_data((supcon_tensor *)f);
    for (int64_t i = 0; i < supcon_tensor_numel(f); i++) nans += isnan(fv[i]) != 0;
    assert_true(nans > 0);
    const supcon_tensor *z = supcon_model_head_output(m);
    const int64_t shape[3] = {2, 2, supcon_tensor_dim(z, 1)};
    supcon_tensor *view = NULL;
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 3, shape, supcon_tensor_data((supcon_tensor *)z),
                                        supcon_tensor_memory(z), &view),
                     SUPCON_OK);
    supcon_loss *loss = NULL;
    supcon_loss_config lc = supcon_loss_config_default();
    assert_int_equal(supcon_loss_create(ctx, &lc, &loss), SUPCON_OK);
    float value = 0.0f;
    assert_int_equal(supcon_loss_forward(loss, view, NULL, NULL, &value), SUPCON_ERR_NON_FINITE);
    supcon_loss_free(loss);
    supcon_tensor_free(view);
    supcon_tensor_free(x);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

static void test_backward_misuse(void **unused) {
    supcon_context *ctx = mk_ctx(1, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 2, SUPCON_HEAD_LINEAR, 0);
    supcon_model *m = mk(ctx, &mc);
    const int64_t gs[2] = {4, 8}, bad[2] = {4, 7}, xs[4] = {4, 3, 8, 8}, xbad[4] = {4, 3, 8, 9};
    supcon_tensor *g = mk_f32(ctx, 2, gs, 0.1f), *gbad = mk_f32(ctx, 2, bad, 0.1f);
    supcon_tensor *gx = mk_f32(ctx, 4, xs, 0.0f), *gxbad = mk_f32(ctx, 4, xbad, 0.0f);
    supcon_tensor *x = mk_input(ctx, 4, 3, 8, 8, 1);
    assert_int_equal(supcon_model_backward(m, g, NULL, NULL), SUPCON_ERR_STATE); /* no forward */
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_backward(m, gbad, NULL, NULL), SUPCON_ERR_SHAPE);
    assert_int_equal(supcon_model_backward(m, g, NULL, gxbad), SUPCON_ERR_SHAPE);
    assert_int_equal(supcon_model_backward(m, NULL, g, NULL), SUPCON_ERR_STATE); /* no classifier */
    assert_non_null(strstr(supcon_context_last_error(ctx), "classifier"));
    assert_null(supcon_model_logits(m));
    assert_int_equal(supcon_model_backward(m, g, NULL, gx), SUPCON_OK);
    /* a mode change discards the forward */
    assert_int_equal(supcon_model_set_training(m, 0), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, NULL), SUPCON_ERR_STATE);
    /* grad_input must have the last forward's shape (another size re-plans) */
    assert_int_equal(supcon_model_forward(m, gxbad), SUPCON_OK);
    assert_int_equal(supcon_model_backward(m, g, NULL, gx), SUPCON_ERR_SHAPE);
    /* a failed forward discards the last one */
    assert_int_equal(supcon_model_forward(m, g), SUPCON_ERR_SHAPE);
    assert_int_equal(supcon_model_backward(m, g, NULL, NULL), SUPCON_ERR_STATE);
    supcon_tensor_free(g);
    supcon_tensor_free(gbad);
    supcon_tensor_free(gx);
    supcon_tensor_free(gxbad);
    supcon_tensor_free(x);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

static void test_cross_entropy_misuse(void **unused) {
    supcon_context *ctx = mk_ctx(1, 0);
    supcon_model_config mc = small_cfg(SUPCON_RESNET18, 2, SUPCON_HEAD_NONE, 3);
    supcon_model *m = mk(ctx, &mc);
    const int64_t ls[1] = {4}, l5[1] = {5}, gs[2] = {4, 3};
    supcon_tensor *labels = NULL, *labels5 = NULL, *flabels = mk_f32(ctx, 1, ls, 1.0f), *gl = mk_f32(ctx, 2, gs, 0.0f);
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_INT64, 1, ls, &labels), SUPCON_OK);
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_INT64, 1, l5, &labels5), SUPCON_OK);
    int64_t *lp = supcon_tensor_data(labels);
    for (int i = 0; i < 4; i++) lp[i] = i % 3;
    for (int i = 0; i < 5; i++) ((int64_t *)supcon_tensor_data(labels5))[i] = 0;
    float loss;
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, NULL, NULL, gl), SUPCON_ERR_STATE);
    supcon_tensor *x = mk_input(ctx, 4, 3, 8, 8, 1);
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_int_equal(supcon_model_cross_entropy(m, NULL, &loss, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_cross_entropy(m, labels, NULL, NULL, NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_model_cross_entropy(m, flabels, &loss, NULL, NULL, NULL), SUPCON_ERR_DTYPE);
    assert_int_equal(supcon_model_cross_entropy(m, labels5, &loss, NULL, NULL, NULL), SUPCON_ERR_SHAPE);
    lp[2] = 3; /* out of range */
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, NULL, NULL, gl), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "row 2"));
    lp[2] = -1;
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, NULL, NULL, gl), SUPCON_ERR_INVALID_ARGUMENT);
    lp[2] = 2;
    int64_t top1 = -1, top5 = -1;
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, &top1, &top5, gl), SUPCON_OK);
    assert_int_equal(top5, 4); /* 3 classes: every label is in the top 5 */
    assert_true(top1 >= 0 && top1 <= 4);
    supcon_model_free(m);
    /* a model without classifier */
    mc = small_cfg(SUPCON_RESNET18, 2, SUPCON_HEAD_MLP, 0);
    m = mk(ctx, &mc);
    assert_int_equal(supcon_model_forward(m, x), SUPCON_OK);
    assert_int_equal(supcon_model_cross_entropy(m, labels, &loss, NULL, NULL, NULL), SUPCON_ERR_STATE);
    supcon_model_free(m);
    supcon_tensor_free(labels);
    supcon_tensor_free(labels5);
    supcon_tensor_free(flabels);
    supcon_tensor_free(gl);
    supcon_tensor_free(x);
    supcon_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_match_pytorch), cmocka_unit_test(test_table_layout),
        cmocka_unit_test(test_init_distribution),   cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_zero_init_residual),  cmocka_unit_test(test_memory_plan),
        cmocka_unit_test(test_memory_resnet18_reference), cmocka_unit_test(test_frozen_encoder),
        cmocka_unit_test(test_create_misuse),       cmocka_unit_test(test_forward_misuse),
        cmocka_unit_test(test_nan_input_reaches_the_loss),
        cmocka_unit_test(test_backward_misuse),     cmocka_unit_test(test_cross_entropy_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
