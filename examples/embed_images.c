/* Embed images with a trained encoder: load the encoder of a `supcon pretrain` checkpoint,
 * run the first N test images of Fashion-MNIST (or any IDX folder) through it in inference
 * mode, and write one CSV row per image: its label, then its L2-normalised encoder features.
 * It ends by scoring the embedding with a 1-nearest-neighbour check (leave-one-out), a quick
 * sign of whether same-class images landed close together. Every status is checked.
 *   embed_images CHECKPOINT [IDX_FOLDER [N [OUT.csv]]]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <supcon/supcon.h>

#define CHECK(call)                                                                         \
    do {                                                                                    \
        supcon_status st_ = (call);                                                         \
        if (st_ != SUPCON_OK) {                                                             \
            fprintf(stderr, "%s failed: %s: %s\n", #call, supcon_status_string(st_),        \
                    supcon_context_last_error(ctx));                                        \
            return 1;                                                                       \
        }                                                                                   \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CHECKPOINT [IDX_FOLDER [N [OUT.csv]]]\n", argv[0]);
        return 2;
    }
    const char *ckpt = argv[1];
    const char *folder = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    const int64_t want = argc > 3 ? atoll(argv[3]) : 1000;
    const char *out_path = argc > 4 ? argv[4] : "embeddings.csv";

    supcon_context *ctx = NULL; /* CHECK reports through ctx; NULL means "this thread's" */
    CHECK(supcon_context_create(NULL, &ctx));

    /* The checkpoint says which encoder it holds (`supcon pretrain` writes this metadata). */
    supcon_safetensors *st = NULL;
    CHECK(supcon_safetensors_load(ctx, ckpt, NULL, &st));
    const char *arch = supcon_safetensors_metadata(st, "model");
    const char *width = supcon_safetensors_metadata(st, "width");
    const char *chans = supcon_safetensors_metadata(st, "in_channels");
    supcon_model_config mc = supcon_model_config_default();
    CHECK(supcon_arch_from_name(arch ? arch : "resnet50", &mc.arch));
    mc.width = width ? atoi(width) : 64;
    mc.in_channels = chans ? atoi(chans) : 3;
    mc.head = SUPCON_HEAD_NONE; /* the encoder's features, as linear evaluation uses them */
    supcon_model *model = NULL;
    CHECK(supcon_model_create(ctx, &mc, &model));
    CHECK(supcon_checkpoint_load_model(st, model, "encoder."));
    supcon_safetensors_free(st);
    CHECK(supcon_model_set_training(model, 0)); /* BatchNorm from its running statistics */

    /* Test images, normalised as in evaluation (no augmentation). */
    supcon_dataset_config dc = supcon_dataset_config_default();
    dc.format = SUPCON_DATASET_IDX;
    dc.path = folder;
    dc.split = SUPCON_SPLIT_TEST;
    dc.channels = mc.in_channels;
    supcon_dataset *ds = NULL;
    CHECK(supcon_dataset_open(ctx, &dc, &ds));
    int h, w;
    supcon_dataset_image_shape(ds, &h, &w);
    const int64_t n = want < supcon_dataset_count(ds) ? want : supcon_dataset_count(ds);
    supcon_transform_config tc = supcon_transform_config_preset(SUPCON_PRESET_EVAL);
    tc.size = h; /* the size the encoder was trained at; 28 for the main job */
    for (int c = 0; c < 3; c++) tc.mean[c] = 0.2860f, tc.std[c] = 0.3530f; /* Fashion-MNIST */
    supcon_transform *tf = NULL;
    CHECK(supcon_transform_create(ctx, &tc, &tf));

    const size_t px = (size_t)mc.in_channels * (size_t)h * (size_t)w;
    const size_t fx = (size_t)mc.in_channels * (size_t)tc.size * (size_t)tc.size;
    uint8_t *img = malloc(px);
    float *x = malloc(sizeof(float) * fx * (size_t)n);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)n);
    if (!img || !x || !labels) return 1;
    for (int64_t i = 0; i < n; i++) {
        CHECK(supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_CHW, img, px, &labels[i]));
        CHECK(supcon_transform_apply(tf, img, mc.in_channels, h, w, 0, 0, (uint64_t)i, 0, x + fx * (size_t)i, NULL));
    }

    /* One forward of all N images (the model plans its memory for N); the features come back
     * through the model's output tensor. */
    const int64_t xs[4] = {n, mc.in_channels, tc.size, tc.size};
    supcon_tensor *input = NULL;
    CHECK(supcon_tensor_create(ctx, SUPCON_FLOAT32, 4, xs, &input));
    CHECK(supcon_tensor_upload(input, x, sizeof(float) * fx * (size_t)n));
    CHECK(supcon_model_forward(model, input));
    const supcon_tensor *feats = supcon_model_features(model);
    const int64_t d = supcon_model_feature_dim(model);
    float *f = malloc(sizeof(float) * (size_t)(n * d));
    if (!f) return 1;
    CHECK(supcon_tensor_download(feats, f, sizeof(float) * (size_t)(n * d)));

    FILE *out = fopen(out_path, "w");
    if (!out) {
        perror(out_path);
        return 1;
    }
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) { /* normalise, then write */
        double s = 0;
        for (int64_t k = 0; k < d; k++) s += (double)f[i * d + k] * f[i * d + k];
        const float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
        fprintf(out, "%lld", (long long)labels[i]);
        for (int64_t k = 0; k < d; k++) fprintf(out, ",%.6g", f[i * d + k] *= inv);
        fputc('\n', out);
    }
    fclose(out);
    for (int64_t i = 0; i < n; i++) { /* 1-NN by cosine similarity, leaving i out */
        double best = -2;
        int64_t arg = -1;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int64_t k = 0; k < d; k++) s += (double)f[i * d + k] * f[j * d + k];
            if (s > best) best = s, arg = j;
        }
        hits += arg >= 0 && labels[arg] == labels[i];
    }
    printf("embedded %lld images into %lld dimensions: %s\n", (long long)n, (long long)d, out_path);
    printf("1-nearest-neighbour accuracy (leave-one-out): %.2f%%\n", 100.0 * (double)hits / (double)n);

    free(f), free(x), free(img), free(labels);
    supcon_tensor_free(input);
    supcon_transform_free(tf);
    supcon_dataset_free(ds);
    supcon_model_free(model);
    supcon_context_free(ctx);
    return 0;
}
