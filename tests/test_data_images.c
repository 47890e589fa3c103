/* Image folders: a tree of PNG (RGB, grey, palette, 16-bit with alpha, interlaced) and JPEG
 * (colour, grey) files written here with libpng / libjpeg and read back exactly, in
 * torchvision's order; and every kind of bad input: missing folder, no class folder, empty
 * class folder, corrupt / truncated PNG and JPEG, non-image content, an unsupported format,
 * a dangling link, too many pixels, and skip_bad_images with its count. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include <jpeglib.h>
#include <png.h>

#include "test_data_util.h"

static supcon_context *g_ctx;

/* ---- Writers ------------------------------------------------------------------------------ */

/* rows: h rows of w * channels samples of `depth` bits (16-bit big-endian as PNG wants). */
static void write_png(const char *path, int w, int h, int color, int depth, int interlace,
                      const uint8_t *data, const png_color *palette, int npal,
                      const uint8_t *trns, int ntrns) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(uintptr_t)(data + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(f);
}

static void write_jpeg(const char *path, int w, int h, int channels, const uint8_t *hwc) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = channels;
    c.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(uintptr_t)(hwc + (size_t)c.next_scanline * w * channels);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* The test's own decode of a JPEG file, to compare with the library's exactly. */
static uint8_t *decode_jpeg(const char *path, int *w, int *h, int *channels) {
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr err;
    d.err = jpeg_std_error(&err);
    jpeg_create_decompress(&d);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    jpeg_start_decompress(&d);
    *w = (int)d.output_width;
    *h = (int)d.output_height;
    *channels = d.output_components;
    uint8_t *out = malloc((size_t)*w * *h * *channels);
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = out + (size_t)d.output_scanline * *w * *channels;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    return out;
}

/* ---- The good tree ------------------------------------------------------------------------ */

typedef struct expected {
    int h, w;
    int64_t label;
    uint8_t *chw; /* 3 channels */
} expected;

static uint8_t *hwc_to_chw3(const uint8_t *hwc, int h, int w, int c) {
    uint8_t *o = malloc((size_t)3 * h * w);
    for (int k = 0; k < h * w; k++)
        for (int ch = 0; ch < 3; ch++) o[ch * h * w + k] = hwc[k * c + (c == 3 ? ch : 0)];
    return o;
}

static int build_tree(const char *root, expected *ex) {
    char p[4200];
    td_mkdir(td_path(root, "cat"));
    td_mkdir(td_path(root, "cat/sub"));
    td_mkdir(td_path(root, "dog"));
    td_mkdir(td_path(root, "emu"));
    int n = 0;

    /* cat/a.png: RGB 8-bit, 5 wide, 7 high */
    uint8_t a[7 * 5 * 3];
    for (int k = 0; k < (int)sizeof a; k++) a[k] = (uint8_t)(k * 37 + 11);
    write_png(td_path(root, "cat/a.png"), 5, 7, PNG_COLOR_TYPE_RGB, 8, 0, a, NULL, 0, NULL, 0);
    ex[n++] = (expected){7, 5, 0, hwc_to_chw3(a, 7, 5, 3)};

    /* cat/c.JPG: colour JPEG, upper-case extension */
    uint8_t c[12 * 16 * 3];
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 16; x++)
            for (int ch = 0; ch < 3; ch++) c[(y * 16 + x) * 3 + ch] = (uint8_t)(20 + 6 * x + 5 * y + 30 * ch);
    snprintf(p, sizeof p, "%s/cat/c.JPG", root);
    write_jpeg(p, 16, 12, 3, c);
    int jw, jh, jc;
    uint8_t *dec = decode_jpeg(p, &jw, &jh, &jc);
    assert_int_equal(jc, 3);
    long diff = 0;
    for (int k = 0; k < 12 * 16 * 3; k++) diff += labs((long)dec[k] - c[k]);
    assert_true(diff < 3 * 12 * 16 * 3); /* mean error under 3 levels: channel order is right */
    ex[n++] = (expected){12, 16, 0, hwc_to_chw3(dec, 12, 16, 3)};
    free(dec);

    /* cat/notes.txt: ignored, as torchvision does */
    td_write(td_path(root, "cat/notes.txt"), "hello", 5);

    /* cat/sub/b.png: grey 8-bit -> RGB */
    uint8_t b[4 * 6];
    for (int k = 0; k < 24; k++) b[k] = (uint8_t)(k * 10);
    write_png(td_path(root, "cat/sub/b.png"), 6, 4, PNG_COLOR_TYPE_GRAY, 8, 0, b, NULL, 0, NULL, 0);
    ex[n++] = (expected){4, 6, 0, hwc_to_chw3(b, 4, 6, 1)};

    /* dog/d.png: 4-bit palette with transparency (dropped, not composited) */
    png_color pal[5] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}, {200, 100, 50}};
    uint8_t trns[5] = {0, 128, 255, 255, 7};
    uint8_t d_idx[9] = {0, 1, 2, 3, 4, 3, 2, 1, 0};
    uint8_t d_packed[3 * 2]; /* 3 pixels of 4 bits per row: 2 bytes */
    for (int y = 0; y < 3; y++) {
        d_packed[y * 2] = (uint8_t)(d_idx[y * 3] << 4 | d_idx[y * 3 + 1]);
        d_packed[y * 2 + 1] = (uint8_t)(d_idx[y * 3 + 2] << 4);
    }
    write_png(td_path(root, "dog/d.png"), 3, 3, PNG_COLOR_TYPE_PALETTE, 4, 0, d_packed, pal, 5,
              trns, 5);
    uint8_t d_rgb[27];
    for (int k = 0; k < 9; k++) {
        d_rgb[k * 3] = pal[d_idx[k]].red;
        d_rgb[k * 3 + 1] = pal[d_idx[k]].green;
        d_rgb[k * 3 + 2] = pal[d_idx[k]].blue;
    }
    ex[n++] = (expected){3, 3, 1, hwc_to_chw3(d_rgb, 3, 3, 3)};

    /* dog/e.png: RGBA 16-bit: the high byte of each sample, alpha dropped */
    uint8_t e[2 * 4 * 8], e_rgb[2 * 4 * 3];
    for (int k = 0; k < 8; k++)
        for (int ch = 0; ch < 4; ch++) {
            e[k * 8 + ch * 2] = (uint8_t)(k * 30 + ch * 7);
            e[k * 8 + ch * 2 + 1] = (uint8_t)(255 - k);
            if (ch < 3) e_rgb[k * 3 + ch] = (uint8_t)(k * 30 + ch * 7);
        }
    write_png(td_path(root, "dog/e.png"), 4, 2, PNG_COLOR_TYPE_RGBA, 16, 0, e, NULL, 0, NULL, 0);
    ex[n++] = (expected){2, 4, 1, hwc_to_chw3(e_rgb, 2, 4, 3)};

    /* dog/f.jpeg: grey JPEG */
    uint8_t f[9 * 9];
    for (int k = 0; k < 81; k++) f[k] = (uint8_t)(k * 3);
    snprintf(p, sizeof p, "%s/dog/f.jpeg", root);
    write_jpeg(p, 9, 9, 1, f);
    dec = decode_jpeg(p, &jw, &jh, &jc);
    assert_int_equal(jc, 1);
    ex[n++] = (expected){9, 9, 1, hwc_to_chw3(dec, 9, 9, 1)};
    free(dec);

    /* emu/g.png: grey + alpha, interlaced */
    uint8_t g[10 * 10 * 2], g_grey[100];
    for (int k = 0; k < 100; k++) {
        g[k * 2] = g_grey[k] = (uint8_t)(k * 2 + 1);
        g[k * 2 + 1] = (uint8_t)(k & 1 ? 0 : 255);
    }
    write_png(td_path(root, "emu/g.png"), 10, 10, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 1, g, NULL, 0,
              NULL, 0);
    ex[n++] = (expected){10, 10, 2, hwc_to_chw3(g_grey, 10, 10, 1)};
    return n;
}

static supcon_status open_folder(const char *root, int skip, int channels, int64_t max_pixels,
                                 supcon_dataset **ds) {
    supcon_dataset_config cfg = supcon_dataset_config_default();
    cfg.format = SUPCON_DATASET_IMAGE_FOLDER;
    cfg.path = root;
    cfg.skip_bad_images = skip;
    cfg.channels = channels;
    if (max_pixels) cfg.max_pixels = max_pixels;
    return supcon_dataset_open(g_ctx, &cfg, ds);
}

static void test_folder_roundtrip(void **state) {
    (void)state;
    char *root = td_mkdtemp("folder");
    expected ex[16];
    int n = build_tree(root, ex);
    supcon_dataset *ds = NULL;
    supcon_status st = open_folder(root, 0, 0, 0, &ds);
    if (st != SUPCON_OK) fail_msg("%s", supcon_context_last_error(g_ctx));
    assert_int_equal(supcon_dataset_count(ds), n);
    assert_int_equal(supcon_dataset_num_classes(ds), 3);
    assert_string_equal(supcon_dataset_class_name(ds, 0), "cat");
    assert_string_equal(supcon_dataset_class_name(ds, 1), "dog");
    assert_string_equal(supcon_dataset_class_name(ds, 2), "emu");
    assert_int_equal(supcon_dataset_channels(ds), 3);
    int sh, sw;
    supcon_dataset_image_shape(ds, &sh, &sw); /* sizes differ */
    assert_int_equal(sh, 0);
    assert_int_equal(sw, 0);
    for (int i = 0; i < n; i++) {
        int h, w;
        int64_t label;
        assert_int_equal(supcon_dataset_image_info(ds, i, &h, &w, &label), SUPCON_OK);
        assert_int_equal(h, ex[i].h);
        assert_int_equal(w, ex[i].w);
        assert_int_equal(label, ex[i].label);
        size_t bytes = (size_t)3 * h * w;
        uint8_t *got = malloc(bytes);
        assert_int_equal(supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_CHW, got, bytes, NULL),
                         SUPCON_OK);
        if (memcmp(got, ex[i].chw, bytes) != 0) fail_msg("image %d differs", i);
        free(got);
    }
    supcon_dataset_free(ds);

    /* one channel: grey files stay as they are */
    assert_int_equal(open_folder(root, 0, 1, 0, &ds), SUPCON_OK);
    assert_int_equal(supcon_dataset_channels(ds), 1);
    uint8_t grey[100];
    assert_int_equal(supcon_dataset_read_image(ds, 6, SUPCON_LAYOUT_CHW, grey, sizeof grey, NULL),
                     SUPCON_OK);
    assert_memory_equal(grey, ex[6].chw, 100);
    supcon_dataset_free(ds);

    /* too many pixels */
    assert_int_equal(open_folder(root, 0, 0, 30, &ds), SUPCON_ERR_UNSUPPORTED);
    assert_true(td_error_mentions(g_ctx, "a.png"));
    for (int i = 0; i < n; i++) free(ex[i].chw);
    td_rm_rf(root);
    free(root);
}

/* ---- Bad input ------------------------------------------------------------------------------ */

/* A root with class "good" holding one valid PNG, and class "bad" holding `name` = data. */
static char *bad_tree(const char *name, const void *data, size_t n) {
    char *root = td_mkdtemp("bad");
    td_mkdir(td_path(root, "bad"));
    td_mkdir(td_path(root, "good"));
    uint8_t px[4] = {1, 2, 3, 4};
    write_png(td_path(root, "good/ok.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 8, 0, px, NULL, 0, NULL, 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/bad/%s", root, name);
    td_write(p, data, n);
    return root;
}

static void expect_bad(const char *name, const void *data, size_t n, supcon_status want,
                       const char *mention) {
    char *root = bad_tree(name, data, n);
    supcon_dataset *ds = (supcon_dataset *)1;
    supcon_status st = open_folder(root, 0, 0, 0, &ds);
    if (st != want)
        fail_msg("%s: got %s (%s), expected %s", name, supcon_status_name(st),
                 supcon_context_last_error(g_ctx), supcon_status_name(want));
    assert_null(ds);
    assert_true(td_error_mentions(g_ctx, name));
    if (mention) assert_true(td_error_mentions(g_ctx, mention));
    /* skipping: the good image stays, the bad one is counted */
    assert_int_equal(open_folder(root, 1, 0, 0, &ds), SUPCON_OK);
    assert_int_equal(supcon_dataset_count(ds), 1);
    assert_int_equal(supcon_dataset_skipped(ds), 1);
    assert_int_equal(supcon_dataset_num_classes(ds), 2);
    int64_t label;
    supcon_dataset_image_info(ds, 0, NULL, NULL, &label);
    assert_int_equal(label, 1); /* "good" is class 1 */
    supcon_dataset_free(ds);
    td_rm_rf(root);
    free(root);
}

static void test_folder_bad_images(void **state) {
    (void)state;
    /* a valid PNG and JPEG to damage */
    char *tmp = td_mkdtemp("src");
    uint8_t rgb[64 * 64 * 3];
    for (int k = 0; k < (int)sizeof rgb; k++) rgb[k] = (uint8_t)(k * 7);
    write_png(td_path(tmp, "x.png"), 64, 64, PNG_COLOR_TYPE_RGB, 8, 0, rgb, NULL, 0, NULL, 0);
    write_jpeg(td_path(tmp, "x.jpg"), 64, 64, 3, rgb); /* mostly scan data: cut inside it */
    size_t pn, jn;
    uint8_t *png = td_read(td_path(tmp, "x.png"), &pn);
    uint8_t *jpg = td_read(td_path(tmp, "x.jpg"), &jn);
    td_rm_rf(tmp);
    free(tmp);

    expect_bad("trunc.png", png, pn / 2, SUPCON_ERR_FORMAT, "PNG");
    expect_bad("trunc.jpg", jpg, jn * 3 / 4, SUPCON_ERR_FORMAT, "truncated");
    expect_bad("header_only.jpg", jpg, 300, SUPCON_ERR_FORMAT, "JPEG");
    /* damage inside the compressed data (past the 33-byte signature + IHDR) */
    uint8_t *png2 = malloc(pn);
    memcpy(png2, png, pn);
    for (size_t k = 45; k < pn - 20; k += 3) png2[k] ^= 0xa5;
    expect_bad("crc.png", png2, pn, SUPCON_ERR_FORMAT, "corrupt PNG");
    free(png2);
    uint8_t *jpg2 = malloc(jn);
    memcpy(jpg2, jpg, jn);
    for (size_t k = 3; k < 200 && k < jn; k++) jpg2[k] = (uint8_t)(k * 13);
    expect_bad("junk.jpg", jpg2, jn, SUPCON_ERR_FORMAT, "corrupt JPEG");
    free(jpg2);
    const char text[] = "this is not an image\n";
    expect_bad("text.png", text, sizeof text - 1, SUPCON_ERR_FORMAT, "not a PNG or JPEG");
    expect_bad("empty.jpg", "", 0, SUPCON_ERR_FORMAT, "empty");
    const uint8_t bmp[32] = {'B', 'M', 32};
    expect_bad("pic.bmp", bmp, sizeof bmp, SUPCON_ERR_UNSUPPORTED, "BMP");
    expect_bad("just_signature.png", png, 8, SUPCON_ERR_FORMAT, NULL);
    expect_bad("just_soi.jpg", jpg, 3, SUPCON_ERR_FORMAT, NULL);

    /* a dangling link named like an image: unreadable */
    char *root = bad_tree("placeholder.txt", "x", 1);
    char link[4200];
    snprintf(link, sizeof link, "%s/bad/gone.png", root);
    assert_int_equal(symlink("/nonexistent/supcon/gone.png", link), 0);
    supcon_dataset *ds = NULL;
    assert_int_equal(open_folder(root, 0, 0, 0, &ds), SUPCON_ERR_IO);
    assert_true(td_error_mentions(g_ctx, "gone.png"));
    assert_int_equal(open_folder(root, 1, 0, 0, &ds), SUPCON_OK);
    assert_int_equal(supcon_dataset_skipped(ds), 1);
    supcon_dataset_free(ds);
    td_rm_rf(root);
    free(root);
    free(png);
    free(jpg);
}

static void test_folder_bad_layout(void **state) {
    (void)state;
    supcon_dataset *ds = (supcon_dataset *)1;
    char *root = td_mkdtemp("layout");
    /* missing root */
    const char *missing = td_path(root, "missing");
    assert_int_equal(open_folder(missing, 0, 0, 0, &ds), SUPCON_ERR_IO);
    assert_null(ds);
    assert_true(td_error_mentions(g_ctx, "missing"));
    /* files but no class folder */
    td_write(td_path(root, "loose.png"), "x", 1);
    assert_int_equal(open_folder(root, 0, 0, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "no class"));
    /* an empty class folder (only a non-image file), even when skipping */
    td_mkdir(td_path(root, "empty"));
    td_write(td_path(root, "empty/readme.txt"), "x", 1);
    assert_int_equal(open_folder(root, 0, 0, 0, &ds), SUPCON_ERR_FORMAT);
    assert_true(td_error_mentions(g_ctx, "empty"));
    assert_int_equal(open_folder(root, 1, 0, 0, &ds), SUPCON_ERR_FORMAT);
    /* the root is a file */
    assert_int_equal(open_folder(td_path(root, "loose.png"), 0, 0, 0, &ds), SUPCON_ERR_IO);
    td_rm_rf(root);
    free(root);
}

int main(void) {
    g_ctx = td_context();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_roundtrip),
        cmocka_unit_test(test_folder_bad_images),
        cmocka_unit_test(test_folder_bad_layout),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    supcon_context_free(g_ctx);
    return rc;
}
