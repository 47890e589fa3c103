/* How to call libsupcon's SupConLoss from a training loop you already have: your network
 * makes L2-normalised features for two augmented views of every image, libsupcon gives back
 * the loss and d loss / d features for your network's backward pass. Random unit vectors
 * stand in for the network here; copy the file and replace fake_network() with yours. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <supcon/supcon.h>

enum { B = 64, V = 2, D = 128, N_CLASSES = 10, STEPS = 3 };

/* A small deterministic generator, so that every run prints the same numbers. */
static double uniform01(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

/* Stand-in for your network's forward pass: features (B, V, D), every row of unit length
 * (the reference model normalises its projection-head output), and one label per image. */
static void fake_network(float *features, int64_t *labels, uint64_t *rng) {
    for (int i = 0; i < B * V; i++) {
        float *row = features + (size_t)i * D;
        double norm2 = 0;
        for (int k = 0; k < D; k++) { /* Gaussian entries: the direction is uniform */
            double u = uniform01(rng) + 1e-300, w = uniform01(rng);
            row[k] = (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * w));
            norm2 += (double)row[k] * row[k];
        }
        for (int k = 0; k < D; k++) row[k] = (float)(row[k] / sqrt(norm2));
    }
    for (int i = 0; i < B; i++) labels[i] = (int64_t)(uniform01(rng) * N_CLASSES);
}

/* Every libsupcon call returns a status; on failure the context (or, before one exists, the
 * calling thread) holds a message that says exactly what was wrong. */
#define CHECK(call)                                                                       \
    do {                                                                                  \
        supcon_status st_ = (call);                                                       \
        if (st_ != SUPCON_OK) {                                                           \
            fprintf(stderr, "%s failed: %s: %s\n", #call, supcon_status_string(st_),      \
                    supcon_context_last_error(ctx));                                      \
            goto cleanup;                                                                 \
        }                                                                                 \
    } while (0)

int main(void) {
    int rc = 1;
    supcon_context *ctx = NULL;
    supcon_loss *loss = NULL;
    supcon_tensor *features = NULL, *labels = NULL, *grad = NULL;

    /* Your buffers: features (B, V, D), labels (B), and room for d loss / d features. */
    float *h_features = malloc(sizeof(float) * B * V * D);
    float *h_grad = malloc(sizeof(float) * B * V * D);
    int64_t *h_labels = malloc(sizeof(int64_t) * B);
    if (!h_features || !h_grad || !h_labels) {
        fprintf(stderr, "out of memory\n");
        goto cleanup;
    }
    uint64_t rng = 0x9E3779B97F4A7C15ULL;

    /* A context owns the backend, its threads and its memory. The default picks the backend
     * from $SUPCON_BACKEND ("cpu" or "cuda"), else CUDA when a GPU is usable, else the CPU. */
    supcon_context_config ccfg = supcon_context_config_default();
    CHECK(supcon_context_create(&ccfg, &ctx));
    const int on_cpu = supcon_context_backend(ctx) == SUPCON_BACKEND_CPU;

    /* The reference's recommended SupCon run uses --temp 0.1 and keeps the base temperature
     * at 0.07, so the loss is scaled by 0.1 / 0.07 exactly as there. */
    supcon_loss_config lcfg = supcon_loss_config_default();
    lcfg.temperature = 0.1f;
    CHECK(supcon_loss_create(ctx, &lcfg, &loss));

    /* On the CPU backend a tensor can simply describe your memory: no copy, and the loss
     * reads your features where they are and writes the gradient straight into h_grad.
     * On CUDA tensors live in device memory: create them and copy to and fro. */
    const int64_t fshape[3] = {B, V, D}, lshape[1] = {B};
    if (on_cpu) {
        CHECK(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 3, fshape, h_features, SUPCON_MEMORY_HOST,
                                 &features));
        CHECK(supcon_tensor_wrap(ctx, SUPCON_FLOAT32, 3, fshape, h_grad, SUPCON_MEMORY_HOST,
                                 &grad));
        CHECK(supcon_tensor_wrap(ctx, SUPCON_INT64, 1, lshape, h_labels, SUPCON_MEMORY_HOST,
                                 &labels));
    } else {
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, fshape, &features));
        CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, fshape, &grad));
        CHECK(supcon_tensor_create(ctx, SUPCON_INT64, 1, lshape, &labels));
    }

    for (int step = 0; step < STEPS; step++) {
        fake_network(h_features, h_labels, &rng); /* your forward pass */
        if (!on_cpu) {
            CHECK(supcon_tensor_upload(features, h_features, sizeof(float) * B * V * D));
            CHECK(supcon_tensor_upload(labels, h_labels, sizeof(int64_t) * B));
        }

        /* Labels give SupCon; pass NULL instead for SimCLR (positives: the other view). */
        float value;
        CHECK(supcon_loss_forward(loss, features, labels, NULL, &value));
        CHECK(supcon_loss_backward(loss, grad));
        if (!on_cpu) CHECK(supcon_tensor_download(grad, h_grad, sizeof(float) * B * V * D));

        /* h_grad now holds d loss / d features: hand it to your network's backward pass. */
        double norm2 = 0;
        for (int i = 0; i < B * V * D; i++) norm2 += (double)h_grad[i] * h_grad[i];
        printf("step %d: loss %.6f, grad norm %.6f\n", step, value, sqrt(norm2));
    }
    /* The loss sized its workspaces on the first call and reused them after. */
    printf("backend %s, peak memory %zu bytes\n", supcon_context_backend_name(ctx),
           supcon_context_peak_bytes(ctx));
    rc = 0;

cleanup:
    /* Free everything made from the context before the context itself; NULL is fine. */
    supcon_tensor_free(features);
    supcon_tensor_free(grad);
    supcon_tensor_free(labels);
    supcon_loss_free(loss);
    supcon_context_free(ctx);
    free(h_features);
    free(h_grad);
    free(h_labels);
    return rc;
}
