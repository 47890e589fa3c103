/* Tensors on the CPU backend: create / wrap / upload / download round trips, accessors,
 * sizes, memory accounting, and the error paths of tensor creation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "supcon/tensor.h"
#include "test_cmocka_context.h"
#include "test_util.h"


static void test_create_accessors(void **state) {
    (void)state;
    static const supcon_dtype dts[3] = {SUPCON_FLOAT32, SUPCON_INT32, SUPCON_INT64};
    static const size_t esz[3] = {4, 4, 8};
    int64_t shape[4] = {2, 3, 5, 7};
    for (int k = 0; k < 3; k++) {
        supcon_tensor *t = NULL;
        assert_int_equal(supcon_tensor_create(g_ctx, dts[k], 4, shape, &t), SUPCON_OK);
        assert_non_null(t);
        assert_int_equal(supcon_tensor_dtype(t), dts[k]);
        assert_int_equal(supcon_tensor_ndim(t), 4);
        for (int i = 0; i < 4; i++) assert_int_equal(supcon_tensor_dim(t, i), shape[i]);
        assert_int_equal(supcon_tensor_dim(t, 4), -1);
        assert_int_equal(supcon_tensor_dim(t, -1), -1);
        assert_int_equal(supcon_tensor_dim(t, SUPCON_MAX_DIMS), -1);
        assert_int_equal(supcon_tensor_numel(t), 210);
        assert_int_equal(supcon_tensor_bytes(t), 210 * esz[k]);
        assert_int_equal(supcon_tensor_memory(t), SUPCON_MEMORY_HOST);
        assert_non_null(supcon_tensor_data(t));
        /* aligned to the element size at least */
        assert_int_equal((uintptr_t)supcon_tensor_data(t) % esz[k], 0);
        supcon_tensor_free(t);
    }
    /* the shape is copied, not kept */
    int64_t s2[2] = {4, 6};
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, s2, &t), SUPCON_OK);
    s2[0] = 99;
    assert_int_equal(supcon_tensor_dim(t, 0), 4);
    supcon_tensor_free(t);
}

static void test_scalar_and_empty(void **state) {
    (void)state;
    supcon_tensor *t = NULL;
    /* ndim 0: a scalar of one element */
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 0, NULL, &t), SUPCON_OK);
    assert_int_equal(supcon_tensor_ndim(t), 0);
    assert_int_equal(supcon_tensor_numel(t), 1);
    assert_int_equal(supcon_tensor_bytes(t), 4);
    float one = 3.5f, back = 0;
    assert_int_equal(supcon_tensor_upload(t, &one, 4), SUPCON_OK);
    assert_int_equal(supcon_tensor_download(t, &back, 4), SUPCON_OK);
    assert_true(back == 3.5f);
    supcon_tensor_free(t);
    /* a zero extent: no elements, copies of 0 bytes succeed */
    int64_t s[3] = {4, 0, 3};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_INT64, 3, s, &t), SUPCON_OK);
    assert_int_equal(supcon_tensor_numel(t), 0);
    assert_int_equal(supcon_tensor_bytes(t), 0);
    assert_int_equal(supcon_tensor_dim(t, 1), 0);
    int64_t dummy = 0;
    assert_int_equal(supcon_tensor_upload(t, &dummy, 0), SUPCON_OK);
    assert_int_equal(supcon_tensor_download(t, &dummy, 0), SUPCON_OK);
    supcon_tensor_free(t);
}

static void test_upload_download_round_trip(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(42);
    int64_t shape[2] = {17, 33};
    const size_t n = 17 * 33;
    float *src = malloc(n * sizeof(float)), *dst = malloc(n * sizeof(float));
    int64_t *isrc = malloc(n * sizeof(int64_t)), *idst = malloc(n * sizeof(int64_t));
    assert_true(src && dst && isrc && idst);
    for (size_t i = 0; i < n; i++) {
        src[i] = (float)tu_normal(&r);
        isrc[i] = (int64_t)(tu_next(&r) >> 1) * ((i & 1) ? -1 : 1);
    }
    supcon_tensor *t = NULL, *ti = NULL;
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, shape, &t), SUPCON_OK);
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_INT64, 2, shape, &ti), SUPCON_OK);
    assert_int_equal(supcon_tensor_upload(t, src, n * sizeof(float)), SUPCON_OK);
    assert_int_equal(supcon_tensor_upload(ti, isrc, n * sizeof(int64_t)), SUPCON_OK);
    memset(dst, 0, n * sizeof(float));
    assert_int_equal(supcon_tensor_download(t, dst, n * sizeof(float)), SUPCON_OK);
    assert_memory_equal(src, dst, n * sizeof(float));
    assert_int_equal(supcon_tensor_download(ti, idst, n * sizeof(int64_t)), SUPCON_OK);
    assert_memory_equal(isrc, idst, n * sizeof(int64_t));
    /* the CPU backend's data pointer is the host memory itself */
    assert_memory_equal(supcon_tensor_data(t), src, n * sizeof(float));
    /* the upload copied: changing the source afterwards does not change the tensor */
    src[5] += 1.0f;
    assert_int_equal(supcon_tensor_download(t, dst, n * sizeof(float)), SUPCON_OK);
    assert_true(dst[5] != src[5]);
    supcon_tensor_free(t);
    supcon_tensor_free(ti);
    free(src), free(dst), free(isrc), free(idst);
}

static void test_wrap(void **state) {
    (void)state;
    int32_t buf[24];
    for (int i = 0; i < 24; i++) buf[i] = i * 3 - 7;
    int64_t shape[3] = {2, 3, 4};
    supcon_tensor *t = NULL;
    size_t before = supcon_context_bytes_in_use(g_ctx);
    assert_int_equal(supcon_tensor_wrap(g_ctx, SUPCON_INT32, 3, shape, buf, SUPCON_MEMORY_HOST, &t),
                     SUPCON_OK);
    assert_ptr_equal(supcon_tensor_data(t), buf);
    assert_int_equal(supcon_tensor_numel(t), 24);
    assert_int_equal(supcon_tensor_bytes(t), 96);
    assert_int_equal(supcon_tensor_dtype(t), SUPCON_INT32);
    assert_int_equal(supcon_tensor_memory(t), SUPCON_MEMORY_HOST);
    /* wrapping allocates no tensor memory */
    assert_int_equal(supcon_context_bytes_in_use(g_ctx), before);
    int32_t out[24];
    assert_int_equal(supcon_tensor_download(t, out, sizeof out), SUPCON_OK);
    assert_memory_equal(out, buf, sizeof out);
    /* an upload writes straight into the caller's memory */
    for (int i = 0; i < 24; i++) out[i] = 100 + i;
    assert_int_equal(supcon_tensor_upload(t, out, sizeof out), SUPCON_OK);
    assert_int_equal(buf[0], 100);
    assert_int_equal(buf[23], 123);
    supcon_tensor_free(t); /* must not free buf (stack memory: a free() would crash) */
    buf[0] = 1;
    assert_int_equal(buf[0], 1);
    /* misaligned data is refused */
    union {
        double align;
        char bytes[128];
    } raw;
    t = NULL;
    supcon_status s =
        supcon_tensor_wrap(g_ctx, SUPCON_FLOAT32, 3, shape, raw.bytes + 1, SUPCON_MEMORY_HOST, &t);
    assert_int_equal(s, SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(t);
}

static void test_bytes_accounting(void **state) {
    (void)state;
    size_t before = supcon_context_bytes_in_use(g_ctx);
    int64_t shape[2] = {100, 1000};
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, shape, &t), SUPCON_OK);
    assert_true(supcon_context_bytes_in_use(g_ctx) >= before + 400000);
    assert_true(supcon_context_peak_bytes(g_ctx) >= before + 400000);
    supcon_tensor_free(t);
    assert_int_equal(supcon_context_bytes_in_use(g_ctx), before);
    assert_true(supcon_context_peak_bytes(g_ctx) >= before + 400000);
}

static void test_create_errors(void **state) {
    (void)state;
    int64_t shape[SUPCON_MAX_DIMS + 1];
    for (int i = 0; i <= SUPCON_MAX_DIMS; i++) shape[i] = 1;
    supcon_tensor *t = NULL;
    /* SUPCON_MAX_DIMS itself is fine */
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, SUPCON_MAX_DIMS, shape, &t), SUPCON_OK);
    assert_int_equal(supcon_tensor_ndim(t), SUPCON_MAX_DIMS);
    supcon_tensor_free(t);
    t = NULL;
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, SUPCON_MAX_DIMS + 1, shape, &t),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(t);
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, -1, shape, &t), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 2, NULL, &t), SUPCON_ERR_INVALID_ARGUMENT);
    int64_t neg[3] = {2, -1, 3};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 3, neg, &t), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(t);
    /* element count overflow, and byte count overflow of an element count that fits */
    int64_t over[3] = {INT64_C(1) << 32, INT64_C(1) << 32, 4};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 3, over, &t), SUPCON_ERR_INVALID_ARGUMENT);
    int64_t big[1] = {INT64_MAX};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_INT64, 1, big, &t), SUPCON_ERR_INVALID_ARGUMENT);
    int64_t bytes_over[1] = {(INT64_C(1) << 62) + 1};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 1, bytes_over, &t),
                     SUPCON_ERR_INVALID_ARGUMENT);
    /* an overflow hidden behind a zero extent is no overflow: numel is 0 */
    int64_t zero_big[3] = {0, INT64_MAX, INT64_MAX};
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 3, zero_big, &t), SUPCON_OK);
    assert_int_equal(supcon_tensor_numel(t), 0);
    supcon_tensor_free(t);
    t = NULL;
    assert_int_equal(supcon_tensor_create(g_ctx, (supcon_dtype)3, 1, shape, &t), SUPCON_ERR_DTYPE);
    assert_int_equal(supcon_tensor_create(g_ctx, (supcon_dtype)-1, 1, shape, &t), SUPCON_ERR_DTYPE);
    assert_null(t);
    assert_int_equal(supcon_tensor_create(NULL, SUPCON_FLOAT32, 1, shape, &t), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 1, shape, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    /* wrap shares the checks */
    float x[4];
    assert_int_equal(supcon_tensor_wrap(g_ctx, SUPCON_FLOAT32, 3, neg, x, SUPCON_MEMORY_HOST, &t),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_tensor_wrap(g_ctx, SUPCON_FLOAT32, 1, shape, x, SUPCON_MEMORY_DEVICE, &t),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(t);
    /* the failures left accounting alone and a message behind */
    assert_true(strlen(supcon_context_last_error(g_ctx)) > 0);
}

static void test_two_contexts_independent(void **state) {
    (void)state;
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = 1;
    supcon_context *other = NULL;
    assert_int_equal(supcon_context_create(&cc, &other), SUPCON_OK);
    size_t mine = supcon_context_bytes_in_use(g_ctx);
    int64_t shape[1] = {1024};
    supcon_tensor *t = NULL;
    assert_int_equal(supcon_tensor_create(other, SUPCON_FLOAT32, 1, shape, &t), SUPCON_OK);
    assert_int_equal(supcon_context_bytes_in_use(g_ctx), mine);
    assert_true(supcon_context_bytes_in_use(other) >= 4096);
    /* an error on one context leaves the other's message alone */
    const char *before = supcon_context_last_error(g_ctx);
    char saved[256];
    snprintf(saved, sizeof saved, "%s", before);
    assert_int_equal(supcon_tensor_upload(t, shape, 3), SUPCON_ERR_INVALID_ARGUMENT);
    assert_true(strlen(supcon_context_last_error(other)) > 0);
    assert_string_equal(supcon_context_last_error(g_ctx), saved);
    supcon_tensor_free(t);
    supcon_context_free(other);
}

static int setup(void **state) {
    (void)state;
    return tu_open_cpu_context(1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_accessors),
        cmocka_unit_test(test_scalar_and_empty),
        cmocka_unit_test(test_upload_download_round_trip),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_bytes_accounting),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_two_contexts_independent),
    };
    return cmocka_run_group_tests(tests, setup, teardown) ? 1 : 0;
}
