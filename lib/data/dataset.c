/* The data-set handle: opening CIFAR and IDX files (folders are in folder.c), the in-memory
 * image list every reader fills, class names, and the public accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "context_internal.h"
#include "data_internal.h"
#include "error.h"

/* ---- The image list ------------------------------------------------------------------ */

void sc_images_free(sc_images *im)
{
    free(im->pixels);
    free(im->labels);
    free(im->offsets);
    free(im->dims);
    memset(im, 0, sizeof *im);
}

static int grow(void **p, size_t elem, int64_t need, int64_t *cap)
{
    if (need <= *cap)
        return 1;
    int64_t ncap = *cap + *cap / 2;
    if (ncap < need)
        ncap = need;
    void *np = realloc(*p, (size_t)ncap * elem);
    if (!np)
        return 0;
    *p = np;
    *cap = ncap;
    return 1;
}

supcon_status sc_images_reserve(supcon_context *ctx, sc_images *im, int64_t more, size_t bytes)
{
    int64_t need = im->count + more;
    if (need > im->cap_count) {
        int64_t c1 = im->cap_count, c2 = im->cap_count, c3 = im->cap_count;
        if (!grow((void **)&im->labels, sizeof(int64_t), need, &c1) ||
            !grow((void **)&im->offsets, sizeof(int64_t), need, &c2) ||
            !grow((void **)&im->dims, 2 * sizeof(int32_t), need, &c3))
            return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for %lld images",
                            (long long)need);
        im->cap_count = c1; /* all three grew to the same capacity */
    }
    if (im->bytes + bytes > im->cap) {
        int64_t cap = (int64_t)im->cap;
        if (!grow((void **)&im->pixels, 1, (int64_t)(im->bytes + bytes), &cap))
            return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for %zu bytes of pixels",
                            im->bytes + bytes);
        im->cap = (size_t)cap;
    }
    return SUPCON_OK;
}

supcon_status sc_images_push(supcon_context *ctx, sc_images *im, const uint8_t *src,
                             supcon_image_layout layout, int channels, int height, int width,
                             int64_t label)
{
    size_t plane = (size_t)height * (size_t)width;
    size_t bytes = plane * (size_t)im->channels;
    supcon_status st = sc_images_reserve(ctx, im, 1, bytes);
    if (st != SUPCON_OK)
        return st;
    uint8_t *dst = im->pixels + im->bytes;
    /* pixel k of channel c in the source */
#define SRC(c, k) (layout == SUPCON_LAYOUT_CHW ? src[(size_t)(c)*plane + (k)] \
                                               : src[(k) * (size_t)channels + (c)])
    if (channels == im->channels) {
        if (layout == SUPCON_LAYOUT_CHW || channels == 1)
            memcpy(dst, src, bytes);
        else
            for (int c = 0; c < channels; c++)
                for (size_t k = 0; k < plane; k++)
                    dst[(size_t)c * plane + k] = SRC(c, k);
    } else if (channels == 1) { /* grey to RGB: the same plane three times */
        for (int c = 0; c < im->channels; c++)
            memcpy(dst + (size_t)c * plane, src, plane);
    } else { /* RGB to grey with PIL's integer ITU-R 601 luma */
        for (size_t k = 0; k < plane; k++)
            dst[k] = (uint8_t)((SRC(0, k) * 19595u + SRC(1, k) * 38470u + SRC(2, k) * 7471u +
                                0x8000u) >> 16);
    }
#undef SRC
    im->offsets[im->count] = (int64_t)im->bytes;
    im->dims[2 * im->count] = height;
    im->dims[2 * im->count + 1] = width;
    im->labels[im->count] = label;
    im->count++;
    im->bytes += bytes;
    return SUPCON_OK;
}

/* Give back the slack of geometric growth and note a shared image size. */
static void finish(supcon_dataset *ds)
{
    sc_images *im = &ds->im;
    if (im->cap > im->bytes && im->bytes > 0) {
        uint8_t *p = realloc(im->pixels, im->bytes);
        if (p) {
            im->pixels = p;
            im->cap = im->bytes;
        }
    }
    ds->height = ds->width = 0;
    if (im->count > 0) {
        int h = im->dims[0], w = im->dims[1];
        int64_t i = 1;
        while (i < im->count && im->dims[2 * i] == h && im->dims[2 * i + 1] == w)
            i++;
        if (i == im->count) {
            ds->height = h;
            ds->width = w;
        }
    }
}

/* ---- Class names ---------------------------------------------------------------------- */

supcon_status sc_set_class_names(supcon_context *ctx, supcon_dataset *ds, int n,
                                 const char *const *names)
{
    char **v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    if (!v)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for class names");
    for (int c = 0; c < n; c++) {
        char num[16];
        const char *s = names ? names[c] : num;
        if (!names)
            snprintf(num, sizeof num, "%d", c);
        size_t len = strlen(s);
        v[c] = malloc(len + 1);
        if (!v[c]) {
            for (int k = 0; k < c; k++)
                free(v[k]);
            free(v);
            return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for class names");
        }
        memcpy(v[c], s, len + 1);
    }
    ds->class_names = v;
    ds->num_classes = n;
    return SUPCON_OK;
}

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

static const char *const cifar100_names[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};

/* Names from the distribution's text file (one per line) when it is there and complete;
 * otherwise the built-in list. */
static supcon_status cifar_class_names(supcon_context *ctx, supcon_dataset *ds,
                                       const char *dir, int cifar100)
{
    int n = cifar100 ? 100 : 10;
    const char *const *builtin = cifar100 ? cifar100_names : cifar10_names;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir,
             cifar100 ? "fine_label_names.txt" : "batches.meta.txt");
    FILE *f = fopen(path, "rb");
    if (!f)
        return sc_set_class_names(ctx, ds, n, builtin);
    char *names[100] = {0};
    char line[256];
    int k = 0, ok = 1;
    while (k < n && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0)
            continue;
        names[k] = malloc(len + 1);
        if (!names[k]) {
            ok = 0;
            break;
        }
        memcpy(names[k++], line, len + 1);
    }
    fclose(f);
    supcon_status st = sc_set_class_names(ctx, ds, n,
                                          ok && k == n ? (const char *const *)names : builtin);
    for (int c = 0; c < k; c++)
        free(names[c]);
    return st;
}

/* ---- Opening ---------------------------------------------------------------------------- */

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static supcon_status open_cifar(supcon_context *ctx, const supcon_dataset_config *cfg,
                                supcon_dataset *ds, int cifar100)
{
    const char *probe = cifar100 ? (cfg->split == SUPCON_SPLIT_TRAIN ? "train.bin" : "test.bin")
                                 : (cfg->split == SUPCON_SPLIT_TRAIN ? "data_batch_1.bin"
                                                                    : "test_batch.bin");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", cfg->path);
    snprintf(path, sizeof path, "%s/%s", dir, probe);
    if (!file_exists(path)) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", cfg->path,
                 cifar100 ? "cifar-100-binary" : "cifar-10-batches-bin");
        snprintf(path, sizeof path, "%s/%s", sub, probe);
        if (file_exists(path))
            snprintf(dir, sizeof dir, "%s", sub);
    }
    const char *files[5];
    int nfiles = 0;
    char names[5][32];
    if (cifar100) {
        files[nfiles++] = probe;
    } else if (cfg->split == SUPCON_SPLIT_TRAIN) {
        for (int b = 1; b <= 5; b++) {
            snprintf(names[b - 1], sizeof names[0], "data_batch_%d.bin", b);
            files[nfiles++] = names[b - 1];
        }
    } else {
        files[nfiles++] = probe;
    }
    ds->im.channels = cfg->channels ? cfg->channels : 3;
    for (int k = 0; k < nfiles; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        uint8_t *data = NULL;
        size_t size = 0;
        supcon_status st = sc_read_file(ctx, path, &data, &size);
        if (st != SUPCON_OK)
            return st;
        if (k == 0) { /* the first file's size tells how much the rest will need */
            size_t rec = cifar100 ? 3074 : 3073;
            int64_t guess = (int64_t)(size / rec) * nfiles;
            st = sc_images_reserve(ctx, &ds->im, guess,
                                   (size_t)guess * 1024u * (size_t)ds->im.channels);
        }
        if (st == SUPCON_OK)
            st = sc_cifar_parse(ctx, path, data, size, cifar100, &ds->im);
        free(data);
        if (st != SUPCON_OK)
            return st;
    }
    return cifar_class_names(ctx, ds, dir, cifar100);
}

/* Read an IDX file, inflating it when gzipped. */
static supcon_status read_idx(supcon_context *ctx, const char *path, uint8_t **data,
                              size_t *size)
{
    supcon_status st = sc_read_file(ctx, path, data, size);
    if (st != SUPCON_OK || !sc_is_gzip(*data, *size))
        return st;
    uint8_t *raw = NULL;
    size_t raw_size = 0;
    st = sc_gunzip(ctx, path, *data, *size, (size_t)1 << 36, &raw, &raw_size);
    free(*data);
    *data = raw;
    *size = raw_size;
    return st;
}

/* path/stem, or path/stem.gz when only that exists. */
static void idx_path(char *out, size_t len, const char *dir, const char *stem)
{
    snprintf(out, len, "%s/%s", dir, stem);
    if (!file_exists(out)) {
        char gz[4200];
        snprintf(gz, sizeof gz, "%s/%s.gz", dir, stem);
        if (file_exists(gz))
            snprintf(out, len, "%s", gz);
    }
}

static supcon_status open_idx(supcon_context *ctx, const supcon_dataset_config *cfg,
                              supcon_dataset *ds)
{
    char ipath[4200], lpath[4200];
    const char *split = cfg->split == SUPCON_SPLIT_TRAIN ? "train" : "t10k";
    char stem[64];
    if (cfg->idx_images) {
        snprintf(ipath, sizeof ipath, "%s", cfg->idx_images);
    } else {
        snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split);
        idx_path(ipath, sizeof ipath, cfg->path, stem);
    }
    if (cfg->idx_labels) {
        snprintf(lpath, sizeof lpath, "%s", cfg->idx_labels);
    } else {
        if (!cfg->path)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "IDX: idx_images is set but neither idx_labels nor path");
        snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split);
        idx_path(lpath, sizeof lpath, cfg->path, stem);
    }
    uint8_t *img = NULL, *lab = NULL;
    size_t isz = 0, lsz = 0;
    supcon_status st = read_idx(ctx, ipath, &img, &isz);
    if (st == SUPCON_OK)
        st = read_idx(ctx, lpath, &lab, &lsz);
    if (st == SUPCON_OK) {
        /* natural channels come from the file: [N,H,W] is grey, [N,H,W,C] has C */
        int natural = (isz >= 4 && img[3] == 4 && isz >= 20) ? (int)img[19] : 1;
        ds->im.channels = cfg->channels ? cfg->channels : (natural == 3 ? 3 : 1);
        st = sc_idx_parse(ctx, ipath, img, isz, lpath, lab, lsz, &ds->im);
    }
    free(img);
    free(lab);
    if (st != SUPCON_OK)
        return st;
    int64_t max_label = -1;
    for (int64_t i = 0; i < ds->im.count; i++)
        if (ds->im.labels[i] > max_label)
            max_label = ds->im.labels[i];
    return sc_set_class_names(ctx, ds, (int)(max_label + 1), NULL);
}

supcon_dataset_config supcon_dataset_config_default(void)
{
    supcon_dataset_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.format = SUPCON_DATASET_CIFAR10;
    c.split = SUPCON_SPLIT_TRAIN;
    c.max_pixels = (int64_t)1 << 26;
    return c;
}

void supcon_dataset_free(supcon_dataset *ds)
{
    if (!ds)
        return;
    sc_images_free(&ds->im);
    if (ds->class_names)
        for (int c = 0; c < ds->num_classes; c++)
            free(ds->class_names[c]);
    free(ds->class_names);
    free(ds);
}

supcon_status supcon_dataset_open(supcon_context *ctx, const supcon_dataset_config *cfg,
                                  supcon_dataset **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !cfg || !out)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_open: ctx, cfg and out must not be NULL");
    if (cfg->struct_size != sizeof *cfg)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_open: cfg->struct_size is %zu, expected %zu (use "
                        "supcon_dataset_config_default())",
                        cfg->struct_size, sizeof *cfg);
    if (cfg->channels != 0 && cfg->channels != 1 && cfg->channels != 3)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_open: channels %d is not 0, 1 or 3", cfg->channels);
    if (cfg->split != SUPCON_SPLIT_TRAIN && cfg->split != SUPCON_SPLIT_TEST)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_dataset_open: unknown split %d",
                        (int)cfg->split);
    if (!cfg->path && !(cfg->format == SUPCON_DATASET_IDX && cfg->idx_images))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_dataset_open: no path given");
    /* bounded so that the fixed path buffers below can never truncate */
    if ((cfg->path && strlen(cfg->path) > 4000) ||
        (cfg->idx_images && strlen(cfg->idx_images) > 4000) ||
        (cfg->idx_labels && strlen(cfg->idx_labels) > 4000))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_open: paths longer than 4000 bytes are not supported");
    if (cfg->max_pixels < 1)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_open: max_pixels must be >= 1");
    supcon_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for a data set");
    ds->ctx = ctx;
    supcon_status st;
    switch (cfg->format) {
    case SUPCON_DATASET_CIFAR10: st = open_cifar(ctx, cfg, ds, 0); break;
    case SUPCON_DATASET_CIFAR100: st = open_cifar(ctx, cfg, ds, 1); break;
    case SUPCON_DATASET_IMAGE_FOLDER: st = sc_folder_open(ctx, cfg, ds); break;
    case SUPCON_DATASET_IDX: st = open_idx(ctx, cfg, ds); break;
    default:
        st = sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_dataset_open: unknown format %d",
                      (int)cfg->format);
    }
    if (st != SUPCON_OK) {
        supcon_dataset_free(ds);
        return st;
    }
    finish(ds);
    *out = ds;
    return SUPCON_OK;
}

supcon_status supcon_dataset_from_memory(supcon_context *ctx, int64_t count, int channels,
                                         int height, int width, supcon_image_layout layout,
                                         const uint8_t *pixels, const int64_t *labels,
                                         int num_classes, supcon_dataset **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !out || (count > 0 && (!pixels || !labels)))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_from_memory: NULL argument");
    if (count < 0 || (channels != 1 && channels != 3) || height < 1 || width < 1 ||
        num_classes < 1 || (layout != SUPCON_LAYOUT_CHW && layout != SUPCON_LAYOUT_HWC))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_from_memory: bad count %lld, channels %d, size %dx%d, "
                        "classes %d or layout %d",
                        (long long)count, channels, height, width, num_classes, (int)layout);
    for (int64_t i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "supcon_dataset_from_memory: label %lld of image %lld is not in "
                            "[0, %d)",
                            (long long)labels[i], (long long)i, num_classes);
    supcon_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for a data set");
    ds->ctx = ctx;
    ds->im.channels = channels;
    size_t per = (size_t)channels * (size_t)height * (size_t)width;
    supcon_status st = sc_images_reserve(ctx, &ds->im, count, (size_t)count * per);
    for (int64_t i = 0; st == SUPCON_OK && i < count; i++)
        st = sc_images_push(ctx, &ds->im, pixels + (size_t)i * per, layout, channels, height,
                            width, labels[i]);
    if (st == SUPCON_OK)
        st = sc_set_class_names(ctx, ds, num_classes, NULL);
    if (st != SUPCON_OK) {
        supcon_dataset_free(ds);
        return st;
    }
    finish(ds);
    ds->height = height; /* shared even when count is 0 */
    ds->width = width;
    *out = ds;
    return SUPCON_OK;
}

int64_t supcon_dataset_count(const supcon_dataset *ds) { return ds->im.count; }
int supcon_dataset_num_classes(const supcon_dataset *ds) { return ds->num_classes; }
int supcon_dataset_channels(const supcon_dataset *ds) { return ds->im.channels; }
int64_t supcon_dataset_skipped(const supcon_dataset *ds) { return ds->skipped; }

const char *supcon_dataset_class_name(const supcon_dataset *ds, int c)
{
    return c >= 0 && c < ds->num_classes ? ds->class_names[c] : NULL;
}

void supcon_dataset_image_shape(const supcon_dataset *ds, int *height, int *width)
{
    if (height)
        *height = ds->height;
    if (width)
        *width = ds->width;
}

supcon_status supcon_dataset_image_info(const supcon_dataset *ds, int64_t i, int *height,
                                        int *width, int64_t *label)
{
    if (!ds)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_dataset_image_info: NULL");
    if (i < 0 || i >= ds->im.count)
        return sc_error(ds->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_image_info: index %lld not in [0, %lld)", (long long)i,
                        (long long)ds->im.count);
    if (height)
        *height = ds->im.dims[2 * i];
    if (width)
        *width = ds->im.dims[2 * i + 1];
    if (label)
        *label = ds->im.labels[i];
    return SUPCON_OK;
}

supcon_status supcon_dataset_read_image(const supcon_dataset *ds, int64_t i,
                                        supcon_image_layout layout, uint8_t *dst,
                                        size_t dst_bytes, int64_t *label)
{
    if (!ds || !dst)
        return sc_error(ds ? ds->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_read_image: NULL argument");
    if (i < 0 || i >= ds->im.count)
        return sc_error(ds->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_read_image: index %lld not in [0, %lld)", (long long)i,
                        (long long)ds->im.count);
    if (layout != SUPCON_LAYOUT_CHW && layout != SUPCON_LAYOUT_HWC)
        return sc_error(ds->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_read_image: unknown layout %d", (int)layout);
    int h, w;
    const uint8_t *src = sc_dataset_image(ds, i, &h, &w);
    int c = ds->im.channels;
    size_t plane = (size_t)h * (size_t)w, need = plane * (size_t)c;
    if (dst_bytes < need)
        return sc_error(ds->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_dataset_read_image: image %lld needs %zu bytes, dst has %zu",
                        (long long)i, need, dst_bytes);
    if (layout == SUPCON_LAYOUT_CHW || c == 1) {
        memcpy(dst, src, need);
    } else {
        for (size_t k = 0; k < plane; k++)
            for (int ch = 0; ch < c; ch++)
                dst[k * (size_t)c + (size_t)ch] = src[(size_t)ch * plane + k];
    }
    if (label)
        *label = ds->im.labels[i];
    return SUPCON_OK;
}

void supcon_dataset_normalization(supcon_dataset_format format, float mean[3], float std[3])
{
    static const float m10[3] = {0.4914f, 0.4822f, 0.4465f}, s10[3] = {0.2023f, 0.1994f, 0.2010f};
    static const float m100[3] = {0.5071f, 0.4867f, 0.4408f},
                       s100[3] = {0.2675f, 0.2565f, 0.2761f};
    for (int c = 0; c < 3; c++) {
        mean[c] = format == SUPCON_DATASET_CIFAR10    ? m10[c]
                  : format == SUPCON_DATASET_CIFAR100 ? m100[c]
                                                      : 0.5f;
        std[c] = format == SUPCON_DATASET_CIFAR10    ? s10[c]
                 : format == SUPCON_DATASET_CIFAR100 ? s100[c]
                                                     : 0.5f;
    }
}
