/* Context, status and version API: creation and its errors, backend choice from the
 * environment, last-error messages per context and per thread, the log callback, memory
 * accounting. Public API only. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <supcon/supcon.h>

static void test_status_names(void **st) {
    assert_string_equal(supcon_status_string(SUPCON_OK), "success");
    assert_string_equal(supcon_status_name(SUPCON_ERR_SHAPE), "ERR_SHAPE");
    assert_string_equal(supcon_status_string((supcon_status)999), "unknown status");
    for (int s = 1; s <= SUPCON_ERR_INTERNAL; s++) {
        assert_true(strlen(supcon_status_string((supcon_status)s)) > 3);
        assert_memory_equal(supcon_status_name((supcon_status)s), "ERR_", 4);
    }
}

static void test_version(void **st) {
    assert_int_equal(supcon_version_number(), SUPCON_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SUPCON_VERSION_MAJOR, SUPCON_VERSION_MINOR, SUPCON_VERSION_PATCH);
    assert_string_equal(supcon_version_string(), want);
}

static void test_create_cpu(void **st) {
    supcon_context_config cfg = supcon_context_config_default();
    assert_int_equal(cfg.struct_size, sizeof cfg);
    cfg.backend = SUPCON_BACKEND_CPU;
    cfg.num_threads = 3;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_backend(ctx), SUPCON_BACKEND_CPU);
    assert_string_equal(supcon_context_backend_name(ctx), "cpu");
    assert_string_equal(supcon_context_last_error(ctx), "");
    supcon_context_free(ctx);
    supcon_context_free(NULL);
}

static void test_bad_configs(void **st) {
    supcon_context *ctx = (supcon_context *)1;
    assert_int_equal(supcon_context_create(NULL, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "out"));
    supcon_context_config cfg = supcon_context_config_default();
    cfg.struct_size = 0;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(ctx);
    assert_non_null(strstr(supcon_context_last_error(NULL), "struct_size"));
    cfg = supcon_context_config_default();
    cfg.num_threads = -2;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "num_threads"));
    cfg = supcon_context_config_default();
    cfg.backend = (supcon_backend_kind)42;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "backend"));
    cfg = supcon_context_config_default();
    cfg.log_level = (supcon_log_level)9;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    cfg = supcon_context_config_default();
    cfg.precision = (supcon_precision)3;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "precision"));
    cfg.precision = (supcon_precision)-1;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
}

/* TF32 is a permission: the CPU takes it and computes in float32. BF16 is taken too (its
 * arithmetic is test_ops_bf16's and test_model_bf16's). A caller built against the first 0.1 layout (ending at log_level, its padding unset) gets FP32 whatever lies past it. */
static void test_precision(void **st) {
    supcon_context_config cfg = supcon_context_config_default();
    assert_int_equal(cfg.precision, SUPCON_PRECISION_FP32);
    cfg.backend = SUPCON_BACKEND_CPU;
    cfg.precision = SUPCON_PRECISION_TF32;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_precision(ctx), SUPCON_PRECISION_TF32);
    supcon_context_free(ctx);
    cfg.precision = SUPCON_PRECISION_BF16;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_precision(ctx), SUPCON_PRECISION_BF16);
    supcon_context_free(ctx);

    cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CPU;
    cfg.struct_size = offsetof(supcon_context_config, reserved_) + sizeof(int);
    cfg.reserved_ = 0x5a5a5a5a;
    cfg.precision = (supcon_precision)77; /* past the old struct: never read */
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_precision(ctx), SUPCON_PRECISION_FP32);
    supcon_context_free(ctx);
}

static void test_backend_from_environment(void **st) {
    supcon_context *ctx = NULL;
    setenv("SUPCON_BACKEND", "cpu", 1);
    assert_int_equal(supcon_context_create(NULL, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_backend(ctx), SUPCON_BACKEND_CPU);
    supcon_context_free(ctx);
    setenv("SUPCON_BACKEND", "tpu", 1);
    assert_int_equal(supcon_context_create(NULL, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "SUPCON_BACKEND"));
    unsetenv("SUPCON_BACKEND");
}

static void test_missing_cuda_module_is_an_error(void **st) {
    setenv("SUPCON_CUDA_MODULE", "/nonexistent/libsupcon_cuda.so", 1);
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CUDA;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_BACKEND_UNAVAILABLE);
    assert_null(ctx);
    assert_non_null(strstr(supcon_context_last_error(NULL), "CUDA backend module could not be loaded"));
    /* AUTO falls back to the CPU quietly. */
    assert_int_equal(supcon_context_create(NULL, &ctx), SUPCON_OK);
    assert_int_equal(supcon_context_backend(ctx), SUPCON_BACKEND_CPU);
    supcon_context_free(ctx);
    unsetenv("SUPCON_CUDA_MODULE");
}

/* A module whose table the core must refuse: the context fails with the core's reason and
 * the module's init never runs (it would answer ERR_INTERNAL). */
static void expect_refused_module(const char *path, const char *reason) {
    setenv("SUPCON_CUDA_MODULE", path, 1);
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CUDA;
    supcon_context *ctx = NULL;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_BACKEND_UNAVAILABLE);
    assert_null(ctx);
    if (!strstr(supcon_context_last_error(NULL), reason))
        fail_msg("expected \"%s\" in: %s", reason, supcon_context_last_error(NULL));
    unsetenv("SUPCON_CUDA_MODULE");
}

static void test_module_of_another_abi_is_refused(void **st) {
    (void)st;
    expect_refused_module(SUPCON_TEST_FAKE_WRONG_ABI, "was built for backend ABI");
}

static void test_module_with_some_stage_slots_is_refused(void **st) {
    (void)st;
    expect_refused_module(SUPCON_TEST_FAKE_PARTIAL_STAGES, "fills 1 of the 4 staged-upload slots");
}

typedef struct {
    int calls;
    char last[256];
} log_sink;

static void on_log(void *user, supcon_log_level level, const char *msg) {
    log_sink *s = user;
    s->calls++;
    snprintf(s->last, sizeof s->last, "%s", msg);
}

static void test_log_callback_and_errors(void **st) {
    log_sink sink = {0, ""};
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CPU;
    cfg.log_fn = on_log;
    cfg.log_user = &sink;
    cfg.log_level = SUPCON_LOG_ERROR;
    supcon_context *a = NULL, *b = NULL;
    assert_int_equal(supcon_context_create(&cfg, &a), SUPCON_OK);
    assert_int_equal(sink.calls, 0); /* INFO lines are below the level asked for */
    cfg.log_fn = NULL;
    assert_int_equal(supcon_context_create(&cfg, &b), SUPCON_OK);
    supcon_tensor *t = NULL;
    int64_t shape[1] = {-1};
    assert_int_equal(supcon_tensor_create(a, SUPCON_FLOAT32, 1, shape, &t), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(sink.calls, 1);
    assert_non_null(strstr(sink.last, "negative"));
    assert_non_null(strstr(supcon_context_last_error(a), "negative"));
    assert_string_equal(supcon_context_last_error(b), ""); /* contexts do not share errors */
    supcon_context_free(a);
    supcon_context_free(b);
}

static void *fail_in_thread(void *arg) {
    supcon_context_create(NULL, NULL);
    return NULL;
}

static void test_thread_local_error(void **st) {
    supcon_context_config cfg = supcon_context_config_default();
    cfg.struct_size = 1;
    supcon_context *ctx;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_ERR_INVALID_ARGUMENT);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fail_in_thread, NULL), 0);
    pthread_join(th, NULL);
    /* The other thread's failure ("out is NULL") did not replace ours. */
    assert_non_null(strstr(supcon_context_last_error(NULL), "struct_size"));
}

static void test_memory_accounting(void **st) {
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CPU;
    supcon_context *ctx;
    assert_int_equal(supcon_context_create(&cfg, &ctx), SUPCON_OK);
    size_t base = supcon_context_bytes_in_use(ctx);
    int64_t shape[2] = {100, 10};
    supcon_tensor *t;
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 2, shape, &t), SUPCON_OK);
    assert_int_equal(supcon_context_bytes_in_use(ctx), base + 4000);
    assert_true(supcon_context_peak_bytes(ctx) >= base + 4000);
    supcon_tensor_free(t);
    assert_int_equal(supcon_context_bytes_in_use(ctx), base);
    supcon_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_create_cpu),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_precision),
        cmocka_unit_test(test_backend_from_environment),
        cmocka_unit_test(test_missing_cuda_module_is_an_error),
        cmocka_unit_test(test_module_of_another_abi_is_refused),
        cmocka_unit_test(test_module_with_some_stage_slots_is_refused),
        cmocka_unit_test(test_log_callback_and_errors),
        cmocka_unit_test(test_thread_local_error),
        cmocka_unit_test(test_memory_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
