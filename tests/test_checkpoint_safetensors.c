/* Safetensors files: round trips of every dtype, scalars, empty tensors, odd names and
 * metadata; the exact bytes of a small file; a file laid out as Python's library writes it
 * (tests/fixtures/st_reference.safetensors); names with "module."; the tensor bridge; and
 * hostile input: some fifty malformed headers, every truncation and thousands of random
 * mutations of a valid file, each a clear status and never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "checkpoint/checkpoint_internal.h"
#include "supcon/supcon.h"
#include "test_util.h"

static supcon_context *ctx;

static int setup(void **unused) {
    supcon_context_config c = supcon_context_config_default();
    c.backend = SUPCON_BACKEND_CPU;
    c.num_threads = 1;
    return supcon_context_create(&c, &ctx) == SUPCON_OK ? 0 : -1;
}

static int teardown(void **unused) {
    supcon_context_free(ctx);
    return 0;
}

/* A set with one of everything. */
static supcon_safetensors *sample(void) {
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    const float f[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    const int64_t s23[2] = {2, 3};
    assert_int_equal(supcon_safetensors_add(st, "encoder.conv1.weight", SUPCON_FLOAT32, 2, s23, f, sizeof f), SUPCON_OK);
    const int64_t nbt = 123456789012345LL;
    assert_int_equal(supcon_safetensors_add(st, "encoder.bn1.num_batches_tracked", SUPCON_INT64, 0, NULL, &nbt, 8),
                     SUPCON_OK);
    const int32_t i4[4] = {-1, 0, 7, 2147483647};
    const int64_t s4 = 4;
    assert_int_equal(supcon_safetensors_add(st, "labels", SUPCON_INT32, 1, &s4, i4, sizeof i4), SUPCON_OK);
    const int64_t s05[2] = {0, 5};
    assert_int_equal(supcon_safetensors_add(st, "empty", SUPCON_FLOAT32, 2, s05, NULL, 0), SUPCON_OK);
    const int64_t s8[8] = {1, 1, 1, 1, 1, 1, 1, 2};
    assert_int_equal(supcon_safetensors_add(st, "we\"ird\\na\nme \xe2\x98\x83", SUPCON_FLOAT32, 8, s8, f, 8),
                     SUPCON_OK);
    const int64_t one = 1;
    const int64_t big[1] = {-5};
    assert_int_equal(supcon_safetensors_add(st, "i64.vector", SUPCON_INT64, 1, &one, big, 8), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "epoch", "12"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "opt", "{\"lr\": 0.5, \"tab\":\"\t\"}\x01 caf\xc3\xa9"),
                     SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "empty", ""), SUPCON_OK);
    return st;
}

static void assert_same(const supcon_safetensors *a, const supcon_safetensors *b) {
    assert_int_equal(supcon_safetensors_count(a), supcon_safetensors_count(b));
    for (int64_t i = 0; i < supcon_safetensors_count(a); i++) {
        assert_string_equal(supcon_safetensors_name(a, i), supcon_safetensors_name(b, i));
        assert_int_equal(supcon_safetensors_dtype(a, i), supcon_safetensors_dtype(b, i));
        assert_int_equal(supcon_safetensors_ndim(a, i), supcon_safetensors_ndim(b, i));
        for (int d = 0; d < supcon_safetensors_ndim(a, i); d++)
            assert_int_equal(supcon_safetensors_dim(a, i, d), supcon_safetensors_dim(b, i, d));
        assert_int_equal(supcon_safetensors_bytes(a, i), supcon_safetensors_bytes(b, i));
        if (supcon_safetensors_bytes(a, i))
            assert_memory_equal(supcon_safetensors_data(a, i), supcon_safetensors_data(b, i),
                                supcon_safetensors_bytes(a, i));
        const size_t esize = supcon_safetensors_dtype(b, i) == SUPCON_INT64 ? 8 : 4;
        assert_int_equal((uintptr_t)supcon_safetensors_data(b, i) % esize, 0);
    }
    assert_int_equal(supcon_safetensors_metadata_count(a), supcon_safetensors_metadata_count(b));
    for (int64_t i = 0; i < supcon_safetensors_metadata_count(a); i++) {
        assert_string_equal(supcon_safetensors_metadata_key(a, i), supcon_safetensors_metadata_key(b, i));
        assert_string_equal(supcon_safetensors_metadata_value(a, i), supcon_safetensors_metadata_value(b, i));
    }
}

static void test_round_trip(void **unused) {
    supcon_safetensors *a = sample(), *b, *c;
    unsigned char *bytes;
    size_t size;
    assert_int_equal(sc_st_serialize(a, &bytes, &size), SUPCON_OK);
    /* header length a multiple of 8, the 8-byte entries first: every tensor aligned */
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | bytes[k];
    assert_int_equal(n % 8, 0);
    assert_int_equal(bytes[8], '{');
    assert_int_equal(supcon_safetensors_parse(ctx, bytes, size, NULL, &b), SUPCON_OK);
    assert_same(a, b);
    assert_string_equal(supcon_safetensors_metadata(b, "opt"), "{\"lr\": 0.5, \"tab\":\"\t\"}\x01 caf\xc3\xa9");
    assert_int_equal(*(const int64_t *)supcon_safetensors_data(b, 1), 123456789012345LL);
    assert_int_equal(supcon_safetensors_ndim(b, 1), 0);
    assert_int_equal(supcon_safetensors_numel(b, 1), 1);
    assert_int_equal(supcon_safetensors_numel(b, 3), 0);
    assert_non_null(supcon_safetensors_data(b, 3));

    char dir[] = "/tmp/supcon_st_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    assert_int_equal(supcon_safetensors_save(b, path), SUPCON_OK);
    assert_int_equal(supcon_safetensors_load(ctx, path, NULL, &c), SUPCON_OK);
    assert_same(a, c);
    /* what is saved is what serialises */
    FILE *f = fopen(path, "rb");
    unsigned char *disk = malloc(size + 1);
    assert_int_equal(fread(disk, 1, size + 1, f), size);
    fclose(f);
    assert_memory_equal(disk, bytes, size);
    unlink(path);
    rmdir(dir);
    free(disk);
    free(bytes);
    supcon_safetensors_free(a);
    supcon_safetensors_free(b);
    supcon_safetensors_free(c);
    supcon_safetensors_free(NULL);
}

/* The exact bytes of a small file, as the documented format and Python's writer have it. */
static void test_exact_bytes(void **unused) {
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    const float v[2] = {1.0f, 2.0f};
    const int64_t two = 2;
    assert_int_equal(supcon_safetensors_add(st, "a", SUPCON_FLOAT32, 1, &two, v, 8), SUPCON_OK);
    const int64_t k = 7;
    assert_int_equal(supcon_safetensors_add(st, "n", SUPCON_INT64, 0, NULL, &k, 8), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "k", "v"), SUPCON_OK);
    unsigned char *b;
    size_t size;
    assert_int_equal(sc_st_serialize(st, &b, &size), SUPCON_OK);
    const char hdr[] = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                       "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    assert_int_equal(size, 8 + padded + 16);
    assert_int_equal(b[0], padded & 0xFF);
    assert_int_equal(b[1], padded >> 8);
    for (int i = 2; i < 8; i++) assert_int_equal(b[i], 0);
    assert_memory_equal(b + 8, hdr, hl);
    for (size_t i = hl; i < padded; i++) assert_int_equal(b[8 + i], ' ');
    int64_t k2;
    float v2[2];
    memcpy(&k2, b + 8 + padded, 8);
    memcpy(v2, b + 8 + padded + 8, 8);
    assert_int_equal(k2, 7);
    assert_memory_equal(v2, v, 8);
    free(b);
    supcon_safetensors_free(st);
}

/* Written by hand in Python the way the safetensors library writes files. */
static void test_python_reference(void **unused) {
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_load(ctx, SUPCON_TEST_FIXTURES "/st_reference.safetensors", NULL, &st),
                     SUPCON_OK);
    assert_int_equal(supcon_safetensors_count(st), 7);
    assert_string_equal(supcon_safetensors_metadata(st, "note"), "tab\tquote\" caf\xc3\xa9 \xe2\x98\x83");
    assert_string_equal(supcon_safetensors_metadata(st, "format"), "pt");
    int64_t i = supcon_safetensors_find(st, "encoder.bn1.num_batches_tracked");
    assert_true(i >= 0);
    assert_int_equal(supcon_safetensors_dtype(st, i), SUPCON_INT64);
    assert_int_equal(supcon_safetensors_ndim(st, i), 0);
    assert_int_equal(*(const int64_t *)supcon_safetensors_data(st, i), 12345678901LL);
    i = supcon_safetensors_find(st, "encoder.conv1.weight");
    assert_int_equal(supcon_safetensors_numel(st, i), 54);
    const float *w = supcon_safetensors_data(st, i);
    for (int k = 0; k < 54; k++) assert_true(w[k] == (float)(((k * 7) % 11 - 5) / 4.0));
    i = supcon_safetensors_find(st, "labels");
    const int32_t *l = supcon_safetensors_data(st, i);
    assert_int_equal(l[0], -1);
    assert_int_equal(l[3], 2147483647);
    i = supcon_safetensors_find(st, "fc.bias");
    assert_true(((const float *)supcon_safetensors_data(st, i))[1] == -0.2f);
    i = supcon_safetensors_find(st, "empty");
    assert_int_equal(supcon_safetensors_dim(st, i, 0), 0);
    assert_int_equal(supcon_safetensors_dim(st, i, 1), 4);
    assert_int_equal(supcon_safetensors_dim(st, i, 2), -1);
    /* entries in the file's (data) order */
    assert_string_equal(supcon_safetensors_name(st, 0), "encoder.bn1.num_batches_tracked");
    supcon_safetensors_free(st);
}

static void test_module_names(void **unused) {
    char out[64];
    const char *cases[][2] = {
        {"encoder.module.conv1.weight", "encoder.conv1.weight"},
        {"module.encoder.conv1.weight", "encoder.conv1.weight"},
        {"module.module.fc.bias", "fc.bias"},
        {"fc.modules.bias", "fc.modules.bias"},
        {"mymodule.x", "mymodule.x"},
        {"a..module", "a."},
        {"module", ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        assert_int_equal(supcon_checkpoint_canonical_name(cases[k][0], out, sizeof out), SUPCON_OK);
        assert_string_equal(out, cases[k][1]);
    }
    assert_int_equal(supcon_checkpoint_canonical_name("encoder.module.conv1.weight", out, 20),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "21 are needed"));
    assert_int_equal(supcon_checkpoint_canonical_name("encoder.module.conv1.weight", out, 21), SUPCON_OK);
    assert_int_equal(supcon_checkpoint_canonical_name(NULL, out, 21), SUPCON_ERR_INVALID_ARGUMENT);

    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    const float z = 0;
    const int64_t one = 1;
    assert_int_equal(supcon_safetensors_add(st, "encoder.module.conv1.weight", SUPCON_FLOAT32, 1, &one, &z, 4),
                     SUPCON_OK);
    assert_int_equal(supcon_safetensors_add(st, "encoder.conv2.weight", SUPCON_FLOAT32, 1, &one, &z, 4), SUPCON_OK);
    assert_int_equal(supcon_safetensors_find(st, "encoder.conv1.weight"), 0);
    assert_int_equal(supcon_safetensors_find(st, "module.encoder.conv1.weight"), 0);
    assert_int_equal(supcon_safetensors_find(st, "encoder.module.conv2.weight"), 1);
    assert_int_equal(supcon_safetensors_find(st, "encoder.conv3.weight"), -1);
    assert_int_equal(supcon_safetensors_find(NULL, "x"), -1);
    /* the same tensor twice under two spellings is refused */
    assert_int_equal(supcon_safetensors_add(st, "encoder.conv1.weight", SUPCON_FLOAT32, 1, &one, &z, 4),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "without \"module.\""));
    assert_int_equal(supcon_safetensors_count(st), 2);
    supcon_safetensors_free(st);
}

static void test_add_and_metadata_errors(void **unused) {
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(NULL, &st), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(st);
    assert_int_equal(supcon_safetensors_create(ctx, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    const float v[4] = {0};
    const int64_t s2[2] = {2, 2}, neg = -1;
    assert_int_equal(supcon_safetensors_add(st, "", SUPCON_FLOAT32, 2, s2, v, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, NULL, SUPCON_FLOAT32, 2, s2, v, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "__metadata__", SUPCON_FLOAT32, 2, s2, v, 16),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "bad\xc0\xafutf8", SUPCON_FLOAT32, 2, s2, v, 16),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "x", (supcon_dtype)9, 2, s2, v, 16), SUPCON_ERR_DTYPE);
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 9, s2, v, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 1, &neg, v, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 2, s2, v, 12), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "its shape holds 16"));
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 2, s2, NULL, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 2, s2, v, 16), SUPCON_OK);
    assert_int_equal(supcon_safetensors_add(st, "x", SUPCON_FLOAT32, 2, s2, v, 16), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_count(st), 1);
    assert_null(supcon_safetensors_name(st, 1));
    assert_null(supcon_safetensors_data(st, -1));
    assert_int_equal(supcon_safetensors_ndim(st, 5), -1);

    assert_int_equal(supcon_safetensors_set_metadata(st, "", "v"), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_set_metadata(st, "k", NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_set_metadata(st, "k", "\xff"), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_set_metadata(st, "a", "1"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "b", "2"), SUPCON_OK);
    assert_int_equal(supcon_safetensors_set_metadata(st, "a", "3"), SUPCON_OK); /* replaced in place */
    assert_int_equal(supcon_safetensors_metadata_count(st), 2);
    assert_string_equal(supcon_safetensors_metadata_key(st, 0), "a");
    assert_string_equal(supcon_safetensors_metadata_value(st, 0), "3");
    assert_null(supcon_safetensors_metadata(st, "c"));
    assert_null(supcon_safetensors_metadata_key(st, 2));

    assert_int_equal(supcon_safetensors_save(st, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_save(st, "/tmp/"), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_save(st, "/nonexistent-folder-supcon/x.safetensors"), SUPCON_ERR_IO);
    assert_non_null(strstr(supcon_context_last_error(ctx), "/nonexistent-folder-supcon"));
    supcon_safetensors_free(st);

    supcon_safetensors_config c = supcon_safetensors_config_default();
    assert_true(c.max_header_bytes == 100000000u);
    c.struct_size = 4;
    assert_int_equal(supcon_safetensors_load(ctx, "/tmp", &c, &st), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_load(ctx, "/tmp", NULL, &st), SUPCON_ERR_IO);
    assert_null(st);
    assert_non_null(strstr(supcon_context_last_error(ctx), "folder"));
    assert_int_equal(supcon_safetensors_load(ctx, "/nonexistent-supcon.safetensors", NULL, &st), SUPCON_ERR_IO);
    assert_int_equal(supcon_safetensors_load(ctx, NULL, NULL, &st), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_parse(ctx, NULL, 5, NULL, &st), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_safetensors_parse(NULL, "x", 1, NULL, &st), SUPCON_ERR_INVALID_ARGUMENT);
}

static void test_tensor_bridge(void **unused) {
    const int64_t shape[3] = {2, 1, 3};
    supcon_tensor *t, *u, *wrong, *wi;
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &t), SUPCON_OK);
    const float v[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(supcon_tensor_upload(t, v, sizeof v), SUPCON_OK);
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_create(ctx, &st), SUPCON_OK);
    assert_int_equal(supcon_safetensors_add_tensor(st, "t", t), SUPCON_OK);
    assert_int_equal(supcon_safetensors_add_tensor(st, "u", NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &u), SUPCON_OK);
    assert_int_equal(supcon_safetensors_read_tensor(st, 0, u), SUPCON_OK);
    float w[6];
    assert_int_equal(supcon_tensor_download(u, w, sizeof w), SUPCON_OK);
    assert_memory_equal(w, v, sizeof v);
    const int64_t other[3] = {2, 3, 1};
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, other, &wrong), SUPCON_OK);
    assert_int_equal(supcon_safetensors_read_tensor(st, 0, wrong), SUPCON_ERR_SHAPE);
    assert_non_null(strstr(supcon_context_last_error(ctx), "[2, 1, 3]"));
    assert_non_null(strstr(supcon_context_last_error(ctx), "[2, 3, 1]"));
    assert_int_equal(supcon_tensor_create(ctx, SUPCON_INT32, 3, shape, &wi), SUPCON_OK);
    assert_int_equal(supcon_safetensors_read_tensor(st, 0, wi), SUPCON_ERR_DTYPE);
    assert_int_equal(supcon_safetensors_read_tensor(st, 1, u), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_safetensors_free(st);
    supcon_tensor_free(t);
    supcon_tensor_free(u);
    supcon_tensor_free(wrong);
    supcon_tensor_free(wi);
}

/* ---- Hostile input ---------------------------------------------------------------------- */

/* length field + header + `data` bytes of 0xAB. */
static unsigned char *build(const char *hdr, size_t hlen, size_t data, size_t *size) {
    *size = 8 + hlen + data;
    unsigned char *b = malloc(*size + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(b + 8, hdr, hlen);
    memset(b + 8 + hlen, 0xAB, data);
    return b;
}

typedef struct bad_case {
    const char *hdr;
    size_t data;
    supcon_status want;
    const char *msg; /* a part of the message */
} bad_case;

#define E1(name, rest) "{\"" name "\":{" rest "}}"
#define OKE "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static const bad_case bad_cases[] = {
    {E1("a", OKE), 8, SUPCON_OK, NULL},
    {" \t{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SUPCON_ERR_FORMAT, "start with '{'"},
    {"{ \"a\" :\n{ \"shape\" : [ 2 ] ,\t\"data_offsets\":[0,8],\"dtype\":\"F32\"}\r}   ", 8, SUPCON_OK, NULL},
    {"{}", 0, SUPCON_OK, NULL},
    {"{}", 3, SUPCON_ERR_FORMAT, "no entries, but 3 data bytes"},
    {"[]", 0, SUPCON_ERR_FORMAT, "start with '{'"},
    {"", 0, SUPCON_ERR_FORMAT, "start with '{'"},
    {E1("a", OKE), 7, SUPCON_ERR_FORMAT, "run past the end of the data"},
    {E1("a", OKE), 9, SUPCON_ERR_FORMAT, "the entries cover 8 data bytes, the file has 9"},
    {"{\"a\":{" OKE "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SUPCON_ERR_FORMAT,
     "overlap entry 'a'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
     "\"data_offsets\":[8,12]}}",
     12, SUPCON_ERR_FORMAT, "leave bytes [4, 8)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SUPCON_ERR_FORMAT, "leave bytes [0, 4)"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8, SUPCON_ERR_FORMAT, "end before they begin"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "are 12 bytes"},
    {E1("a", "\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "are 16 bytes"},
    {"{\"a\":{" OKE "},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, SUPCON_ERR_FORMAT,
     "duplicate entry 'a'"},
    {"{\"module.a\":{" OKE "},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, SUPCON_ERR_FORMAT,
     "same tensor"},
    {E1("a", "\"dtype\":\"X32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "unknown dtype"},
    {E1("a", "\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_UNSUPPORTED, "dtype F16"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_UNSUPPORTED,
     "more than 8"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "non-negative integer"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "fraction"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "exponent"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "leading zero"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]"), 8, SUPCON_ERR_FORMAT,
     "too large"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT,
     "too large"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT,
     "overflows"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT,
     "overflows"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]"), 8, SUPCON_ERR_FORMAT,
     "hold 18446744073709551615"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]"), 8, SUPCON_ERR_FORMAT, "more than 2"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]"), 8, SUPCON_ERR_FORMAT, "needs 2 numbers"},
    {E1("a", "\"shape\":[2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "has no \"dtype\""},
    {E1("a", "\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "has no \"shape\""},
    {E1("a", ""), 8, SUPCON_ERR_FORMAT, "has no \"dtype\""},
    {E1("a", OKE ",\"foo\":1"), 8, SUPCON_ERR_FORMAT, "unknown field \"foo\""},
    {E1("a", OKE ",\"dtype\":\"F32\""), 8, SUPCON_ERR_FORMAT, "duplicate field \"dtype\""},
    {E1("a", "\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "expected a string"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "non-negative integer"},
    {E1("a", "\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "expected '['"},
    {E1("a", "\"dtype\":\"F32\" \"shape\":[2],\"data_offsets\":[0,8]"), 8, SUPCON_ERR_FORMAT, "expected ',' or '}'"},
    {"{\"a\":\"x\"}", 0, SUPCON_ERR_FORMAT, "expected '{'"},
    {"{\"a\":{" OKE "},}", 8, SUPCON_ERR_FORMAT, "expected a string"},
    {"{\"a\":{" OKE "}}x", 8, SUPCON_ERR_FORMAT, "bytes after the header's closing '}'"},
    {"{\"a\":{" OKE "}", 8, SUPCON_ERR_FORMAT, "expected ',' or '}'"},
    {"{\"a\"{" OKE "}}", 8, SUPCON_ERR_FORMAT, "expected ':'"},
    {"{\"a", 0, SUPCON_ERR_FORMAT, "not terminated"},
    {"{\"\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "empty name"},
    {"{\"a\\q\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "invalid escape"},
    {"{\"a\\u12\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "four hexadecimal digits"},
    {"{\"a\\udc00\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "lone low surrogate"},
    {"{\"a\\ud800x\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "not followed by a low one"},
    {"{\"a\\ud800\\u0041\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "not followed by a low one"},
    {"{\"a\\u0000\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "NUL"},
    {"{\"a\tb\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "control character 0x09"},
    {"{\"a\xc0\xaf\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "invalid UTF-8"},
    {"{\"a\xed\xa0\x80\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "invalid UTF-8"},
    {"{\"a\xf4\x90\x80\x80\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "invalid UTF-8"},
    {"{\"a\xe2\x98\":{" OKE "}}", 8, SUPCON_ERR_FORMAT, "invalid UTF-8"},
    {"{\"\\ud83d\\ude00\\u00e9\\n\":{" OKE "}}", 8, SUPCON_OK, NULL},
    {"{\"__metadata__\":{\"k\":1}}", 0, SUPCON_ERR_FORMAT, "value of 'k' is not a string"},
    {"{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}}", 0, SUPCON_ERR_FORMAT, "a second \"__metadata__\""},
    {"{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, SUPCON_ERR_FORMAT, "duplicate __metadata__ key 'k'"},
    {"{\"__metadata__\":[]}", 0, SUPCON_ERR_FORMAT, "expected '{'"},
    {"{\"__metadata__\":{}}", 0, SUPCON_OK, NULL},
    {"{\"__metadata__\":{\"k\":\"v\"},\"a\":{" OKE "}}", 8, SUPCON_OK, NULL},
};

static void test_malformed_headers(void **unused) {
    for (size_t k = 0; k < sizeof bad_cases / sizeof *bad_cases; k++) {
        const bad_case *c = &bad_cases[k];
        size_t size;
        unsigned char *b = build(c->hdr, strlen(c->hdr), c->data, &size);
        supcon_safetensors *st = (supcon_safetensors *)&size; /* must be reset */
        supcon_status s = supcon_safetensors_parse(ctx, b, size, NULL, &st);
        if (s != c->want)
            fail_msg("case %zu (%s): status %s, expected %s: %s", k, c->hdr, supcon_status_name(s),
                     supcon_status_name(c->want), supcon_context_last_error(ctx));
        if (s == SUPCON_OK) {
            assert_non_null(st);
        } else {
            assert_null(st);
            if (!strstr(supcon_context_last_error(ctx), c->msg))
                fail_msg("case %zu (%s): message '%s' lacks '%s'", k, c->hdr, supcon_context_last_error(ctx), c->msg);
            assert_non_null(strstr(supcon_context_last_error(ctx), "'<memory>'"));
        }
        supcon_safetensors_free(st);
        free(b);
    }
}

/* Messages point at the byte: here the 'x' after the header's closing brace. */
static void test_error_offsets(void **unused) {
    const char *h = "{\"a\":{" OKE "}}x";
    size_t size;
    unsigned char *b = build(h, strlen(h), 8, &size);
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_parse(ctx, b, size, NULL, &st), SUPCON_ERR_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "header byte %zu (file offset %zu)", strlen(h) - 1, strlen(h) + 7);
    if (!strstr(supcon_context_last_error(ctx), want)) fail_msg("%s", supcon_context_last_error(ctx));
    free(b);
    /* an entry's error names the entry and where it starts */
    h = "{\"a\":{" OKE "},\"bb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    b = build(h, strlen(h), 8, &size);
    assert_int_equal(supcon_safetensors_parse(ctx, b, size, NULL, &st), SUPCON_ERR_FORMAT);
    snprintf(want, sizeof want, "header byte %zu", (size_t)(strstr(h, "\"bb\"") - h));
    assert_non_null(strstr(supcon_context_last_error(ctx), want));
    assert_non_null(strstr(supcon_context_last_error(ctx), "entry 'bb'"));
    free(b);
}

static void test_length_field(void **unused) {
    supcon_safetensors *st;
    unsigned char b[32] = {0};
    assert_int_equal(supcon_safetensors_parse(ctx, b, 5, NULL, &st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "too short"));
    assert_int_equal(supcon_safetensors_parse(ctx, b, 0, NULL, &st), SUPCON_ERR_FORMAT);
    b[7] = 0x80; /* 2^63 */
    assert_int_equal(supcon_safetensors_parse(ctx, b, 32, NULL, &st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "exceeds the limit"));
    memset(b, 0, sizeof b);
    b[0] = 25; /* 24 bytes follow */
    assert_int_equal(supcon_safetensors_parse(ctx, b, 32, NULL, &st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "runs past the end of the file"));
    b[0] = 0;
    assert_int_equal(supcon_safetensors_parse(ctx, b, 8, NULL, &st), SUPCON_ERR_FORMAT);
    /* limits from the config */
    const char *h = "{\"a\":{" OKE "}}";
    size_t size;
    unsigned char *f = build(h, strlen(h), 8, &size);
    supcon_safetensors_config c = supcon_safetensors_config_default();
    c.max_header_bytes = 10;
    assert_int_equal(supcon_safetensors_parse(ctx, f, size, &c, &st), SUPCON_ERR_FORMAT);
    c = supcon_safetensors_config_default();
    c.max_data_bytes = 7;
    assert_int_equal(supcon_safetensors_parse(ctx, f, size, &c, &st), SUPCON_ERR_FORMAT);
    assert_non_null(strstr(supcon_context_last_error(ctx), "exceed the limit of 7"));
    c.max_data_bytes = 8;
    assert_int_equal(supcon_safetensors_parse(ctx, f, size, &c, &st), SUPCON_OK);
    supcon_safetensors_free(st);
    free(f);
}

/* Data that is legal but unaligned in the file is moved, so pointers stay aligned. */
static void test_unaligned_entries(void **unused) {
    const char *h = "{\"c\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12]}}";
    size_t size;
    unsigned char *b = build(h, strlen(h), 12, &size);
    const int32_t c = -9;
    const int64_t n = 0x0102030405060708LL;
    memcpy(b + 8 + strlen(h), &c, 4);
    memcpy(b + 8 + strlen(h) + 4, &n, 8);
    supcon_safetensors *st;
    assert_int_equal(supcon_safetensors_parse(ctx, b, size, NULL, &st), SUPCON_OK);
    assert_int_equal((uintptr_t)supcon_safetensors_data(st, 1) % 8, 0);
    assert_int_equal(*(const int64_t *)supcon_safetensors_data(st, 1), n);
    assert_int_equal(*(const int32_t *)supcon_safetensors_data(st, 0), c);
    supcon_safetensors_free(st);
    free(b);
}

/* Every strict prefix of a valid file fails cleanly; random damage never crashes and what
 * parses is self-consistent. */
static void test_truncations_and_mutations(void **unused) {
    supcon_safetensors *a = sample(), *st;
    unsigned char *bytes;
    size_t size;
    assert_int_equal(sc_st_serialize(a, &bytes, &size), SUPCON_OK);
    for (size_t n = 0; n < size; n++) {
        supcon_status s = supcon_safetensors_parse(ctx, bytes, n, NULL, &st);
        if (s == SUPCON_OK) fail_msg("a file cut to %zu of %zu bytes parsed", n, size);
        assert_null(st);
    }
    tu_rng r = tu_rng_seed(11);
    unsigned char *m = malloc(size + 16);
    int parsed = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(m, bytes, size);
        size_t n = size;
        const int edits = 1 + (int)tu_randint(&r, 4);
        for (int e = 0; e < edits; e++) {
            const size_t at = (size_t)tu_randint(&r, (int64_t)n);
            switch (tu_randint(&r, 4)) {
            case 0: m[at] ^= (unsigned char)(1u << tu_randint(&r, 8)); break;
            case 1: m[at] = (unsigned char)tu_randint(&r, 256); break;
            case 2: /* a header byte from the JSON alphabet */
                m[8 + (size_t)tu_randint(&r, 200)] = (unsigned char)"{}[]\",:0123456789 \\u"[tu_randint(&r, 21)];
                break;
            default: /* drop a byte */
                memmove(m + at, m + at + 1, n - at - 1);
                n--;
            }
        }
        if (supcon_safetensors_parse(ctx, m, n, NULL, &st) == SUPCON_OK) {
            parsed++;
            size_t total = 0;
            for (int64_t i = 0; i < supcon_safetensors_count(st); i++) total += supcon_safetensors_bytes(st, i);
            assert_true(total <= n);
            supcon_safetensors_free(st);
        }
    }
    print_message("%d of 20000 mutated files still parsed (damage in tensor data or string contents)\n", parsed);
    free(m);
    free(bytes);
    supcon_safetensors_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_python_reference),
        cmocka_unit_test(test_module_names),
        cmocka_unit_test(test_add_and_metadata_errors),
        cmocka_unit_test(test_tensor_bridge),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_error_offsets),
        cmocka_unit_test(test_length_field),
        cmocka_unit_test(test_unaligned_entries),
        cmocka_unit_test(test_truncations_and_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
