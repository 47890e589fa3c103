/* `supcon tsne`: what a checkpoint's encoder learned, as a picture and a number. Embeds a
 * split of the data set with the encoder (inference mode, no augmentation), scores the
 * features by kNN accuracy (cosine, votes from the training split) and draws a t-SNE map of
 * a seeded random subset, coloured by class: OUT.png and OUT.csv (index, label, x, y). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "plot/plot.h"

static const char *const FASHION_MNIST[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The image size the encoder was trained at: --size, else the checkpoint's options, else the
 * data set's own (0 lets the caller decide). */
static int trained_size(const supcon_safetensors *st) {
    const char *opt = supcon_safetensors_metadata(st, "opt");
    const char *p = opt ? strstr(opt, "\"size\": ") : NULL;
    return p ? atoi(p + 8) : 0;
}

/* The encoder a checkpoint holds: from the metadata `supcon` writes (model, width,
 * in_channels), else from the tensors themselves, so that checkpoints converted from the
 * reference's .pth files (tools/pth_to_safetensors.py) work too: conv1's shape gives width
 * and channels, conv3 in the blocks means Bottleneck, the blocks of layer3 the depth. */
static int64_t find_encoder_tensor(const supcon_safetensors *st, const char *rest) {
    char name[128];
    snprintf(name, sizeof name, "encoder.%s", rest);
    int64_t i = supcon_safetensors_find(st, name);
    if (i >= 0) return i;
    snprintf(name, sizeof name, "encoder.module.%s", rest); /* the reference's DataParallel */
    return supcon_safetensors_find(st, name);
}

static int describe_encoder(const supcon_safetensors *st, supcon_model_config *mc) {
    const char *arch = supcon_safetensors_metadata(st, "model"), *width = supcon_safetensors_metadata(st, "width");
    const char *chans = supcon_safetensors_metadata(st, "in_channels");
    if (arch && width && chans && supcon_arch_from_name(arch, &mc->arch) == SUPCON_OK) {
        mc->width = atoi(width);
        mc->in_channels = atoi(chans);
        return mc->width > 0 && mc->in_channels > 0 ? 0 : -1;
    }
    const int64_t conv1 = find_encoder_tensor(st, "conv1.weight");
    if (conv1 < 0 || supcon_safetensors_ndim(st, conv1) != 4) return -1;
    mc->width = (int)supcon_safetensors_dim(st, conv1, 0);
    mc->in_channels = (int)supcon_safetensors_dim(st, conv1, 1);
    const int bottleneck = find_encoder_tensor(st, "layer1.0.conv3.weight") >= 0;
    int blocks = 0;
    for (char rest[64];; blocks++) {
        snprintf(rest, sizeof rest, "layer3.%d.conv1.weight", blocks);
        if (find_encoder_tensor(st, rest) < 0) break;
    }
    if (!bottleneck && blocks == 2) mc->arch = SUPCON_RESNET18;
    else if (!bottleneck && blocks == 6) mc->arch = SUPCON_RESNET34;
    else if (bottleneck && blocks == 6) mc->arch = SUPCON_RESNET50;
    else if (bottleneck && blocks == 23) mc->arch = SUPCON_RESNET101;
    else return -1;
    return 0;
}

/* The encoder of any checkpoint of pretrain, ce or linear (its "encoder." tensors), in
 * inference mode and planned for batches of o->batch_size. */
static supcon_model *load_encoder(supcon_context *ctx, cli_options *o, int *channels, char *kind, size_t kind_size) {
    supcon_safetensors *st = NULL;
    supcon_status s = supcon_safetensors_load(ctx, o->ckpt, NULL, &st);
    if (s != SUPCON_OK) {
        cli_fail(ctx, s, "--ckpt");
        return NULL;
    }
    supcon_model_config mc = supcon_model_config_default();
    mc.head = SUPCON_HEAD_NONE;
    if (describe_encoder(st, &mc) != 0) {
        fprintf(stderr, "supcon tsne: '%s' holds no ResNet encoder (encoder.conv1.weight and its blocks)\n", o->ckpt);
        supcon_safetensors_free(st);
        return NULL;
    }
    const char *prog = supcon_safetensors_metadata(st, "program"), *method = supcon_safetensors_metadata(st, "method");
    snprintf(kind, kind_size, "%s", !prog                           ? "converted"
                                    : strcmp(prog, "pretrain") == 0 ? (method ? method : "contrastive")
                                    : strcmp(prog, "ce") == 0       ? "CE"
                                                                    : prog);
    *channels = mc.in_channels;
    if (!o->given_size) o->size = trained_size(st); /* 0: the data set's own size, later */
    snprintf(o->model, sizeof o->model, "%s", supcon_arch_name(mc.arch));
    o->width = mc.width;
    supcon_model *m = NULL;
    s = supcon_model_create(ctx, &mc, &m);
    if (s == SUPCON_OK) s = supcon_checkpoint_load_model(st, m, "encoder.");
    if (s == SUPCON_OK) s = supcon_model_set_training(m, 0);
    if (s != SUPCON_OK) {
        cli_fail(ctx, s, "the checkpoint's encoder");
        supcon_model_free(m);
        m = NULL;
    }
    supcon_safetensors_free(st);
    return m;
}

/* Encoder features [count, d] of every image of ds, in order, L2-normalised (the geometry
 * the contrastive loss shapes), and their labels. */
static supcon_status embed(supcon_context *ctx, cli_options *o, supcon_model *m, const supcon_dataset *ds,
                           int channels, float **feats, int32_t **labels, int64_t *count) {
    const int64_t n = supcon_dataset_count(ds), d = supcon_model_feature_dim(m);
    *feats = malloc(sizeof(float) * (size_t)(n * d));
    *labels = malloc(sizeof(int32_t) * (size_t)n);
    *count = 0;
    if (!*feats || !*labels) return SUPCON_ERR_OUT_OF_MEMORY;
    supcon_transform *tf = cli_transform(ctx, o, SUPCON_PRESET_EVAL, channels);
    supcon_loader *ld = tf ? cli_loader(ctx, o, ds, tf, 0) : NULL;
    supcon_tensor *x = NULL;
    supcon_status s = ld ? supcon_loader_start_epoch(ld, 1) : SUPCON_ERR_INVALID_ARGUMENT;
    while (s == SUPCON_OK) {
        supcon_batch b = {.struct_size = sizeof b};
        s = supcon_loader_next(ld, &b);
        if (s != SUPCON_OK || b.size == 0) break;
        const int64_t xs[4] = {b.size, b.channels, b.height, b.width};
        s = cli_ensure(ctx, &x, SUPCON_FLOAT32, 4, xs);
        if (s == SUPCON_OK) s = supcon_tensor_upload(x, b.images, supcon_tensor_bytes(x));
        if (s == SUPCON_OK) s = supcon_model_forward(m, x);
        float *f = *feats + (size_t)(*count * d);
        if (s == SUPCON_OK)
            s = supcon_tensor_download(supcon_model_features(m), f, sizeof(float) * (size_t)(b.size * d));
        for (int64_t i = 0; s == SUPCON_OK && i < b.size; i++) {
            double ss = 0;
            for (int64_t k = 0; k < d; k++) ss += (double)f[i * d + k] * f[i * d + k];
            const float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
            for (int64_t k = 0; k < d; k++) f[i * d + k] *= inv;
            (*labels)[*count + i] = (int32_t)b.labels[i];
        }
        if (s == SUPCON_OK) *count += b.size;
    }
    if (s == SUPCON_OK && *count != n) s = SUPCON_ERR_INTERNAL;
    if (s != SUPCON_OK && tf && ld) cli_fail(ctx, s, "embedding the images");
    supcon_tensor_free(x);
    supcon_loader_free(ld);
    supcon_transform_free(tf);
    return s;
}

/* A seeded random subset of k of n indices, in increasing order (splitmix64 + partial
 * Fisher-Yates), so a seed always pictures the same images. */
static int64_t *pick_subset(int64_t n, int64_t k, uint64_t seed) {
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
    if (!idx) return NULL;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    uint64_t z = seed ^ 0x7453e3d3a4bd9c1bull;
    for (int64_t i = 0; i < k && k < n; i++) {
        z += 0x9e3779b97f4a7c15ull;
        uint64_t r = z;
        r = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ull;
        r = (r ^ (r >> 27)) * 0x94d049bb133111ebull;
        r ^= r >> 31;
        const int64_t j = i + (int64_t)(r % (uint64_t)(n - i));
        const int64_t t = idx[i];
        idx[i] = idx[j], idx[j] = t;
    }
    return idx;
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Files are written to PATH.tmp and renamed into place, so a failed run leaves no half file. */
static FILE *tmp_open(const char *path, char *tmp, size_t n) {
    snprintf(tmp, n, "%s.tmp", path);
    return fopen(tmp, "w");
}

static int tmp_commit(FILE *f, const char *tmp, const char *path) {
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* label,f0,f1,... per pictured image: the t-SNE's input, for other tools (docs/analysis.md). */
static int write_features(const char *path, const int32_t *labels, const float *f, int64_t k, int64_t d) {
    char tmp[CLI_PATH + 16];
    FILE *out = tmp_open(path, tmp, sizeof tmp);
    if (!out) return -1;
    for (int64_t i = 0; i < k; i++) {
        fprintf(out, "%d", labels[i]);
        for (int64_t j = 0; j < d; j++) fprintf(out, ",%.7g", f[i * d + j]);
        fputc('\n', out);
    }
    return tmp_commit(out, tmp, path);
}

static int write_csv(const char *path, const int64_t *idx, const int32_t *labels, const float *y, int64_t k,
                     const char *const *names) {
    char tmp[CLI_PATH + 16];
    FILE *out = tmp_open(path, tmp, sizeof tmp);
    if (!out) return -1;
    fprintf(out, "index,label,class,x,y\n");
    for (int64_t i = 0; i < k; i++) {
        fprintf(out, "%lld,%d,\"", (long long)idx[i], labels[i]);
        for (const char *c = names[labels[i]]; *c; c++) { /* quoted: folder names may hold commas */
            if (*c == '"') fputc('"', out);
            fputc(*c, out);
        }
        fprintf(out, "\",%.7g,%.7g\n", y[2 * i], y[2 * i + 1]);
    }
    return tmp_commit(out, tmp, path);
}

int cli_tsne(int argc, char **argv) {
    cli_options o;
    int done = 0;
    int rc = cli_parse("tsne", argc, argv, &o, &done);
    if (rc || done) return rc;

    supcon_context *ctx = cli_context(&o);
    if (!ctx) return CLI_EXIT_ERROR;
    rc = CLI_EXIT_ERROR;
    supcon_dataset *ds = NULL, *bank_ds = NULL;
    float *feats = NULL, *bank = NULL, *sub = NULL, *y = NULL;
    int32_t *labels = NULL, *bank_labels = NULL, *sub_labels = NULL;
    int64_t *idx = NULL, n = 0, n_bank = 0;
    char names_buf[64][48];
    const char *names[64];

    int channels = 1;
    char kind[32];
    supcon_model *m = load_encoder(ctx, &o, &channels, kind, sizeof kind);
    if (!m) goto out;
    const int train_split = strcmp(o.split, "train") == 0;
    if (!(ds = cli_dataset(ctx, &o, train_split ? SUPCON_SPLIT_TRAIN : SUPCON_SPLIT_TEST))) goto out;
    if (o.size < 8) { /* a checkpoint that does not say: the images as the data set has them */
        int h = 0, w = 0;
        supcon_dataset_image_shape(ds, &h, &w);
        o.size = h >= 8 && h == w ? h : 32;
    }
    supcon_status s = supcon_model_reserve(m, o.batch_size, o.size, o.size);
    if (s != SUPCON_OK) {
        cli_fail(ctx, s, "the encoder");
        goto out;
    }
    const int classes = supcon_dataset_num_classes(ds);
    if (classes > 64) {
        fprintf(stderr, "supcon tsne: %d classes: the picture shows at most 64\n", classes);
        goto out;
    }
    const int fmnist = strcmp(o.dataset, "fashion-mnist") == 0 && classes == 10;
    for (int c = 0; c < classes; c++) {
        snprintf(names_buf[c], sizeof names_buf[c], "%s", fmnist ? FASHION_MNIST[c] : supcon_dataset_class_name(ds, c));
        names[c] = names_buf[c];
    }
    const int64_t d = supcon_model_feature_dim(m);
    printf("tsne of %s: %s width %d, %lld-d encoder features of the %lld %s images of %s, %s backend\n", o.ckpt,
           o.model, o.width, (long long)d, (long long)supcon_dataset_count(ds), o.split, o.dataset,
           supcon_context_backend_name(ctx));

    double t0 = now();
    s = embed(ctx, &o, m, ds, channels, &feats, &labels, &n);
    if (s != SUPCON_OK) goto out;
    printf("embedded %lld images in %.1f s\n", (long long)n, now() - t0);

    if (o.knn_k > 0) {
        const int self = strcmp(o.knn_bank, "self") == 0 || train_split || strcmp(o.dataset, "path") == 0;
        if (!self) {
            t0 = now();
            if (!(bank_ds = cli_dataset(ctx, &o, SUPCON_SPLIT_TRAIN))) goto out;
            if ((s = embed(ctx, &o, m, bank_ds, channels, &bank, &bank_labels, &n_bank)) != SUPCON_OK) goto out;
            printf("embedded the %lld training images (the kNN bank) in %.1f s\n", (long long)n_bank, now() - t0);
        }
        double top1 = 0;
        t0 = now();
        s = supcon_knn_accuracy(ctx, self ? feats : bank, self ? labels : bank_labels, (size_t)(self ? n : n_bank),
                                feats, labels, (size_t)n, (size_t)d, o.knn_k, classes, self, &top1);
        if (s != SUPCON_OK) {
            cli_fail(ctx, s, "kNN accuracy");
            goto out;
        }
        printf("kNN accuracy (k %d, cosine, %s): %.2f%% (%.1f s)\n", o.knn_k,
               self ? "leave-one-out within the split" : "votes from the training split", top1, now() - t0);
    }

    const int64_t k = o.n > 0 && o.n < n ? o.n : n;
    if (!(idx = pick_subset(n, k, o.seed))) goto out;
    qsort(idx, (size_t)k, sizeof *idx, cmp_i64);
    sub = malloc(sizeof(float) * (size_t)(k * d));
    sub_labels = malloc(sizeof(int32_t) * (size_t)k);
    y = malloc(sizeof(float) * (size_t)(2 * k));
    if (!sub || !sub_labels || !y) {
        fprintf(stderr, "supcon tsne: out of memory\n");
        goto out;
    }
    for (int64_t i = 0; i < k; i++) {
        memcpy(sub + i * d, feats + idx[i] * d, sizeof(float) * (size_t)d);
        sub_labels[i] = labels[idx[i]];
    }
    if (o.save_features[0] && write_features(o.save_features, sub_labels, sub, k, d) != 0) {
        fprintf(stderr, "supcon tsne: cannot write '%s'\n", o.save_features);
        goto out;
    }
    supcon_tsne_config tc = supcon_tsne_config_default();
    tc.perplexity = o.perplexity;
    tc.theta = o.theta;
    tc.max_iter = o.max_iter;
    tc.seed = o.seed;
    tc.num_threads = o.threads;
    tc.method = strcmp(o.tsne_method, "exact") == 0        ? SUPCON_TSNE_EXACT
                : strcmp(o.tsne_method, "barnes-hut") == 0 ? SUPCON_TSNE_BARNES_HUT
                                                           : SUPCON_TSNE_AUTO;
    supcon_tsne_report rep = {.struct_size = sizeof rep};
    s = supcon_tsne_embed(ctx, &tc, sub, (size_t)k, (size_t)d, y, &rep);
    if (s != SUPCON_OK) {
        cli_fail(ctx, s, "t-SNE");
        goto out;
    }
    printf("t-SNE of %lld points (%s, perplexity %g, %d iterations): KL divergence %.4f, %.1f s\n", (long long)k,
           rep.method_used == SUPCON_TSNE_EXACT ? "exact" : "Barnes-Hut", o.perplexity, rep.iterations,
           rep.kl_divergence, rep.seconds);

    char prefix[CLI_PATH], png[CLI_PATH + 8], csv[CLI_PATH + 8], title[512], err[256];
    if (o.out[0]) {
        snprintf(prefix, sizeof prefix, "%s", o.out);
    } else {
        const char *slash = strrchr(o.ckpt, '/');
        snprintf(prefix, sizeof prefix, "%.*stsne_%s", slash ? (int)(slash - o.ckpt + 1) : 0, o.ckpt, o.split);
    }
    snprintf(png, sizeof png, "%s.png", prefix);
    snprintf(csv, sizeof csv, "%s.csv", prefix);
    if (o.title[0]) {
        snprintf(title, sizeof title, "%s", o.title);
    } else {
        snprintf(title, sizeof title, "%s encoder (%s, width %d): t-SNE of %lld %s images of %.64s", kind, o.model,
                 o.width, (long long)k, o.split, fmnist ? "Fashion-MNIST" : o.dataset);
    }
    if (write_csv(csv, idx, sub_labels, y, k, names) != 0) {
        fprintf(stderr, "supcon tsne: cannot write '%s'\n", csv);
        goto out;
    }
    if (plot_scatter_png(png, y, sub_labels, (size_t)k, classes, names, title, 1000, 800, err, sizeof err) != 0) {
        fprintf(stderr, "supcon tsne: %s\n", err);
        goto out;
    }
    printf("wrote %s and %s\n", png, csv);
    rc = CLI_EXIT_OK;
out:
    free(feats), free(labels), free(bank), free(bank_labels), free(sub), free(sub_labels), free(y), free(idx);
    supcon_dataset_free(bank_ds);
    supcon_dataset_free(ds);
    supcon_model_free(m);
    supcon_context_free(ctx);
    return rc;
}
