/* Data-set readers through the public API: CIFAR-10/100 and IDX files written here and read
 * back exactly, their error paths (missing, truncated, bad labels, bad magic, bad size,
 * corrupt gzip), data sets from memory, and the real Fashion-MNIST when it is installed. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <zlib.h>

#include "test_data_util.h"

static supcon_context *g_ctx;

#ifndef SUPCON_FASHION_MNIST_DIR
#define SUPCON_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#endif

/* Pixel c,y,x of CIFAR record r of file f: a pattern that differs everywhere. */
static uint8_t pix(int f, int r, int c, int y, int x) {
    return (uint8_t)(f * 71 + r * 13 + c * 101 + y * 7 + x * 3);
}

/* A CIFAR file of n records; label of record r = (f + r) % classes; cifar100 adds the coarse
 * label (fine / 5). */
static void write_cifar(const char *path, int f, int n, int cifar100) {
    size_t rec = cifar100 ? 3074 : 3073;
    uint8_t *buf = malloc(rec * (size_t)n);
    for (int r = 0; r < n; r++) {
        uint8_t *p = buf + rec * (size_t)r;
        int label = (f + r * 7) % (cifar100 ? 100 : 10);
        if (cifar100) {
            p[0] = (uint8_t)(label / 5);
            p[1] = (uint8_t)label;
        } else {
            p[0] = (uint8_t)label;
        }
        uint8_t *px = p + (cifar100 ? 2 : 1);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) px[c * 1024 + y * 32 + x] = pix(f, r, c, y, x);
    }
    td_write(path, buf, rec * (size_t)n);
    free(buf);
}

static supcon_dataset *open_ds(supcon_dataset_format fmt, const char *path, supcon_split split,
                               supcon_status expect) {
    supcon_dataset_config cfg = supcon_dataset_config_default();
    cfg.format = fmt;
    cfg.path = path;
    cfg.split = split;
    supcon_dataset *ds = (supcon_dataset *)1;
    supcon_status st = supcon_dataset_open(g_ctx, &cfg, &ds);
    if (st != expect)
        fprintf(stderr, "open %s: got %s (%s), expected %s\n", path, supcon_status_name(st),
                supcon_context_last_error(g_ctx), supcon_status_name(expect));
    assert_int_equal(st, expect);
    if (expect != SUPCON_OK) assert_null(ds);
    return ds;
}

static void test_cifar10_roundtrip(void **state) {
    (void)state;
    char *dir = td_mkdtemp("cifar10");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    td_mkdir(sub);
    const int counts[5] = {3, 1, 4, 2, 5};
    for (int f = 0; f < 5; f++) {
        char name[64];
        snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        write_cifar(td_path(sub, name), f, counts[f], 0);
    }
    write_cifar(td_path(sub, "test_batch.bin"), 9, 6, 0);

    /* the parent folder works too (cifar-10-batches-bin/ is found inside it) */
    supcon_dataset *ds = open_ds(SUPCON_DATASET_CIFAR10, dir, SUPCON_SPLIT_TRAIN, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 15);
    assert_int_equal(supcon_dataset_num_classes(ds), 10);
    assert_int_equal(supcon_dataset_channels(ds), 3);
    assert_string_equal(supcon_dataset_class_name(ds, 0), "airplane");
    assert_string_equal(supcon_dataset_class_name(ds, 9), "truck");
    assert_null(supcon_dataset_class_name(ds, 10));
    int h = 0, w = 0;
    supcon_dataset_image_shape(ds, &h, &w);
    assert_int_equal(h, 32);
    assert_int_equal(w, 32);
    uint8_t chw[3072], hwc[3072];
    int64_t i = 0;
    for (int f = 0; f < 5; f++)
        for (int r = 0; r < counts[f]; r++, i++) {
            int64_t label = -1;
            assert_int_equal(supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_CHW, chw, sizeof chw,
                                                       &label), SUPCON_OK);
            assert_int_equal(label, (f + r * 7) % 10);
            assert_int_equal(supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_HWC, hwc, sizeof hwc,
                                                       NULL), SUPCON_OK);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) {
                        assert_int_equal(chw[c * 1024 + y * 32 + x], pix(f, r, c, y, x));
                        assert_int_equal(hwc[(y * 32 + x) * 3 + c], pix(f, r, c, y, x));
                    }
        }
    /* argument errors */
    assert_int_equal(supcon_dataset_read_image(ds, 15, SUPCON_LAYOUT_CHW, chw, sizeof chw, NULL),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_dataset_read_image(ds, 0, SUPCON_LAYOUT_CHW, chw, 100, NULL),
                     SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_dataset_image_info(ds, -1, NULL, NULL, NULL),
                     SUPCON_ERR_INVALID_ARGUMENT);
    supcon_dataset_free(ds);

    /* the test split, from the folder itself, with names from batches.meta.txt */
    const char meta[] = "a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n\n";
    td_write(td_path(sub, "batches.meta.txt"), meta, sizeof meta - 1);
    ds = open_ds(SUPCON_DATASET_CIFAR10, sub, SUPCON_SPLIT_TEST, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 6);
    assert_string_equal(supcon_dataset_class_name(ds, 3), "a3");
    int64_t label;
    assert_int_equal(supcon_dataset_image_info(ds, 5, &h, &w, &label), SUPCON_OK);
    assert_int_equal(label, (9 + 5 * 7) % 10);
    supcon_dataset_free(ds);

    /* one channel: PIL's luma, rounded (image 4 is record 0 of data_batch_3) */
    supcon_dataset_config cfg = supcon_dataset_config_default();
    cfg.path = sub;
    cfg.channels = 1;
    assert_int_equal(supcon_dataset_open(g_ctx, &cfg, &ds), SUPCON_OK);
    assert_int_equal(supcon_dataset_channels(ds), 1);
    uint8_t grey[1024];
    assert_int_equal(supcon_dataset_read_image(ds, 4, SUPCON_LAYOUT_CHW, grey, sizeof grey, NULL),
                     SUPCON_OK);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            unsigned r = pix(2, 0, 0, y, x), g = pix(2, 0, 1, y, x), b = pix(2, 0, 2, y, x);
            double l = 0.299 * r + 0.587 * g + 0.114 * b;
            assert_true(fabs(grey[y * 32 + x] - l) <= 0.5 + 1e-3);
        }
    supcon_dataset_free(ds);

    /* errors: a truncated file names itself and the record; a bad label names the offset */
    write_cifar(td_path(sub, "data_batch_3.bin"), 2, 4, 0);
    FILE *fp = fopen(td_path(sub, "data_batch_3.bin"), "r+b");
    assert_int_equal(ftruncate(fileno(fp), 3073 * 3 + 100), 0);
    fclose(fp);
    open_ds(SUPCON_DATASET_CIFAR10, sub, SUPCON_SPLIT_TRAIN, SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "data_batch_3.bin"));
    assert_true(td_error_mentions(g_ctx, "offset 9219"));
    write_cifar(td_path(sub, "data_batch_3.bin"), 2, 4, 0);
    fp = fopen(td_path(sub, "data_batch_3.bin"), "r+b");
    fseek(fp, 3073 * 2, SEEK_SET);
    fputc(10, fp); /* label 10 in record 2 */
    fclose(fp);
    open_ds(SUPCON_DATASET_CIFAR10, sub, SUPCON_SPLIT_TRAIN, SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "label 10"));
    assert_true(td_error_mentions(g_ctx, "offset 6146"));
    /* a missing file */
    remove(td_path(sub, "data_batch_5.bin"));
    write_cifar(td_path(sub, "data_batch_3.bin"), 2, 4, 0);
    open_ds(SUPCON_DATASET_CIFAR10, sub, SUPCON_SPLIT_TRAIN, SUPCON_ERR_IO);
    assert_true(td_error_mentions(g_ctx, "data_batch_5.bin"));
    /* an empty file */
    td_write(td_path(sub, "data_batch_5.bin"), "", 0);
    open_ds(SUPCON_DATASET_CIFAR10, sub, SUPCON_SPLIT_TRAIN, SUPCON_ERR_FORMAT);
    /* a missing folder */
    open_ds(SUPCON_DATASET_CIFAR10, td_path(dir, "nowhere"), SUPCON_SPLIT_TRAIN, SUPCON_ERR_IO);
    assert_true(td_error_mentions(g_ctx, "nowhere"));
    td_rm_rf(dir);
    free(dir);
}

static void test_cifar100_roundtrip(void **state) {
    (void)state;
    char *dir = td_mkdtemp("cifar100");
    write_cifar(td_path(dir, "train.bin"), 3, 40, 1);
    write_cifar(td_path(dir, "test.bin"), 4, 2, 1);
    supcon_dataset *ds = open_ds(SUPCON_DATASET_CIFAR100, dir, SUPCON_SPLIT_TRAIN, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 40);
    assert_int_equal(supcon_dataset_num_classes(ds), 100);
    assert_string_equal(supcon_dataset_class_name(ds, 0), "apple");
    assert_string_equal(supcon_dataset_class_name(ds, 99), "worm");
    uint8_t chw[3072];
    for (int r = 0; r < 40; r++) {
        int64_t label;
        assert_int_equal(supcon_dataset_read_image(ds, r, SUPCON_LAYOUT_CHW, chw, sizeof chw,
                                                   &label), SUPCON_OK);
        assert_int_equal(label, (3 + r * 7) % 100); /* the fine label */
        assert_int_equal(chw[2 * 1024 + 31 * 32 + 30], pix(3, r, 2, 31, 30));
        assert_int_equal(chw[5], pix(3, r, 0, 0, 5));
    }
    supcon_dataset_free(ds);
    ds = open_ds(SUPCON_DATASET_CIFAR100, dir, SUPCON_SPLIT_TEST, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 2);
    supcon_dataset_free(ds);
    /* a CIFAR-10-sized record in a CIFAR-100 file is a truncation */
    write_cifar(td_path(dir, "test.bin"), 4, 2, 0);
    open_ds(SUPCON_DATASET_CIFAR100, dir, SUPCON_SPLIT_TEST, SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "test.bin"));
    td_rm_rf(dir);
    free(dir);
}

/* ---- IDX ------------------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* IDX images [n, h, w] (pixel = i + y * w + x) and labels [n] (i % 7) in memory. */
static uint8_t *idx_images(int n, int h, int w, size_t *size) {
    *size = 16 + (size_t)n * h * w;
    uint8_t *b = malloc(*size);
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = 3;
    put_be32(b + 4, (uint32_t)n);
    put_be32(b + 8, (uint32_t)h);
    put_be32(b + 12, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < h * w; k++) b[16 + (size_t)i * h * w + k] = (uint8_t)(i + k);
    return b;
}

static uint8_t *idx_labels(int n, size_t *size) {
    *size = 8 + (size_t)n;
    uint8_t *b = malloc(*size);
    b[0] = b[1] = 0;
    b[2] = 8;
    b[3] = 1;
    put_be32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) b[8 + i] = (uint8_t)(i % 7);
    return b;
}

static void write_gz(const char *path, const uint8_t *data, size_t n) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

static void check_idx(supcon_dataset *ds, int n, int h, int w) {
    assert_int_equal(supcon_dataset_count(ds), n);
    assert_int_equal(supcon_dataset_channels(ds), 1);
    assert_int_equal(supcon_dataset_num_classes(ds), n >= 7 ? 7 : n);
    assert_string_equal(supcon_dataset_class_name(ds, 3), "3");
    uint8_t *img = malloc((size_t)h * w);
    for (int i = 0; i < n; i++) {
        int64_t label;
        assert_int_equal(supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_HWC, img, (size_t)h * w,
                                                   &label), SUPCON_OK);
        assert_int_equal(label, i % 7);
        for (int k = 0; k < h * w; k++) assert_int_equal(img[k], (uint8_t)(i + k));
    }
    free(img);
}

static supcon_status open_idx_files(const char *images, const char *labels, int channels,
                                    supcon_dataset **ds) {
    supcon_dataset_config cfg = supcon_dataset_config_default();
    cfg.format = SUPCON_DATASET_IDX;
    cfg.idx_images = images;
    cfg.idx_labels = labels;
    cfg.channels = channels;
    return supcon_dataset_open(g_ctx, &cfg, ds);
}

static void test_idx(void **state) {
    (void)state;
    char *dir = td_mkdtemp("idx");
    size_t isz, lsz;
    uint8_t *img = idx_images(9, 5, 4, &isz), *lab = idx_labels(9, &lsz);
    /* train split plain, test split gzipped: found by name with or without .gz */
    td_write(td_path(dir, "train-images-idx3-ubyte"), img, isz);
    td_write(td_path(dir, "train-labels-idx1-ubyte"), lab, lsz);
    write_gz(td_path(dir, "t10k-images-idx3-ubyte.gz"), img, isz);
    write_gz(td_path(dir, "t10k-labels-idx1-ubyte.gz"), lab, lsz);
    for (int split = 0; split < 2; split++) {
        supcon_dataset *ds = open_ds(SUPCON_DATASET_IDX, dir, (supcon_split)split, SUPCON_OK);
        check_idx(ds, 9, 5, 4);
        int h, w;
        supcon_dataset_image_shape(ds, &h, &w);
        assert_int_equal(h, 5);
        assert_int_equal(w, 4);
        supcon_dataset_free(ds);
    }
    /* explicit names; three channels repeat the grey plane */
    supcon_dataset *ds = NULL;
    assert_int_equal(open_idx_files(td_path(dir, "t10k-images-idx3-ubyte.gz"),
                                    td_path(dir, "train-labels-idx1-ubyte"), 3, &ds), SUPCON_OK);
    uint8_t chw[60];
    assert_int_equal(supcon_dataset_read_image(ds, 2, SUPCON_LAYOUT_CHW, chw, sizeof chw, NULL),
                     SUPCON_OK);
    for (int k = 0; k < 20; k++) {
        assert_int_equal(chw[k], (uint8_t)(2 + k));
        assert_int_equal(chw[40 + k], (uint8_t)(2 + k));
    }
    supcon_dataset_free(ds);

    const char *bad = td_path(dir, "bad");
    const char *goodlab = td_path(dir, "train-labels-idx1-ubyte");
    /* wrong magic */
    img[0] = 1;
    td_write(bad, img, isz);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_null(ds);
    assert_true(td_error_mentions(g_ctx, "bad magic"));
    assert_true(td_error_mentions(g_ctx, bad));
    img[0] = 0;
    /* element type other than unsigned bytes */
    img[2] = 0x0d;
    td_write(bad, img, isz);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "0x0d"));
    img[2] = 8;
    /* truncated, and with trailing bytes */
    td_write(bad, img, isz - 1);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "truncated"));
    uint8_t *longer = calloc(isz + 3, 1);
    memcpy(longer, img, isz);
    td_write(bad, longer, isz + 3);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "trailing"));
    free(longer);
    /* labels as images: wrong number of dimensions */
    assert_int_equal(open_idx_files(goodlab, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    /* counts that disagree */
    size_t l2;
    uint8_t *lab8 = idx_labels(8, &l2);
    td_write(bad, lab8, l2);
    assert_int_equal(open_idx_files(td_path(dir, "train-images-idx3-ubyte"), bad, 0, &ds),
                     SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "9 images but 8 labels"));
    free(lab8);
    /* corrupt and truncated gzip */
    size_t gzn;
    uint8_t *gz = td_read(td_path(dir, "t10k-images-idx3-ubyte.gz"), &gzn);
    td_write(bad, gz, gzn / 2);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "truncated"));
    for (size_t k = 12; k < gzn - 8; k++) gz[k] ^= 0x5a;
    td_write(bad, gz, gzn);
    assert_int_equal(open_idx_files(bad, goodlab, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, bad));
    free(gz);
    /* missing file */
    assert_int_equal(open_idx_files(td_path(dir, "missing"), goodlab, 0, &ds), SUPCON_ERR_IO);
    assert_true(td_error_mentions(g_ctx, "missing"));
    /* a folder is not a file */
    assert_int_equal(open_idx_files(dir, goodlab, 0, &ds), SUPCON_ERR_IO);
    free(img);
    free(lab);
    td_rm_rf(dir);
    free(dir);
}

static void test_fashion_mnist(void **state) {
    (void)state;
    struct stat sb;
    if (stat(SUPCON_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &sb) != 0) {
        fprintf(stderr, "skipped: Fashion-MNIST is not installed at %s\n",
                SUPCON_FASHION_MNIST_DIR);
        skip();
    }
    supcon_dataset *ds =
        open_ds(SUPCON_DATASET_IDX, SUPCON_FASHION_MNIST_DIR, SUPCON_SPLIT_TRAIN, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 60000);
    assert_int_equal(supcon_dataset_num_classes(ds), 10);
    assert_int_equal(supcon_dataset_channels(ds), 1);
    int h, w;
    supcon_dataset_image_shape(ds, &h, &w);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    const int64_t first[12] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
    for (int i = 0; i < 12; i++) {
        int64_t label;
        assert_int_equal(supcon_dataset_image_info(ds, i, NULL, NULL, &label), SUPCON_OK);
        assert_int_equal(label, first[i]);
    }
    uint8_t img[784];
    assert_int_equal(supcon_dataset_read_image(ds, 0, SUPCON_LAYOUT_CHW, img, sizeof img, NULL),
                     SUPCON_OK);
    long sum = 0;
    for (int k = 0; k < 784; k++) sum += img[k];
    assert_int_equal(sum, 76247); /* checked with Python's gzip module */
    long counts[10] = {0};
    for (int64_t i = 0; i < 60000; i++) {
        int64_t label;
        supcon_dataset_image_info(ds, i, NULL, NULL, &label);
        counts[label]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(counts[c], 6000);
    supcon_dataset_free(ds);

    ds = open_ds(SUPCON_DATASET_IDX, SUPCON_FASHION_MNIST_DIR, SUPCON_SPLIT_TEST, SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 10000);
    const int64_t tfirst[4] = {9, 2, 1, 1};
    for (int i = 0; i < 4; i++) {
        int64_t label;
        supcon_dataset_image_info(ds, i, NULL, NULL, &label);
        assert_int_equal(label, tfirst[i]);
    }
    supcon_dataset_free(ds);
}

static void test_from_memory_and_args(void **state) {
    (void)state;
    uint8_t hwc[2 * 2 * 3 * 3];
    for (int k = 0; k < (int)sizeof hwc; k++) hwc[k] = (uint8_t)k;
    int64_t labels[2] = {1, 0};
    supcon_dataset *ds = NULL;
    assert_int_equal(supcon_dataset_from_memory(g_ctx, 2, 3, 2, 3, SUPCON_LAYOUT_HWC, hwc, labels,
                                                2, &ds), SUPCON_OK);
    uint8_t chw[18], back[18];
    assert_int_equal(supcon_dataset_read_image(ds, 1, SUPCON_LAYOUT_CHW, chw, sizeof chw, NULL),
                     SUPCON_OK);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 6; k++) assert_int_equal(chw[c * 6 + k], hwc[18 + k * 3 + c]);
    assert_int_equal(supcon_dataset_read_image(ds, 1, SUPCON_LAYOUT_HWC, back, sizeof back, NULL),
                     SUPCON_OK);
    assert_memory_equal(back, hwc + 18, 18);
    assert_int_equal(supcon_dataset_skipped(ds), 0);
    supcon_dataset_free(ds);
    labels[0] = 2;
    assert_int_equal(supcon_dataset_from_memory(g_ctx, 2, 3, 2, 3, SUPCON_LAYOUT_HWC, hwc, labels,
                                                2, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(ds);
    assert_int_equal(supcon_dataset_from_memory(g_ctx, 2, 2, 2, 3, SUPCON_LAYOUT_HWC, hwc, labels,
                                                3, &ds), SUPCON_ERR_INVALID_ARGUMENT);

    supcon_dataset_config cfg = supcon_dataset_config_default();
    assert_int_equal(supcon_dataset_open(g_ctx, &cfg, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    cfg.path = "/tmp";
    cfg.struct_size = 8;
    assert_int_equal(supcon_dataset_open(g_ctx, &cfg, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    cfg = supcon_dataset_config_default();
    cfg.path = "/tmp";
    cfg.channels = 2;
    assert_int_equal(supcon_dataset_open(g_ctx, &cfg, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    cfg.channels = 0;
    cfg.format = (supcon_dataset_format)42;
    assert_int_equal(supcon_dataset_open(g_ctx, &cfg, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_dataset_open(NULL, &cfg, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_dataset_open(g_ctx, NULL, &ds), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_dataset_free(NULL);

    float mean[3], std[3];
    supcon_dataset_normalization(SUPCON_DATASET_CIFAR100, mean, std);
    assert_true(mean[0] == 0.5071f && std[2] == 0.2761f);
}

int main(void) {
    g_ctx = td_context();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10_roundtrip), cmocka_unit_test(test_cifar100_roundtrip),
        cmocka_unit_test(test_idx),               cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_from_memory_and_args),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    supcon_context_free(g_ctx);
    return rc;
}
