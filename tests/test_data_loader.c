/* The loader: batch shapes and the last short batch, every sample once per epoch, reshuffled
 * each epoch, view-major rows equal to the transform applied alone, bit-identical output
 * for 0, 1, 2 and 4 workers and any prefetch depth, seamless epochs, restarts and shutdown
 * mid-epoch, and argument errors. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "test_data_util.h"

static supcon_context *g_ctx;

/* n images of 3 x s x s: channel 0 = i % 256, channel 1 = i / 256 (plus a gradient in the
 * big case), labels i % 10. */
static supcon_dataset *make_ds(int64_t n, int s, int gradient) {
    uint8_t *px = malloc((size_t)n * 3 * s * s);
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    for (int64_t i = 0; i < n; i++) {
        uint8_t *p = px + (size_t)i * 3 * s * s;
        for (int k = 0; k < s * s; k++) {
            p[k] = (uint8_t)(i % 256);
            p[s * s + k] = (uint8_t)(i / 256);
            p[2 * s * s + k] = gradient ? (uint8_t)(k * 5 + i) : 7;
        }
        labels[i] = i % 10;
    }
    supcon_dataset *ds = NULL;
    assert_int_equal(supcon_dataset_from_memory(g_ctx, n, 3, s, s, SUPCON_LAYOUT_CHW, px, labels,
                                                10, &ds), SUPCON_OK);
    free(px);
    free(labels);
    return ds;
}

static supcon_transform *make_tf(supcon_transform_preset preset, int size, int unit) {
    supcon_transform_config cfg = supcon_transform_config_preset(preset);
    cfg.size = size;
    if (unit)
        for (int c = 0; c < 3; c++) {
            cfg.mean[c] = 0;
            cfg.std[c] = 1;
        }
    supcon_transform *t = NULL;
    assert_int_equal(supcon_transform_create(g_ctx, &cfg, &t), SUPCON_OK);
    return t;
}

static supcon_loader *make_loader(supcon_dataset *ds, supcon_transform *t, int64_t b, int workers,
                                  int prefetch, int shuffle, int drop_last, uint64_t seed) {
    supcon_loader_config cfg = supcon_loader_config_default();
    cfg.batch_size = b;
    cfg.num_workers = workers;
    cfg.prefetch = prefetch;
    cfg.shuffle = shuffle;
    cfg.drop_last = drop_last;
    cfg.seed = seed;
    supcon_loader *l = NULL;
    supcon_status st = supcon_loader_create(g_ctx, ds, t, &cfg, &l);
    if (st != SUPCON_OK) fail_msg("%s", supcon_context_last_error(g_ctx));
    return l;
}

static supcon_batch next(supcon_loader *l) {
    supcon_batch b;
    b.struct_size = sizeof b;
    assert_int_equal(supcon_loader_next(l, &b), SUPCON_OK);
    return b;
}

static void test_epochs_cover_everything(void **state) {
    (void)state;
    const int64_t n = 103, bs = 16;
    supcon_dataset *ds = make_ds(n, 4, 0);
    supcon_transform *t = make_tf(SUPCON_PRESET_EVAL, 4, 1);
    for (int workers = 0; workers <= 2; workers += 2) {
        supcon_loader *l = make_loader(ds, t, bs, workers, 0, 1, 0, 11);
        assert_int_equal(supcon_loader_num_batches(l), 7);
        int64_t first_order[2][103];
        for (int64_t e = 0; e < 2; e++) {
            assert_int_equal(supcon_loader_start_epoch(l, e), SUPCON_OK);
            int seen[103] = {0};
            int64_t pos = 0;
            for (int k = 0; k < 7; k++) {
                supcon_batch b = next(l);
                assert_int_equal(b.size, k < 6 ? 16 : 103 - 96);
                assert_int_equal(b.views, 1);
                assert_int_equal(b.channels, 3);
                assert_int_equal(b.height, 4);
                assert_int_equal(b.epoch, e);
                assert_int_equal(b.batch_index, k);
                for (int64_t i = 0; i < b.size; i++) {
                    int64_t idx = b.indices[i];
                    assert_true(idx >= 0 && idx < n);
                    seen[idx]++;
                    first_order[e][pos++] = idx;
                    assert_int_equal(b.labels[i], idx % 10);
                    /* the image is that sample's: v / 255 exactly */
                    const float *img = b.images + (size_t)i * 3 * 16;
                    assert_true(img[0] == (float)(idx % 256) / 255.0f);
                    assert_true(img[16 + 5] == (float)(idx / 256) / 255.0f);
                }
            }
            for (int i = 0; i < 103; i++) assert_int_equal(seen[i], 1);
            supcon_batch end = next(l);
            assert_int_equal(end.size, 0);
            end = next(l); /* stays at the end */
            assert_int_equal(end.size, 0);
        }
        /* reshuffled: the two epochs' orders differ, and neither is the identity */
        assert_true(memcmp(first_order[0], first_order[1], sizeof first_order[0]) != 0);
        int ident = 1;
        for (int i = 0; i < 103; i++) ident &= first_order[0][i] == i;
        assert_false(ident);
        supcon_loader_free(l);
    }
    /* no shuffle: in order; drop_last: only whole batches */
    supcon_loader *l = make_loader(ds, t, bs, 1, 0, 0, 1, 11);
    assert_int_equal(supcon_loader_num_batches(l), 6);
    assert_int_equal(supcon_loader_start_epoch(l, 3), SUPCON_OK);
    for (int k = 0; k < 6; k++) {
        supcon_batch b = next(l);
        assert_int_equal(b.size, 16);
        for (int i = 0; i < 16; i++) assert_int_equal(b.indices[i], k * 16 + i);
    }
    assert_int_equal(next(l).size, 0);
    supcon_loader_free(l);
    supcon_transform_free(t);
    supcon_dataset_free(ds);
}

/* Rows v * B + i are view v of sample i, equal to the transform applied on its own. */
static void test_view_major_rows(void **state) {
    (void)state;
    supcon_dataset *ds = make_ds(50, 12, 1);
    supcon_transform *t = make_tf(SUPCON_PRESET_CONTRASTIVE, 8, 0);
    supcon_loader *l = make_loader(ds, t, 20, 2, 0, 1, 0, 99);
    assert_int_equal(supcon_loader_start_epoch(l, 4), SUPCON_OK);
    uint8_t img[3 * 144];
    float want[3 * 64];
    for (int k = 0; k < 3; k++) {
        supcon_batch b = next(l);
        assert_int_equal(b.views, 2);
        for (int64_t i = 0; i < b.size; i++) {
            assert_int_equal(supcon_dataset_read_image(ds, b.indices[i], SUPCON_LAYOUT_CHW, img,
                                                       sizeof img, NULL), SUPCON_OK);
            for (int v = 0; v < 2; v++) {
                assert_int_equal(supcon_transform_apply(t, img, 3, 12, 12, 99, 4,
                                                        (uint64_t)b.indices[i], v, want, NULL),
                                 SUPCON_OK);
                assert_memory_equal(b.images + (size_t)(v * b.size + i) * 3 * 64, want,
                                    sizeof want);
            }
        }
    }
    supcon_loader_free(l);
    supcon_transform_free(t);
    supcon_dataset_free(ds);
}

/* FNV-1a (on 32-bit words) over two epochs of batches */
static uint64_t run_hash(supcon_dataset *ds, supcon_transform *t, int workers, int prefetch) {
    supcon_loader *l = make_loader(ds, t, 48, workers, prefetch, 1, 0, 2024);
    uint64_t h = 1469598103934665603ull;
    for (int64_t e = 1; e <= 2; e++) {
        assert_int_equal(supcon_loader_start_epoch(l, e), SUPCON_OK);
        for (;;) {
            supcon_batch b = next(l);
            if (!b.size) break;
            size_t words = (size_t)b.views * b.size * b.channels * b.height * b.width;
            for (size_t k = 0; k < words; k++) {
                uint32_t w;
                memcpy(&w, b.images + k, 4);
                h = (h ^ w) * 1099511628211ull;
            }
            for (int64_t i = 0; i < b.size; i++) h = (h ^ (uint64_t)b.labels[i]) * 1099511628211ull;
        }
    }
    supcon_loader_free(l);
    return h;
}

static void test_same_bytes_any_worker_count(void **state) {
    (void)state;
    supcon_dataset *ds = make_ds(200, 32, 1);
    supcon_transform *t = make_tf(SUPCON_PRESET_CONTRASTIVE, 32, 0);
    uint64_t ref = run_hash(ds, t, 0, 0);
    const int cfgs[][2] = {{1, 0}, {2, 0}, {4, 0}, {2, 1}, {4, 7}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++)
        assert_true(run_hash(ds, t, cfgs[k][0], cfgs[k][1]) == ref);
    supcon_transform_free(t);
    supcon_dataset_free(ds);
}

static void test_epoch_changes_and_shutdown(void **state) {
    (void)state;
    supcon_dataset *ds = make_ds(90, 6, 1);
    supcon_transform *t = make_tf(SUPCON_PRESET_CONTRASTIVE, 6, 0);
    size_t bytes = 2 * 10 * 3 * 36 * sizeof(float);
    float *first = malloc(bytes), *again = malloc(bytes);

    supcon_loader *l = make_loader(ds, t, 10, 2, 3, 1, 0, 5);
    supcon_batch b;
    b.struct_size = sizeof b;
    assert_int_equal(supcon_loader_next(l, &b), SUPCON_ERR_STATE); /* no epoch yet */
    assert_true(td_error_mentions(g_ctx, "start_epoch"));
    /* epoch 0, then straight into 1: the batches made ahead are the right ones */
    assert_int_equal(supcon_loader_start_epoch(l, 0), SUPCON_OK);
    assert_int_equal(supcon_loader_start_epoch(l, 0), SUPCON_OK); /* twice is harmless */
    memcpy(first, next(l).images, bytes);
    while (next(l).size) {
    }
    assert_int_equal(supcon_loader_start_epoch(l, 1), SUPCON_OK);
    supcon_batch e1 = next(l);
    assert_int_equal(e1.epoch, 1);
    memcpy(again, e1.images, bytes);
    supcon_loader *fresh = make_loader(ds, t, 10, 0, 0, 1, 0, 5);
    assert_int_equal(supcon_loader_start_epoch(fresh, 1), SUPCON_OK);
    assert_memory_equal(next(fresh).images, again, bytes);
    supcon_loader_free(fresh);
    /* back to epoch 0 in the middle of epoch 1: it starts over, identical */
    next(l);
    assert_int_equal(supcon_loader_start_epoch(l, 0), SUPCON_OK);
    supcon_batch b0 = next(l);
    assert_int_equal(b0.epoch, 0);
    assert_int_equal(b0.batch_index, 0);
    assert_memory_equal(b0.images, first, bytes);
    next(l);
    supcon_loader_free(l); /* mid-epoch, workers busy filling the ring */

    /* freed before any epoch, and right after starting one */
    l = make_loader(ds, t, 10, 4, 0, 1, 0, 5);
    supcon_loader_free(l);
    l = make_loader(ds, t, 10, 4, 0, 1, 0, 5);
    assert_int_equal(supcon_loader_start_epoch(l, 7), SUPCON_OK);
    supcon_loader_free(l);
    supcon_loader_free(NULL);

    /* argument errors */
    supcon_loader_config cfg = supcon_loader_config_default();
    l = (supcon_loader *)1;
    cfg.batch_size = 0;
    assert_int_equal(supcon_loader_create(g_ctx, ds, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    assert_null(l);
    cfg = supcon_loader_config_default();
    cfg.num_workers = -1;
    assert_int_equal(supcon_loader_create(g_ctx, ds, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    cfg = supcon_loader_config_default();
    cfg.struct_size = 1;
    assert_int_equal(supcon_loader_create(g_ctx, ds, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    cfg = supcon_loader_config_default();
    assert_int_equal(supcon_loader_create(g_ctx, NULL, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_context *other = td_context();
    assert_int_equal(supcon_loader_create(other, ds, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_context_free(other);
    supcon_dataset *empty = NULL;
    assert_int_equal(supcon_dataset_from_memory(g_ctx, 0, 3, 4, 4, SUPCON_LAYOUT_CHW, NULL, NULL,
                                                1, &empty), SUPCON_OK);
    assert_int_equal(supcon_loader_create(g_ctx, empty, t, &cfg, &l), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_dataset_free(empty);
    l = make_loader(ds, t, 10, 0, 0, 1, 0, 5);
    assert_int_equal(supcon_loader_start_epoch(l, -1), SUPCON_ERR_INVALID_ARGUMENT);
    b.struct_size = 3;
    assert_int_equal(supcon_loader_next(l, &b), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_loader_free(l);

    free(first);
    free(again);
    supcon_transform_free(t);
    supcon_dataset_free(ds);
}

int main(void) {
    g_ctx = td_context();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epochs_cover_everything),
        cmocka_unit_test(test_view_major_rows),
        cmocka_unit_test(test_same_bytes_any_worker_count),
        cmocka_unit_test(test_epoch_changes_and_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    supcon_context_free(g_ctx);
    return rc;
}
