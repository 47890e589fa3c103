/* Images per second of the data pipeline on 32x32 RGB images: the contrastive two-view
 * pipeline (and the supervised one-view pipeline) through the loader with 0, 1, 2, ...
 * workers, batch 256, float32 batches as the training step receives them.
 *
 * usage: bench_data [--cifar DIR] [--images N] [--epochs E] [--workers 0,1,2] [--batch B]
 * Without --cifar the images are synthetic (smooth colour fields with noise), N of them.
 * One line per configuration: "pipeline workers images/s ms/batch". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supcon/supcon.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(supcon_context *ctx, const char *what) {
    fprintf(stderr, "bench_data: %s: %s\n", what, supcon_context_last_error(ctx));
    exit(1);
}

static supcon_dataset *synthetic(supcon_context *ctx, int64_t n) {
    uint8_t *px = malloc((size_t)n * 3072);
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        uint8_t *p = px + (size_t)i * 3072;
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 1024; k++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                int noise = (int)(s >> 59) - 16;
                int v = (int)((i * 37 + c * 80 + (k % 32) * 4 + (k / 32) * 3) % 256) + noise;
                p[c * 1024 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        labels[i] = i % 10;
    }
    supcon_dataset *ds = NULL;
    if (supcon_dataset_from_memory(ctx, n, 3, 32, 32, SUPCON_LAYOUT_CHW, px, labels, 10, &ds))
        die(ctx, "from_memory");
    free(px);
    free(labels);
    return ds;
}

int main(int argc, char **argv) {
    const char *cifar = NULL;
    int64_t n = 20000, batch = 256;
    int epochs = 2;
    int workers[16] = {0, 1, 2}, nw = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cifar") && i + 1 < argc) cifar = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            nw = 0;
            for (char *tok = strtok(argv[++i], ","); tok && nw < 16; tok = strtok(NULL, ","))
                workers[nw++] = atoi(tok);
        } else {
            fprintf(stderr, "usage: %s [--cifar DIR] [--images N] [--epochs E] "
                            "[--workers 0,1,2] [--batch B]\n", argv[0]);
            return 2;
        }
    }
    supcon_context_config ccfg = supcon_context_config_default();
    ccfg.backend = SUPCON_BACKEND_CPU;
    supcon_context *ctx = NULL;
    if (supcon_context_create(&ccfg, &ctx)) die(NULL, "context");
    supcon_dataset *ds = NULL;
    if (cifar) {
        supcon_dataset_config dcfg = supcon_dataset_config_default();
        dcfg.path = cifar;
        if (supcon_dataset_open(ctx, &dcfg, &ds)) die(ctx, "open");
    } else {
        ds = synthetic(ctx, n);
    }
    n = supcon_dataset_count(ds);
    printf("# %lld images 32x32 (%s), batch %lld, %d epochs per measurement\n", (long long)n,
           cifar ? cifar : "synthetic", (long long)batch, epochs);
    printf("%-12s %8s %12s %10s\n", "pipeline", "workers", "images/s", "ms/batch");
    const supcon_transform_preset presets[2] = {SUPCON_PRESET_CONTRASTIVE, SUPCON_PRESET_SUPERVISED};
    const char *names[2] = {"contrastive", "supervised"};
    for (int pi = 0; pi < 2; pi++) {
        supcon_transform_config tcfg = supcon_transform_config_preset(presets[pi]);
        supcon_transform *t = NULL;
        if (supcon_transform_create(ctx, &tcfg, &t)) die(ctx, "transform");
        for (int wi = 0; wi < nw; wi++) {
            supcon_loader_config lcfg = supcon_loader_config_default();
            lcfg.batch_size = batch;
            lcfg.num_workers = workers[wi];
            supcon_loader *l = NULL;
            if (supcon_loader_create(ctx, ds, t, &lcfg, &l)) die(ctx, "loader");
            /* warm-up: one batch (threads started, pages touched) */
            supcon_batch b;
            b.struct_size = sizeof b;
            supcon_loader_start_epoch(l, 0);
            supcon_loader_next(l, &b);
            double t0 = now();
            int64_t images = 0, batches = 0;
            for (int e = 1; e <= epochs; e++) {
                supcon_loader_start_epoch(l, e);
                for (;;) {
                    if (supcon_loader_next(l, &b)) die(ctx, "next");
                    if (!b.size) break;
                    images += b.size;
                    batches++;
                }
            }
            double dt = now() - t0;
            printf("%-12s %8d %12.0f %10.2f\n", names[pi], workers[wi], images / dt,
                   1e3 * dt / (double)batches);
            fflush(stdout);
            supcon_loader_free(l);
        }
        supcon_transform_free(t);
    }
    supcon_dataset_free(ds);
    supcon_context_free(ctx);
    return 0;
}
