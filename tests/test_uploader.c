/* supcon_uploader on one backend: the CPU, or CUDA when built with SUPCON_TEST_UPLOADER_CUDA
 * (then it exits 77, "skipped", where no CUDA device is usable). Checks that every push hands
 * out a tensor holding exactly the bytes given, that src can be changed at once, that the two
 * tensors alternate and grow, that bad calls fail cleanly and keep the previous batch, that
 * memory comes back on free, and that a model fed through pushes computes what it computes
 * from plain uploads, with pushes issued while the previous batch's forward is still queued,
 * also behind a backlog of queued work (on CUDA that is where a missing wait between the
 * copy stream and the compute stream, or before reusing a pinned buffer, would show). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <supcon/supcon.h>

#include "test_util.h"

#ifdef SUPCON_TEST_UPLOADER_CUDA
#define BACKEND SUPCON_BACKEND_CUDA
#define TEST_NAME "test_cuda_uploader"
#else
#define BACKEND SUPCON_BACKEND_CPU
#define TEST_NAME "test_uploader"
#endif

/* The network fed through pushes: on a GPU large enough that a forward takes milliseconds,
 * so an unordered copy would land in the middle of it; small where the CPU computes, and on
 * the CUDA emulation (SUPCON_TEST_EMU set, tests/cuda_emu): there queued work waits until
 * something forces it, so an unordered copy shows at any size. */
static int64_t NET_BATCH = 4, NET_WIDTH = 8, NET_IMG = 16;

/* A push too large for any allocator must come back as an error under ASan too, not abort
 * the test. (Executables are built with hidden visibility: the sanitizer runtime must see
 * this one.) */
__attribute__((visibility("default"), used)) const char *__asan_default_options(void);
__attribute__((visibility("default"), used)) const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

static int g_fail, g_checks;
static supcon_context *g_ctx;

#define EXPECT(cond, ...)                                                                                    \
    do {                                                                                                     \
        g_checks++;                                                                                          \
        if (!(cond)) {                                                                                       \
            g_fail++;                                                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                      \
            printf(__VA_ARGS__);                                                                             \
            printf("\n");                                                                                    \
        }                                                                                                    \
    } while (0)

static void must(supcon_status s, const char *what) {
    if (s == SUPCON_OK) return;
    printf("FAIL %s: %s: %s\n", what, supcon_status_name(s), supcon_context_last_error(g_ctx));
    exit(1);
}

/* The tensor's bytes equal want's. */
static int holds(const supcon_tensor *t, const void *want, size_t bytes) {
    if (supcon_tensor_bytes(t) != bytes) return 0;
    void *back = malloc(bytes ? bytes : 1);
    if (!back) return 0;
    int ok = supcon_tensor_download(t, back, bytes) == SUPCON_OK && memcmp(back, want, bytes) == 0;
    free(back);
    return ok;
}

static void test_pushes(void) {
    supcon_uploader *images = NULL, *labels = NULL;
    must(supcon_uploader_create(g_ctx, &images), "uploader_create images");
    must(supcon_uploader_create(g_ctx, &labels), "uploader_create labels");
    /* growing, shrinking, empty and growing again: each push must hold exactly its batch */
    static const int64_t rows[] = {10, 10, 1000, 7, 0, 5000, 3};
    const int n_push = (int)(sizeof rows / sizeof rows[0]);
    tu_rng r = tu_rng_seed(5);
    const supcon_tensor *prev = NULL, *prev2 = NULL;
    for (int p = 0; p < n_push; p++) {
        const int64_t shape[3] = {rows[p], 2, 3}, lshape[1] = {rows[p]};
        const size_t nf = (size_t)rows[p] * 6;
        float *x = malloc(sizeof(float) * (nf + 1)), *keep = malloc(sizeof(float) * (nf + 1));
        int64_t *lab = malloc(sizeof(int64_t) * ((size_t)rows[p] + 1));
        if (!x || !keep || !lab) exit(1);
        tu_fill_rows(&r, x, (int64_t)nf, 1, 0);
        for (int64_t i = 0; i < rows[p]; i++) lab[i] = tu_randint(&r, 1000) - 500;
        memcpy(keep, x, sizeof(float) * nf);
        const supcon_tensor *t = NULL, *l = NULL;
        must(supcon_uploader_push(images, SUPCON_FLOAT32, 3, shape, x, sizeof(float) * nf, &t), "push images");
        must(supcon_uploader_push(labels, SUPCON_INT64, 1, lshape, lab, sizeof(int64_t) * (size_t)rows[p], &l),
             "push labels");
        for (size_t i = 0; i < nf; i++) x[i] = -1.0f; /* src is the caller's again at once */
        EXPECT(t && holds(t, keep, sizeof(float) * nf), "push %d: images differ from what was pushed", p);
        EXPECT(l && holds(l, lab, sizeof(int64_t) * (size_t)rows[p]), "push %d: labels differ", p);
        EXPECT(t && supcon_tensor_ndim(t) == 3 && supcon_tensor_dim(t, 0) == rows[p] &&
                   supcon_tensor_dim(t, 2) == 3 && supcon_tensor_dtype(t) == SUPCON_FLOAT32,
               "push %d: the tensor's shape or dtype is not the one pushed", p);
        EXPECT(supcon_tensor_memory(t) ==
                   (BACKEND == SUPCON_BACKEND_CUDA ? SUPCON_MEMORY_DEVICE : SUPCON_MEMORY_HOST),
               "push %d: the tensor is not in the backend's memory", p);
        EXPECT(t != prev, "push %d: the same tensor as the push before (no second buffer)", p);
        if (p >= 2) EXPECT(t == prev2, "push %d: the tensors do not alternate", p);
        prev2 = prev;
        prev = t;
        free(x);
        free(keep);
        free(lab);
    }
    supcon_uploader_free(labels);
    supcon_uploader_free(images);
    supcon_uploader_free(NULL);
}

static void test_bad_calls(void) {
    const size_t before = supcon_context_bytes_in_use(g_ctx);
    supcon_uploader *u = NULL;
    EXPECT(supcon_uploader_create(NULL, &u) == SUPCON_ERR_INVALID_ARGUMENT && !u, "create without a context");
    EXPECT(supcon_uploader_create(g_ctx, NULL) == SUPCON_ERR_INVALID_ARGUMENT, "create without out");
    must(supcon_uploader_create(g_ctx, &u), "uploader_create");
    const float good[4] = {1, 2, 3, 4};
    /* 2^61 bytes: more than any address space maps (src is never read then) */
    const int64_t s4[1] = {4}, neg[1] = {-4}, huge[2] = {(int64_t)1 << 29, (int64_t)1 << 30};
    const supcon_tensor *t = NULL, *bad = NULL;
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 1, s4, good, sizeof good, &t), "first push");
    const float other[8] = {0};
    struct {
        supcon_status want;
        supcon_dtype dt;
        int ndim;
        const int64_t *shape;
        const void *src;
        size_t bytes;
        const char *what;
    } cases[] = {
        {SUPCON_ERR_DTYPE, (supcon_dtype)7, 1, s4, other, 16, "an unknown dtype"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_FLOAT32, SUPCON_MAX_DIMS + 1, s4, other, 16, "too many dimensions"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_FLOAT32, 1, neg, other, 16, "a negative extent"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_FLOAT32, 1, NULL, other, 16, "no shape"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_FLOAT32, 1, s4, other, 32, "bytes not the shape's size"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_INT64, 1, s4, other, 16, "bytes of float32 for int64"},
        {SUPCON_ERR_INVALID_ARGUMENT, SUPCON_FLOAT32, 1, s4, NULL, 16, "no src"},
        {SUPCON_ERR_OUT_OF_MEMORY, SUPCON_FLOAT32, 2, huge, other, (size_t)1 << 61, "more memory than there is"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bad = t; /* not NULL: the call must clear it */
        supcon_status s = supcon_uploader_push(u, cases[k].dt, cases[k].ndim, cases[k].shape, cases[k].src,
                                               cases[k].bytes, &bad);
        EXPECT(s == cases[k].want, "%s: %s, expected %s", cases[k].what, supcon_status_name(s),
               supcon_status_name(cases[k].want));
        EXPECT(bad == NULL, "%s: *out is not NULL after the error", cases[k].what);
        EXPECT(strstr(supcon_context_last_error(g_ctx), "supcon_uploader_push") != NULL,
               "%s: the message does not name the call: %s", cases[k].what, supcon_context_last_error(g_ctx));
        EXPECT(holds(t, good, sizeof good), "%s: the previous batch changed", cases[k].what);
    }
    EXPECT(supcon_uploader_push(u, SUPCON_FLOAT32, 1, s4, good, sizeof good, NULL) == SUPCON_ERR_INVALID_ARGUMENT,
           "push without out");
    EXPECT(supcon_uploader_push(NULL, SUPCON_FLOAT32, 1, s4, good, sizeof good, &bad) ==
                   SUPCON_ERR_INVALID_ARGUMENT &&
               bad == NULL,
           "push without an uploader");
    EXPECT(holds(t, good, sizeof good), "the batch changed after the failed pushes");
    /* the uploader still works after them */
    const float next[4] = {5, 6, 7, 8};
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 1, s4, next, sizeof next, &bad), "push after errors");
    EXPECT(bad != t && holds(bad, next, sizeof next), "the push after the errors holds the wrong data");
    EXPECT(supcon_context_bytes_in_use(g_ctx) > before, "the uploader's tensors are not counted as memory in use");
    supcon_uploader_free(u);
    EXPECT(supcon_context_bytes_in_use(g_ctx) == before, "memory in use %zu after free, %zu before",
           supcon_context_bytes_in_use(g_ctx), before);
}

/* The encoder's features (downloaded) for input x. */
static void features_of(supcon_model *m, const supcon_tensor *x, float *out, size_t floats) {
    must(supcon_model_forward(m, x), "forward");
    const supcon_tensor *f = supcon_model_features(m);
    EXPECT(supcon_tensor_bytes(f) == sizeof(float) * floats, "features are %zu bytes, expected %zu",
           supcon_tensor_bytes(f), sizeof(float) * floats);
    must(supcon_tensor_download(f, out, sizeof(float) * floats), "download features");
}

static void test_model_fed_by_pushes(void) {
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = NET_WIDTH;
    supcon_model *m = NULL;
    must(supcon_model_create(g_ctx, &mc, &m), "model_create");
    must(supcon_model_set_training(m, 0), "set_training"); /* running statistics stay as they are */
    const int64_t shape[4] = {NET_BATCH, 3, NET_IMG, NET_IMG};
    const size_t nx = (size_t)NET_BATCH * 3 * NET_IMG * NET_IMG;
    const size_t nf = (size_t)NET_BATCH * (size_t)(8 * NET_WIDTH);
    float *x[3], *want[3], *got = malloc(sizeof(float) * nf);
    tu_rng r = tu_rng_seed(17);
    supcon_tensor *plain = NULL;
    must(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 4, shape, &plain), "tensor_create");
    for (int k = 0; k < 3; k++) {
        x[k] = malloc(sizeof(float) * nx);
        want[k] = malloc(sizeof(float) * nf);
        if (!x[k] || !want[k] || !got) exit(1);
        tu_fill_rows(&r, x[k], (int64_t)nx, 1, 0);
        must(supcon_tensor_upload(plain, x[k], sizeof(float) * nx), "upload");
        features_of(m, plain, want[k], nf);
    }
    supcon_uploader *u = NULL;
    must(supcon_uploader_create(g_ctx, &u), "uploader_create");
    const supcon_tensor *t0 = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
    const size_t bytes = sizeof(float) * nx;
    /* push 0, queue its forward, then push 1 and 2 at once: push 2 reuses push 0's buffer and
     * must wait for that forward, which is still reading it */
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[0], bytes, &t0), "push 0");
    must(supcon_model_forward(m, t0), "forward 0");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[1], bytes, &t1), "push 1");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[2], bytes, &t2), "push 2");
    must(supcon_tensor_download(supcon_model_features(m), got, sizeof(float) * nf), "download 0");
    EXPECT(memcmp(got, want[0], sizeof(float) * nf) == 0,
           "the forward of push 0 saw other data (the copy of push 2 did not wait for it)");
    /* the calls after a push see all of its data */
    features_of(m, t2, got, nf);
    EXPECT(memcmp(got, want[2], sizeof(float) * nf) == 0, "the forward of push 2 saw other data");
    for (int k = 0; k < 6; k++) { /* a loop as a trainer runs it: push, forward, push, ... */
        must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[k % 3], bytes, &t3), "push in the loop");
        features_of(m, t3, got, nf);
        EXPECT(memcmp(got, want[k % 3], sizeof(float) * nf) == 0, "loop step %d: the forward saw other data", k);
    }
    supcon_uploader_free(u);
    supcon_tensor_free(plain);
    supcon_model_free(m);
    for (int k = 0; k < 3; k++) {
        free(x[k]);
        free(want[k]);
    }
    free(got);
}

/* The hazards against a backlog: with both buffers warm (no allocation left to synchronise
 * anything), several forwards are queued first so that the compute stream runs behind the
 * host. Then push 2 and a forward of model A on it; push 3; push 4, whose copy reuses push
 * 2's buffer and must wait for A's forward still queued; at once a forward of model B on
 * push 4, which must wait for that copy; then pushes 5 and 6, whose host copy into push 4's
 * pinned buffer must wait for push 4's copy, itself still behind the backlog. A missing
 * wait shows as A or B computing from the wrong batch, or push 6 holding the wrong bytes. */
static void test_pushes_against_a_backlog(void) {
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = NET_WIDTH;
    supcon_model *a = NULL, *b = NULL;
    must(supcon_model_create(g_ctx, &mc, &a), "model_create a");
    must(supcon_model_create(g_ctx, &mc, &b), "model_create b");
    must(supcon_model_set_training(a, 0), "set_training a");
    must(supcon_model_set_training(b, 0), "set_training b");
    const int64_t shape[4] = {NET_BATCH, 3, NET_IMG, NET_IMG};
    const size_t nx = (size_t)NET_BATCH * 3 * NET_IMG * NET_IMG, bytes = sizeof(float) * nx;
    const size_t nf = (size_t)NET_BATCH * (size_t)(8 * NET_WIDTH), fbytes = sizeof(float) * nf;
    float *x[3], *want_a0 = malloc(fbytes), *want_b2 = malloc(fbytes), *got = malloc(fbytes);
    tu_rng r = tu_rng_seed(23);
    supcon_tensor *plain = NULL;
    must(supcon_tensor_create(g_ctx, SUPCON_FLOAT32, 4, shape, &plain), "tensor_create");
    for (int k = 0; k < 3; k++) {
        x[k] = malloc(bytes);
        if (!x[k] || !want_a0 || !want_b2 || !got) exit(1);
        tu_fill_rows(&r, x[k], (int64_t)nx, 1, 0);
    }
    must(supcon_tensor_upload(plain, x[0], bytes), "upload");
    features_of(a, plain, want_a0, nf);
    must(supcon_tensor_upload(plain, x[2], bytes), "upload");
    features_of(b, plain, want_b2, nf);

    supcon_uploader *u = NULL;
    must(supcon_uploader_create(g_ctx, &u), "uploader_create");
    const supcon_tensor *t[7] = {NULL};
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[1], bytes, &t[0]), "push 0");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[1], bytes, &t[1]), "push 1");
    EXPECT(holds(t[1], x[1], bytes), "backlog: push 1 does not hold its bytes"); /* warm, and all idle */
    for (int k = 0; k < 4; k++) must(supcon_model_forward(b, plain), "backlog forward");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[0], bytes, &t[2]), "push 2");
    must(supcon_model_forward(a, t[2]), "forward a");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[1], bytes, &t[3]), "push 3");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[2], bytes, &t[4]), "push 4");
    must(supcon_model_forward(b, t[4]), "forward b");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[0], bytes, &t[5]), "push 5");
    must(supcon_uploader_push(u, SUPCON_FLOAT32, 4, shape, x[1], bytes, &t[6]), "push 6");
    must(supcon_tensor_download(supcon_model_features(a), got, fbytes), "download a");
    EXPECT(memcmp(got, want_a0, fbytes) == 0, "backlog: A's forward of push 2 saw other data (push 4's copy did "
                                              "not wait for it)");
    must(supcon_tensor_download(supcon_model_features(b), got, fbytes), "download b");
    EXPECT(memcmp(got, want_b2, fbytes) == 0, "backlog: B's forward of push 4 saw other data (it did not wait for "
                                              "the copy)");
    EXPECT(t[2] == t[4] && t[4] == t[6] && t[3] == t[5], "backlog: the two tensors do not alternate");
    EXPECT(holds(t[6], x[1], bytes), "backlog: push 6 does not hold its bytes");
    supcon_uploader_free(u);
    supcon_tensor_free(plain);
    supcon_model_free(a);
    supcon_model_free(b);
    for (int k = 0; k < 3; k++) free(x[k]);
    free(want_a0);
    free(want_b2);
    free(got);
}

int main(void) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = BACKEND;
    cc.num_threads = 2;
    cc.seed = 3;
    supcon_status s = supcon_context_create(&cc, &g_ctx);
    if (s != SUPCON_OK) {
        if (BACKEND == SUPCON_BACKEND_CUDA && s == SUPCON_ERR_BACKEND_UNAVAILABLE) {
            printf("skipped: %s\n", supcon_context_last_error(NULL));
            return 77;
        }
        printf("FAIL context_create: %s\n", supcon_context_last_error(NULL));
        return 1;
    }
    const char *emu = getenv("SUPCON_TEST_EMU");
    if (strcmp(supcon_context_backend_name(g_ctx), "cuda") == 0 && !(emu && *emu))
        NET_BATCH = 256, NET_WIDTH = 64, NET_IMG = 32;
    test_pushes();
    test_bad_calls();
    test_model_fed_by_pushes();
    test_pushes_against_a_backlog();
    supcon_context_free(g_ctx);
    printf("%s: %d passed, %d failed\n", TEST_NAME, g_checks - g_fail, g_fail);
    return g_fail ? 1 : 0;
}
