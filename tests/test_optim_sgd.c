/* SGD: six steps against torch.optim.SGD itself (tests/fixtures/optim_sgd.txt: weight decay
 * and its exclusion, Nesterov, no momentum, dampening, a changing rate); parameters in one
 * flat buffer (few runs) and in separate allocations give the same bits; the fused kernel
 * against a plain float loop, split over threads; state saved and loaded mid-run continues
 * bit for bit; a model's parameters; misuse. Links the static archive for the run count. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "checkpoint/checkpoint_internal.h"
#include "optim/optim_internal.h"
#include "supcon/supcon.h"
#include "test_util.h"

#define NP 8

static tu_fixture fx;
static int64_t shape[NP][SUPCON_MAX_DIMS], ndim[NP], numel[NP], offs[NP + 1];

static int setup(void **unused) {
    if (tu_fixture_load(&fx, SUPCON_TEST_FIXTURES "/optim_sgd.txt") != 0) return -1;
    int k = tu_fixture_find(&fx, "shapes");
    if (k < 0 || fx.ntok[k] != NP) return -1;
    offs[0] = 0;
    for (int i = 0; i < NP; i++) {
        const char *t = fx.tok[k][i];
        ndim[i] = strtoll(t, (char **)&t, 10);
        numel[i] = 1;
        for (int d = 0; d < ndim[i]; d++) {
            shape[i][d] = strtoll(t + 1, (char **)&t, 10);
            numel[i] *= shape[i][d];
        }
        offs[i + 1] = offs[i] + numel[i];
    }
    return 0;
}

static int teardown(void **unused) {
    tu_fixture_free(&fx);
    return 0;
}

static supcon_context *make_ctx(int threads) {
    supcon_context_config c = supcon_context_config_default();
    c.backend = SUPCON_BACKEND_CPU;
    c.num_threads = threads;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&c, &ctx), SUPCON_OK);
    return ctx;
}

/* The fixture's five torch groups as four groups here (see gen_optim_fixtures.py). */
typedef struct rig {
    supcon_context *ctx;
    supcon_sgd *opt;
    float *w[NP], *g[NP];
    supcon_tensor *tw[NP], *tg[NP];
    float *flat_w, *flat_g; /* flat layout: both NULL when separate */
} rig;

static void rig_init(rig *r, int threads, int flat, const float *w0) {
    memset(r, 0, sizeof *r);
    r->ctx = make_ctx(threads);
    if (flat) {
        r->flat_w = aligned_alloc(64, 64 * ((size_t)offs[NP] * 4 / 64 + 1));
        r->flat_g = aligned_alloc(64, 64 * ((size_t)offs[NP] * 4 / 64 + 1));
    }
    for (int i = 0; i < NP; i++) {
        r->w[i] = flat ? r->flat_w + offs[i] : malloc(sizeof(float) * (size_t)numel[i]);
        r->g[i] = flat ? r->flat_g + offs[i] : malloc(sizeof(float) * (size_t)numel[i]);
        memcpy(r->w[i], w0 + offs[i], sizeof(float) * (size_t)numel[i]);
        assert_int_equal(supcon_tensor_wrap(r->ctx, SUPCON_FLOAT32, (int)ndim[i], shape[i], r->w[i], SUPCON_MEMORY_HOST,
                                            &r->tw[i]),
                         SUPCON_OK);
        assert_int_equal(supcon_tensor_wrap(r->ctx, SUPCON_FLOAT32, (int)ndim[i], shape[i], r->g[i], SUPCON_MEMORY_HOST,
                                            &r->tg[i]),
                         SUPCON_OK);
    }
    supcon_sgd_config c = supcon_sgd_config_default();
    c.learning_rate = 0.01;
    c.momentum = 0.9;
    c.weight_decay = 1e-4;
    assert_int_equal(supcon_sgd_create(r->ctx, &c, &r->opt), SUPCON_OK);
    int g1, g2, g3;
    c.learning_rate = 0.05, c.weight_decay = 5e-4, c.nesterov = 1;
    assert_int_equal(supcon_sgd_add_group(r->opt, &c, &g1), SUPCON_OK);
    c.learning_rate = 0.2, c.momentum = 0.0, c.weight_decay = 1e-4, c.nesterov = 0;
    assert_int_equal(supcon_sgd_add_group(r->opt, &c, &g2), SUPCON_OK);
    c.learning_rate = 0.03, c.momentum = 0.8, c.dampening = 0.1, c.weight_decay = 0.0;
    assert_int_equal(supcon_sgd_add_group(r->opt, &c, &g3), SUPCON_OK);
    assert_int_equal(g1 * 100 + g2 * 10 + g3, 123);
    const int group[NP] = {0, 0, 0, 0, 0, g1, g2, g3};
    const unsigned flags[NP] = {0, 0, SUPCON_SGD_NO_WEIGHT_DECAY, 0, SUPCON_SGD_NO_WEIGHT_DECAY, 0, 0, 0};
    for (int i = 0; i < NP; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.weight", i);
        assert_int_equal(supcon_sgd_add_param(r->opt, group[i], name, r->tw[i], r->tg[i], flags[i]), SUPCON_OK);
    }
    assert_int_equal(supcon_sgd_group_count(r->opt), 4);
    assert_int_equal(supcon_sgd_param_count(r->opt), NP);
}

static void rig_set_grads(rig *r, const float *g) {
    for (int i = 0; i < NP; i++) memcpy(r->g[i], g + offs[i], sizeof(float) * (size_t)numel[i]);
}

static void rig_get(const rig *r, float *w) {
    for (int i = 0; i < NP; i++) memcpy(w + offs[i], r->w[i], sizeof(float) * (size_t)numel[i]);
}

static void rig_free(rig *r) {
    supcon_sgd_free(r->opt);
    for (int i = 0; i < NP; i++) {
        supcon_tensor_free(r->tw[i]);
        supcon_tensor_free(r->tg[i]);
        if (!r->flat_w) free(r->w[i]), free(r->g[i]);
    }
    free(r->flat_w);
    free(r->flat_g);
    supcon_context_free(r->ctx);
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (fabs(b[i]) > 1 ? fabs(b[i]) : 1.0);
        if (d > m) m = d;
    }
    return m;
}

static void test_torch_fixture(void **unused) {
    const int64_t P = offs[NP];
    const int steps = (int)tu_fixture_int(&fx, "steps", 0);
    assert_int_equal(steps, 6);
    double lrs[6];
    assert_int_equal(tu_fixture_doubles(&fx, "lrs", lrs, 6), 6);
    float *w0 = malloc(sizeof(float) * (size_t)P), *g = malloc(sizeof(float) * (size_t)P);
    float *want = malloc(sizeof(float) * (size_t)P), *got = malloc(sizeof(float) * (size_t)P);
    float *got2 = malloc(sizeof(float) * (size_t)P);
    assert_int_equal(tu_fixture_floats(&fx, "w_init", w0, P), P);
    rig a, b;
    rig_init(&a, 3, 1, w0);
    rig_init(&b, 1, 0, w0);
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        char key[16];
        snprintf(key, sizeof key, "grad%d", s);
        assert_int_equal(tu_fixture_floats(&fx, key, g, P), P);
        rig_set_grads(&a, g);
        rig_set_grads(&b, g);
        assert_int_equal(supcon_sgd_set_group_learning_rate(a.opt, 0, lrs[s]), SUPCON_OK);
        assert_int_equal(supcon_sgd_set_group_learning_rate(b.opt, 0, lrs[s]), SUPCON_OK);
        assert_true(supcon_sgd_learning_rate(a.opt, 0) == lrs[s]);
        assert_int_equal(supcon_sgd_step(a.opt), SUPCON_OK);
        assert_int_equal(supcon_sgd_step(b.opt), SUPCON_OK);
        /* flat: p0+p1 | p2 (no decay) | p3 | p4 (no decay) | p5 | p6 | p7 */
        assert_int_equal(a.opt->last_runs, 7);
        snprintf(key, sizeof key, "w%d", s);
        assert_int_equal(tu_fixture_floats(&fx, key, want, P), P);
        rig_get(&a, got);
        rig_get(&b, got2);
        assert_memory_equal(got, got2, sizeof(float) * (size_t)P);
        double d = max_abs_diff(got, want, P);
        if (d > worst) worst = d;
        if (d > 1e-6) fail_msg("step %d: parameters differ from PyTorch by %g (relative)", s, d);
    }
    assert_int_equal(supcon_sgd_steps(a.opt), steps);
    /* momentum buffers, in parameter order, of every parameter whose group has momentum */
    float *bufs = malloc(sizeof(float) * (size_t)P);
    int64_t nb = 0;
    for (int i = 0; i < NP; i++) {
        if (i == 6) {
            assert_int_equal(supcon_sgd_get_momentum(a.opt, i, got, sizeof(float) * (size_t)numel[i]),
                             SUPCON_ERR_STATE);
            continue;
        }
        assert_int_equal(supcon_sgd_get_momentum(a.opt, i, bufs + nb, sizeof(float) * (size_t)numel[i]), SUPCON_OK);
        nb += numel[i];
    }
    assert_int_equal(tu_fixture_floats(&fx, "buf_final", want, nb), nb);
    double d = max_abs_diff(bufs, want, nb);
    if (d > 1e-6) fail_msg("momentum buffers differ from PyTorch by %g (relative)", d);
    print_message("largest relative difference from PyTorch: parameters %.3g, buffers %.3g\n", worst, d);
    rig_free(&a);
    rig_free(&b);
    free(w0), free(g), free(want), free(got), free(got2), free(bufs);
}

/* ---- The fused kernel against a plain loop ------------------------------------------------- */

typedef struct hp {
    float lr, wd, mu, keep;
    int nesterov;
} hp;

/* torch.optim.SGD's single-tensor path, one rounding per operation. */
static void ref_step(float *w, const float *g, float *buf, int64_t n, hp h, int first) {
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (h.wd != 0.0f) {
            const float t = h.wd * w[i];
            d = d + t;
        }
        if (h.mu != 0.0f) {
            if (first) {
                buf[i] = d;
            } else {
                const float a = h.mu * buf[i];
                const float c = h.keep * d;
                buf[i] = a + c;
            }
            if (h.nesterov) {
                const float t = h.mu * buf[i];
                d = d + t;
            } else {
                d = buf[i];
            }
        }
        const float t = h.lr * d;
        w[i] = w[i] - t;
    }
}

static void test_kernel_against_loop(void **unused) {
    const int64_t n = 300007; /* several pool chunks, an odd tail */
    const hp cases[] = {
        {0.1f, 1e-4f, 0.9f, 1.0f, 0}, {0.5f, 0.0f, 0.9f, 1.0f, 0}, {0.05f, 5e-4f, 0.9f, 1.0f, 1},
        {0.2f, 1e-4f, 0.0f, 1.0f, 0}, {0.03f, 0.0f, 0.8f, 0.9f, 0},
    };
    supcon_context *ctx = make_ctx(3);
    tu_rng r = tu_rng_seed(7);
    float *w = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
    float *rw = malloc(sizeof(float) * (size_t)n), *rb = malloc(sizeof(float) * (size_t)n);
    float *buf = malloc(sizeof(float) * (size_t)n);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        for (int64_t i = 0; i < n; i++) w[i] = (float)tu_normal(&r);
        memcpy(rw, w, sizeof(float) * (size_t)n);
        supcon_tensor *tw, *tg;
        assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &n, w, SUPCON_MEMORY_HOST, &tw), SUPCON_OK);
        assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &n, g, SUPCON_MEMORY_HOST, &tg), SUPCON_OK);
        supcon_sgd_config cfg = supcon_sgd_config_default();
        cfg.learning_rate = cases[c].lr;
        cfg.weight_decay = cases[c].wd;
        cfg.momentum = cases[c].mu;
        cfg.dampening = 1.0 - (double)cases[c].keep;
        cfg.nesterov = cases[c].nesterov;
        supcon_sgd *opt;
        assert_int_equal(supcon_sgd_create(ctx, &cfg, &opt), SUPCON_OK);
        assert_int_equal(supcon_sgd_add_param(opt, 0, "w", tw, tg, 0), SUPCON_OK);
        hp h = cases[c];
        h.keep = (float)(1.0 - cfg.dampening);
        for (int s = 0; s < 3; s++) {
            for (int64_t i = 0; i < n; i++) g[i] = (float)tu_normal(&r);
            assert_int_equal(supcon_sgd_step(opt), SUPCON_OK);
            ref_step(rw, g, rb, n, h, s == 0);
            if (memcmp(w, rw, sizeof(float) * (size_t)n) != 0) fail_msg("case %zu step %d: parameters differ", c, s);
            if (h.mu != 0.0f) {
                assert_int_equal(supcon_sgd_get_momentum(opt, 0, buf, sizeof(float) * (size_t)n), SUPCON_OK);
                if (memcmp(buf, rb, sizeof(float) * (size_t)n) != 0) fail_msg("case %zu step %d: buffers differ", c, s);
            }
        }
        supcon_sgd_free(opt);
        supcon_tensor_free(tw);
        supcon_tensor_free(tg);
    }
    free(w), free(g), free(rw), free(rb), free(buf);
    supcon_context_free(ctx);
}

/* ---- State: stop after 3 steps, save, load into a fresh optimiser, 3 more steps ------------- */

static void test_state_resume(void **unused) {
    const int64_t P = offs[NP];
    float *w0 = malloc(sizeof(float) * (size_t)P), *g = malloc(sizeof(float) * (size_t)P);
    float *x = malloc(sizeof(float) * (size_t)P), *y = malloc(sizeof(float) * (size_t)P);
    assert_int_equal(tu_fixture_floats(&fx, "w_init", w0, P), P);
    rig a, b;
    rig_init(&a, 2, 1, w0);
    tu_rng r = tu_rng_seed(3);
    float *grads = malloc(sizeof(float) * (size_t)P * 6);
    for (int64_t i = 0; i < P * 6; i++) grads[i] = (float)tu_normal(&r);
    for (int s = 0; s < 3; s++) {
        rig_set_grads(&a, grads + s * P);
        assert_int_equal(supcon_sgd_set_learning_rate(a.opt, 0.1 + 0.01 * s), SUPCON_OK);
        assert_int_equal(supcon_sgd_step(a.opt), SUPCON_OK);
    }
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(a.ctx, &st), SUPCON_OK);
    assert_int_equal(supcon_sgd_save_state(a.opt, st), SUPCON_OK);
    assert_int_equal(supcon_safetensors_count(st), NP - 1); /* p6 has no momentum */
    assert_string_equal(supcon_safetensors_metadata(st, "optimizer.steps"), "3");
    assert_string_equal(supcon_safetensors_metadata(st, "optimizer.group.3.dampening"), "0.10000000000000001");
    /* saving twice into one file is refused, and changes nothing */
    assert_int_equal(supcon_sgd_save_state(a.opt, st), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_count(st), NP - 1);
    /* through a file, so the loaded buffers come from disk */
    char path[] = "/tmp/supcon_sgd_state_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(supcon_safetensors_save(st, path), SUPCON_OK);
    supcon_safetensors_free(st);

    rig_get(&a, x);
    rig_init(&b, 1, 0, x); /* the parameters as they are at the stop, other layout */
    assert_int_equal(supcon_safetensors_load(b.ctx, path, NULL, &st), SUPCON_OK);
    unlink(path);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_OK);
    supcon_safetensors_free(st);
    assert_int_equal(supcon_sgd_steps(b.opt), 3);
    assert_true(supcon_sgd_learning_rate(b.opt, 0) == 0.1 + 0.01 * 2);
    for (int s = 3; s < 6; s++) {
        rig_set_grads(&a, grads + s * P);
        rig_set_grads(&b, grads + s * P);
        assert_int_equal(supcon_sgd_set_learning_rate(a.opt, 0.1 + 0.01 * s), SUPCON_OK);
        assert_int_equal(supcon_sgd_set_learning_rate(b.opt, 0.1 + 0.01 * s), SUPCON_OK);
        assert_int_equal(supcon_sgd_step(a.opt), SUPCON_OK);
        assert_int_equal(supcon_sgd_step(b.opt), SUPCON_OK);
        rig_get(&a, x);
        rig_get(&b, y);
        assert_memory_equal(x, y, sizeof(float) * (size_t)P);
    }
    for (int i = 0; i < NP; i++) {
        if (i == 6) continue;
        assert_int_equal(supcon_sgd_get_momentum(a.opt, i, x, sizeof(float) * (size_t)numel[i]), SUPCON_OK);
        assert_int_equal(supcon_sgd_get_momentum(b.opt, i, y, sizeof(float) * (size_t)numel[i]), SUPCON_OK);
        assert_memory_equal(x, y, sizeof(float) * (size_t)numel[i]);
    }
    rig_free(&a);
    rig_free(&b);
    free(w0), free(g), free(x), free(y), free(grads);
}

/* Loading is strict and all or nothing. */
static void test_state_errors(void **unused) {
    const int64_t P = offs[NP];
    float *w0 = calloc((size_t)P, sizeof(float));
    rig a, b;
    rig_init(&a, 1, 1, w0);
    rig_init(&b, 1, 1, w0);
    memset(a.flat_g, 0, sizeof(float) * (size_t)P);
    assert_int_equal(supcon_sgd_step(a.opt), SUPCON_OK);
    supcon_safetensors *good, *st;
    assert_int_equal(supcon_safetensors_create(a.ctx, &good), SUPCON_OK);
    assert_int_equal(supcon_sgd_save_state(a.opt, good), SUPCON_OK);
    unsigned char *bytes;
    size_t size;
    assert_int_equal(sc_st_serialize(good, &bytes, &size), SUPCON_OK);

    /* no state at all */
    assert_int_equal(supcon_safetensors_create(b.ctx, &st), SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(b.ctx), "optimizer.steps"));
    /* a missing buffer is named */
    assert_int_equal(supcon_safetensors_set_metadata(st, "optimizer.steps", "1"), SUPCON_OK);
    for (int64_t i = 0; i < supcon_safetensors_metadata_count(good); i++)
        supcon_safetensors_set_metadata(st, supcon_safetensors_metadata_key(good, i),
                                        supcon_safetensors_metadata_value(good, i));
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(b.ctx), "optimizer.momentum_buffer.p0.weight"));
    /* an extra buffer is named */
    supcon_safetensors_free(st);
    assert_int_equal(supcon_safetensors_parse(b.ctx, bytes, size, NULL, &st), SUPCON_OK);
    const int64_t one = 1;
    const float z = 0;
    assert_int_equal(supcon_safetensors_add(st, "optimizer.momentum_buffer.nothing", SUPCON_FLOAT32, 1, &one, &z, 4),
                     SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(b.ctx), "nothing"));
    supcon_safetensors_free(st);
    /* a buffer of the wrong shape; names with "module." match */
    assert_int_equal(supcon_safetensors_create(b.ctx, &st), SUPCON_OK);
    for (int64_t i = 0; i < supcon_safetensors_metadata_count(good); i++)
        supcon_safetensors_set_metadata(st, supcon_safetensors_metadata_key(good, i),
                                        supcon_safetensors_metadata_value(good, i));
    for (int64_t i = 0; i < supcon_safetensors_count(good); i++) {
        const char *n = supcon_safetensors_name(good, i);
        char nn[128];
        snprintf(nn, sizeof nn, "optimizer.momentum_buffer.module.%s", n + strlen("optimizer.momentum_buffer."));
        int64_t sh[SUPCON_MAX_DIMS];
        int nd = supcon_safetensors_ndim(good, i);
        for (int d = 0; d < nd; d++) sh[d] = supcon_safetensors_dim(good, i, d);
        if (strcmp(n, "optimizer.momentum_buffer.p7.weight") == 0) sh[0] = 1, sh[1] = 9;
        assert_int_equal(supcon_safetensors_add(st, nn, SUPCON_FLOAT32, nd, sh, supcon_safetensors_data(good, i),
                                                supcon_safetensors_bytes(good, i)),
                         SUPCON_OK);
    }
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(b.ctx), "p7.weight"));
    assert_int_equal(supcon_sgd_steps(b.opt), 0); /* nothing changed */
    supcon_safetensors_free(st);
    /* group count differs */
    assert_int_equal(supcon_safetensors_parse(b.ctx, bytes, size, NULL, &st), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "optimizer.groups", "5"), SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_FORMAT);
    assert_int_equal(supcon_safetensors_set_metadata(st, "optimizer.groups", "4"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "optimizer.group.2.lr", "fast"), SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(b.ctx), "optimizer.group.2.lr"));
    supcon_safetensors_free(st);
    /* and the good one loads */
    assert_int_equal(supcon_safetensors_parse(b.ctx, bytes, size, NULL, &st), SUPCON_OK);
    assert_int_equal(supcon_sgd_load_state(b.opt, st), SUPCON_OK);
    assert_int_equal(supcon_sgd_steps(b.opt), 1);
    supcon_safetensors_free(st);
    supcon_safetensors_free(good);
    free(bytes);
    rig_free(&a);
    rig_free(&b);
    free(w0);
}

static void test_misuse(void **unused) {
    supcon_context *ctx = make_ctx(1), *other = make_ctx(1);
    supcon_sgd *opt = NULL;
    supcon_sgd_config c = supcon_sgd_config_default();
    assert_int_equal(supcon_sgd_create(NULL, &c, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_create(ctx, &c, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_sgd_config b = c;
    b.struct_size = 1;
    assert_int_equal(supcon_sgd_create(ctx, &b, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(opt);
    b = c, b.momentum = -0.1;
    assert_int_equal(supcon_sgd_create(ctx, &b, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.learning_rate = INFINITY;
    assert_int_equal(supcon_sgd_create(ctx, &b, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.nesterov = 1, b.dampening = 0.1;
    assert_int_equal(supcon_sgd_create(ctx, &b, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "Nesterov"));
    b = c, b.nesterov = 1, b.momentum = 0;
    assert_int_equal(supcon_sgd_create(ctx, &b, &opt), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_create(ctx, NULL, &opt), SUPCON_OK);

    float wbuf[16] = {0}, gbuf[16] = {0};
    int32_t ibuf[4];
    const int64_t s4 = 4, s8 = 8, s3 = 3;
    supcon_tensor *w, *g, *g3, *wi, *wo, *wover, *wx;
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s4, wbuf, SUPCON_MEMORY_HOST, &w), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s4, gbuf, SUPCON_MEMORY_HOST, &g), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s3, gbuf + 4, SUPCON_MEMORY_HOST, &g3), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_INT32, 1, &s4, ibuf, SUPCON_MEMORY_HOST, &wi), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(other, SUPCON_FLOAT32, 1, &s4, wbuf + 8, SUPCON_MEMORY_HOST, &wo), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s8, wbuf + 2, SUPCON_MEMORY_HOST, &wover), SUPCON_OK);
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s4, wbuf + 12, SUPCON_MEMORY_HOST, &wx), SUPCON_OK);

    assert_int_equal(supcon_sgd_add_param(opt, 0, "", w, g, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", NULL, g, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 1, "w", w, g, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", w, g, 0x80), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", wi, g, 0), SUPCON_ERR_DTYPE);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", wo, g, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", w, g3, 0), SUPCON_ERR_SHAPE);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", w, w, 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", w, g, 0), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", wx, g3, 0), SUPCON_ERR_SHAPE);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "w", wx, g, 0), SUPCON_ERR_INVALID_ARGUMENT); /* name used */
    assert_int_equal(supcon_sgd_add_param(opt, 0, "v", wover, wover, 0), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_tensor *gx;
    int64_t s8b = 8;
    assert_int_equal(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 1, &s8b, gbuf + 8, SUPCON_MEMORY_HOST, &gx), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_param(opt, 0, "v", wover, gx, 0), SUPCON_ERR_INVALID_ARGUMENT); /* overlaps w */
    assert_non_null(strstr(supcon_context_last_error(ctx), "shares memory with parameter 'w'"));
    float m[4];
    assert_int_equal(supcon_sgd_get_momentum(opt, 0, m, sizeof m), SUPCON_ERR_STATE);
    assert_int_equal(supcon_sgd_get_momentum(opt, 1, m, sizeof m), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_set_learning_rate(opt, -1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_set_group_learning_rate(opt, 3, 0.1), SUPCON_ERR_INVALID_ARGUMENT);
    assert_true(supcon_sgd_learning_rate(opt, 5) == -1.0);
    assert_int_equal(supcon_sgd_step(opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_get_momentum(opt, 0, m, 8), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_get_momentum(opt, 0, m, sizeof m), SUPCON_OK);
    /* the list is fixed after the first step */
    assert_int_equal(supcon_sgd_add_param(opt, 0, "x", wx, gx, 0), SUPCON_ERR_STATE);
    int grp;
    assert_int_equal(supcon_sgd_add_group(opt, &c, &grp), SUPCON_ERR_STATE);
    assert_null(supcon_sgd_param_name(opt, 1));
    assert_string_equal(supcon_sgd_param_name(opt, 0), "w");
    supcon_sgd_free(opt);
    supcon_sgd_free(NULL);
    assert_int_equal(supcon_sgd_step(NULL), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_tensor *all[] = {w, g, g3, wi, wo, wover, wx, gx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) supcon_tensor_free(all[i]);
    supcon_context_free(ctx);
    supcon_context_free(other);
}

/* A model's table: one run for all trainable parameters; the classifier alone when frozen. */
static void test_model_params(void **unused) {
    supcon_context *ctx = make_ctx(2);
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = 4;
    mc.num_classes = 5;
    supcon_model *m = NULL;
    if (supcon_model_create(ctx, &mc, &m) != SUPCON_OK) {
        supcon_context_free(ctx);
        skip(); /* the models are not built in this tree yet */
    }
    supcon_sgd *opt;
    assert_int_equal(supcon_sgd_create(ctx, NULL, &opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_model(opt, 0, m, NULL, 0), SUPCON_OK);
    int64_t trainable = 0;
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_param_info *p = supcon_model_param(m, i);
        trainable += p->kind == SUPCON_PARAM_PARAMETER && p->trainable;
    }
    assert_int_equal(supcon_sgd_param_count(opt), trainable);
    assert_string_equal(supcon_sgd_param_name(opt, 0), "encoder.conv1.weight");
    assert_int_equal(supcon_model_zero_grad(m), SUPCON_OK);
    assert_int_equal(supcon_sgd_step(opt), SUPCON_OK);
    assert_int_equal(opt->last_runs, 1);
    supcon_sgd_free(opt);

    /* biases and BN weights without decay: more runs, same parameters */
    assert_int_equal(supcon_sgd_create(ctx, NULL, &opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_model(opt, 0, m, NULL, SUPCON_SGD_NO_WEIGHT_DECAY_1D), SUPCON_OK);
    assert_int_equal(supcon_sgd_step(opt), SUPCON_OK);
    assert_true(opt->last_runs > 1);
    supcon_sgd_free(opt);

    /* linear evaluation: the classifier alone */
    assert_int_equal(supcon_model_set_encoder_frozen(m, 1), SUPCON_OK);
    assert_int_equal(supcon_sgd_create(ctx, NULL, &opt), SUPCON_OK);
    assert_int_equal(supcon_sgd_add_model(opt, 0, m, "fc.", 0), SUPCON_OK);
    assert_int_equal(supcon_sgd_param_count(opt), 2);
    assert_string_equal(supcon_sgd_param_name(opt, 0), "fc.weight");
    assert_int_equal(supcon_sgd_add_model(opt, 0, m, "encoder.", 0), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_sgd_param_count(opt), 2);
    supcon_sgd_free(opt);
    supcon_model_free(m);
    supcon_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_fixture), cmocka_unit_test(test_kernel_against_loop),
        cmocka_unit_test(test_state_resume), cmocka_unit_test(test_state_errors),
        cmocka_unit_test(test_misuse),       cmocka_unit_test(test_model_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
