/* A backend's three convolution passes, shape by shape (the CIFAR ResNet-18 shapes by
 * default), each timed alone: the fastest of R runs after a warm-up, as ms and GFLOP/s
 * (2 n c_out c_in kh kw oh ow per pass). Where bench_model's profile says which layer is
 * slow, this says how fast each form of the convolution runs on its own, with the least
 * noise a shared machine allows (minimum, not median). Drives the backend table itself (the
 * CPU's, or the CUDA module's, loaded as the library loads it): links the internals. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ops.h"
#include "registry.h"

typedef struct shape {
    int64_t c_in, hw, c_out, k, stride;
} shape;

static const shape resnet18_shapes[] = {
    {3, 32, 64, 3, 1},    {64, 32, 64, 3, 1},    {64, 32, 128, 3, 2},  {64, 32, 128, 1, 2},
    {128, 16, 128, 3, 1}, {128, 16, 256, 3, 2},  {128, 16, 256, 1, 2}, {256, 8, 256, 3, 1},
    {256, 8, 512, 3, 2},  {256, 8, 512, 1, 2},   {512, 4, 512, 3, 1},
};

/* The bottleneck blocks' shapes (stride in the 3x3, as SPEC section 2), each once. */
static const shape resnet50_shapes[] = {
    {3, 32, 64, 3, 1},      {64, 32, 64, 1, 1},     {64, 32, 64, 3, 1},     {64, 32, 256, 1, 1},
    {256, 32, 64, 1, 1},    {256, 32, 128, 1, 1},   {128, 32, 128, 3, 2},   {128, 16, 512, 1, 1},
    {256, 32, 512, 1, 2},   {512, 16, 128, 1, 1},   {128, 16, 128, 3, 1},   {512, 16, 256, 1, 1},
    {256, 16, 256, 3, 2},   {256, 8, 1024, 1, 1},   {512, 16, 1024, 1, 2},  {1024, 8, 256, 1, 1},
    {256, 8, 256, 3, 1},    {1024, 8, 512, 1, 1},   {512, 8, 512, 3, 2},    {512, 4, 2048, 1, 1},
    {1024, 8, 2048, 1, 2},  {2048, 4, 512, 1, 1},   {512, 4, 512, 3, 1},
};

typedef enum { FWD, DATA, FILTER } pass;

/* One pass, timed until the backend is done with it (CUDA queues its calls). */
static double run_pass(const supcon_backend_ops *o, void *st, pass p, const supcon_conv_desc *d, float *y, float *x,
                       float *wt, float *dw, void *ws, size_t ws_bytes) {
    const double t0 = now_s();
    supcon_status s = SUPCON_OK;
    if (p == FWD) s = o->conv2d_forward(st, d, y, x, wt, ws, ws_bytes);
    if (p == DATA) s = o->conv2d_backward_data(st, d, x, y, wt, 0, ws, ws_bytes);
    if (p == FILTER) s = o->conv2d_backward_filter(st, d, dw, y, x, ws, ws_bytes);
    if (s == SUPCON_OK && o->synchronize) s = o->synchronize(st);
    const double t = now_s() - t0;
    if (s != SUPCON_OK) {
        fprintf(stderr, "bench_conv: %s\n", o->last_message(st));
        exit(1);
    }
    return t;
}

/* The CUDA module's table: $SUPCON_CUDA_MODULE, else the one built beside this program. */
static const supcon_backend_ops *cuda_ops(void) {
    const char *path = getenv("SUPCON_CUDA_MODULE");
#ifdef SUPCON_BENCH_CUDA_MODULE
    if (!path || !*path) path = SUPCON_BENCH_CUDA_MODULE;
#endif
    if (!path || !*path) {
        fprintf(stderr, "bench_conv: built without the CUDA module; set SUPCON_CUDA_MODULE\n");
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        fprintf(stderr, "bench_conv: %s\n", dlerror());
        return NULL;
    }
    supcon_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, SUPCON_CUDA_ENTRY_SYMBOL);
    const supcon_backend_ops *o = entry ? entry() : NULL;
    if (!o || o->abi != SUPCON_BACKEND_ABI) {
        fprintf(stderr, "bench_conv: %s is not a CUDA module of backend ABI %u\n", path, SUPCON_BACKEND_ABI);
        return NULL;
    }
    return o;
}

/* n floats of backend memory holding fill(seed), or zeros with seed 0; exits on failure. */
static float *backend_floats(const supcon_backend_ops *o, void *st, int64_t n, uint64_t seed) {
    void *p = NULL;
    float *h = malloc((size_t)n * sizeof(float));
    if (!h || o->alloc(st, (size_t)n * sizeof(float), &p) != SUPCON_OK) {
        fprintf(stderr, "bench_conv: out of memory for %lld floats: %s\n", (long long)n, o->last_message(st));
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        h[i] = seed ? (float)((double)(splitmix64_at(seed, (uint64_t)i) >> 11) * 0x1p-53 - 0.5) : 0.0f;
    if (o->upload(st, p, h, (size_t)n * sizeof(float)) != SUPCON_OK) {
        fprintf(stderr, "bench_conv: %s\n", o->last_message(st));
        exit(1);
    }
    free(h);
    return p;
}

int main(int argc, char **argv) {
    int threads = 2, repeat = 5;
    int64_t n = 0;
    const shape *shapes = resnet18_shapes;
    size_t nshapes = sizeof resnet18_shapes / sizeof *resnet18_shapes;
    const char *only = NULL;
    int first = FWD, last = FILTER;
    int precision = SUPCON_PRECISION_FP32, cuda = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc && !strcmp(argv[i + 1], "resnet50") && ++i) {
            shapes = resnet50_shapes;
            nshapes = sizeof resnet50_shapes / sizeof *resnet50_shapes;
        } else if (!strcmp(argv[i], "--arch") && i + 1 < argc && !strcmp(argv[i + 1], "resnet18") && ++i) {
            shapes = resnet18_shapes;
            nshapes = sizeof resnet18_shapes / sizeof *resnet18_shapes;
        }
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16") && ++i)
            precision = SUPCON_PRECISION_BF16;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "tf32") && ++i)
            precision = SUPCON_PRECISION_TF32;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32") && ++i)
            precision = SUPCON_PRECISION_FP32;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc && !strcmp(argv[i + 1], "cuda") && ++i)
            cuda = 1;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc && !strcmp(argv[i + 1], "cpu") && ++i)
            cuda = 0;
        else if (!strcmp(argv[i], "--pass") && i + 1 < argc) {
            const char *p = argv[++i];
            first = last = !strcmp(p, "fwd") ? FWD : !strcmp(p, "data") ? DATA : !strcmp(p, "filter") ? FILTER : -1;
            if (first < 0) {
                fprintf(stderr, "bench_conv: --pass fwd|data|filter\n");
                return 2;
            }
        }
        else {
            fprintf(stderr, "usage: bench_conv [--arch resnet18|resnet50] [--threads T] [--repeat R] [--n IMAGES]\n"
                            "                  [--only SUBSTRING] [--pass fwd|data|filter]\n"
                            "                  [--backend cpu|cuda] [--precision fp32|tf32|bf16]\n"
                            "times conv2d forward, backward data and backward filter of a backend (the CPU\n"
                            "by default) in a supcon_precision (tf32: a permission the CPU ignores; bf16:\n"
                            "bfloat16 operands and results, SUPCON_PRECISION_BF16)\n"
                            "for the CIFAR ResNet shapes (SUBSTRING picks shapes by their name, e.g.\n"
                            "\"k3 s2\"); n defaults to the benchmark's step: on the CPU 64 images for\n"
                            "resnet18 (bsz 32, two views), 16 for resnet50 (bsz 8); on CUDA 512 (bsz 256,\n"
                            "two views); prints the fastest of R runs after one warm-up.\n");
            return 2;
        }
    }
    if (n <= 0) n = cuda ? 512 : shapes == resnet50_shapes ? 16 : 64;
    const supcon_backend_ops *o = cuda ? cuda_ops() : sc_cpu_backend();
    if (!o) return 1;
    supcon_backend_init cfg = {.device = 0, .num_threads = threads, .precision = precision};
    void *st = NULL;
    char msg[SUPCON_BACKEND_MSG_LEN];
    if (o->init(&cfg, &st, msg, sizeof msg) != SUPCON_OK) {
        fprintf(stderr, "bench_conv: %s backend: %s\n", o->name, msg);
        return 1;
    }
    static const char *const prec_names[] = {"fp32", "tf32", "bf16"};
    printf("bench_conv: %s backend, %s, n %lld\n", o->name, prec_names[precision], (long long)n);
    printf("%-30s %9s %7s %9s %7s %9s %7s\n", "shape (n = images)", "fwd ms", "GF/s", "data ms", "GF/s", "filt ms",
           "GF/s");
    double total[3] = {0, 0, 0};
    for (size_t i = 0; i < nshapes; i++) {
        const shape *sh = &shapes[i];
        const supcon_conv_desc d = {.n = n, .c_in = sh->c_in, .h = sh->hw, .w = sh->hw, .c_out = sh->c_out,
                                    .kh = sh->k, .kw = sh->k, .stride_h = sh->stride, .stride_w = sh->stride,
                                    .pad_h = sh->k / 2, .pad_w = sh->k / 2};
        char name[64];
        snprintf(name, sizeof name, "%ldx%ldx%ld -> %ld k%ld s%ld n%ld", (long)d.c_in, (long)d.h, (long)d.w,
                 (long)d.c_out, (long)d.kh, (long)d.stride_h, (long)n);
        if (only && !strstr(name, only)) continue;
        const int64_t oh = supcon_conv_out_h(&d), ow = supcon_conv_out_w(&d);
        const int64_t nx = n * d.c_in * d.h * d.w, ny = n * d.c_out * oh * ow, nw = d.c_out * d.c_in * d.kh * d.kw;
        const size_t ws_bytes = o->conv2d_workspace_bytes(st, &d);
        float *x = backend_floats(o, st, nx, 1), *y = backend_floats(o, st, ny, 2);
        float *wt = backend_floats(o, st, nw, 3), *dw = backend_floats(o, st, nw, 0);
        void *ws = NULL;
        if (ws_bytes && o->alloc(st, ws_bytes, &ws) != SUPCON_OK) {
            fprintf(stderr, "bench_conv: workspace of %zu bytes: %s\n", ws_bytes, o->last_message(st));
            return 1;
        }
        const double flop = 2.0 * (double)n * (double)(d.c_out * d.c_in * d.kh * d.kw) * (double)(oh * ow);
        printf("%-30s", name);
        for (int p = FWD; p <= FILTER; p++) {
            if (p < first || p > last) {
                printf(" %9s %7s", "-", "-");
                continue;
            }
            double best = 1e30;
            for (int r = 0; r <= repeat; r++) {
                const double t = run_pass(o, st, (pass)p, &d, y, x, wt, dw, ws, ws_bytes);
                if (r > 0 && t < best) best = t;
            }
            total[p] += best;
            printf(" %9.2f %7.1f", 1e3 * best, flop / best * 1e-9);
        }
        printf("\n");
        fflush(stdout);
        o->release(st, x);
        o->release(st, y);
        o->release(st, wt);
        o->release(st, dw);
        if (ws) o->release(st, ws);
    }
    printf("%-30s %9.2f %7s %9.2f %7s %9.2f\n", "sum of the shapes above", 1e3 * total[0], "", 1e3 * total[1], "",
           1e3 * total[2]);
    o->shutdown(st);
    return 0;
}
