/* Private layout of data sets and transforms, and the readers' internal entry points (also
 * what the fuzz targets call). Readers work on bytes in memory, so they can be fuzzed
 * without files; the file-level code is a thin layer over them. */
#ifndef SUPCON_LIB_DATA_INTERNAL_H
#define SUPCON_LIB_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "supcon/data.h"

/* A growing list of images, each stored CHW uint8 in one buffer. */
typedef struct sc_images {
    uint8_t *pixels;  /* all images back to back */
    size_t bytes, cap;
    int64_t count, cap_count;
    int64_t *labels;  /* [count] */
    int64_t *offsets; /* [count] byte offset of each image in pixels */
    int32_t *dims;    /* [count][2] height, width */
    int channels;     /* 1 or 3, the same for every image */
} sc_images;

void sc_images_free(sc_images *im);
/* Room for `more` images of `bytes` pixels in all. */
supcon_status sc_images_reserve(supcon_context *ctx, sc_images *im, int64_t more, size_t bytes);
/* Append one image given in `layout` with `channels` planes (converted to im->channels). */
supcon_status sc_images_push(supcon_context *ctx, sc_images *im, const uint8_t *src,
                             supcon_image_layout layout, int channels, int height, int width,
                             int64_t label);

struct supcon_dataset {
    supcon_context *ctx;
    sc_images im;
    int num_classes;
    char **class_names; /* [num_classes] */
    int height, width;  /* shared size, or 0, 0 */
    int64_t skipped;
};

/* Pixels (CHW) and size of image i; i must be in range. */
static inline const uint8_t *sc_dataset_image(const supcon_dataset *ds, int64_t i, int *h,
                                              int *w)
{
    *h = ds->im.dims[2 * i];
    *w = ds->im.dims[2 * i + 1];
    return ds->im.pixels + ds->im.offsets[i];
}

/* ---- Files and gzip ---------------------------------------------------------------- */
/* Whole file into a malloc'd buffer (free with free()). ERR_IO names the file. */
supcon_status sc_read_file(supcon_context *ctx, const char *path, uint8_t **data, size_t *size);
/* 1 if data starts with the gzip magic. */
int sc_is_gzip(const uint8_t *data, size_t size);
/* Inflate a whole gzip stream (members concatenated are accepted) of at most max_out bytes.
 * ERR_FORMAT names `name` and the compressed offset of the fault. */
supcon_status sc_gunzip(supcon_context *ctx, const char *name, const uint8_t *data, size_t size,
                        size_t max_out, uint8_t **out, size_t *out_size);

/* ---- Readers (bytes in memory) ------------------------------------------------------ */
/* Append every record of one CIFAR binary file (cifar100: fine label of the 3074-byte
 * record) to im (channels 3 or 1). */
supcon_status sc_cifar_parse(supcon_context *ctx, const char *name, const uint8_t *data,
                             size_t size, int cifar100, sc_images *im);

/* Parse an IDX header: magic (type 0x08 required) and `ndims` dims (0 = any). Fills dims
 * (up to 4), *ndims_out and *data_offset; checks the total size against the header. */
supcon_status sc_idx_header(supcon_context *ctx, const char *name, const uint8_t *data,
                            size_t size, int ndims, uint32_t dims[4], int *ndims_out,
                            size_t *data_offset);
/* Images [N, H, W] (or [N, H, W, C] with C 1 or 3) and labels [N] into im. */
supcon_status sc_idx_parse(supcon_context *ctx, const char *images_name, const uint8_t *images,
                           size_t images_size, const char *labels_name, const uint8_t *labels,
                           size_t labels_size, sc_images *im);

/* A decoded picture: HWC, channels 1 (grey) or 3 (RGB). */
typedef struct sc_picture {
    uint8_t *pixels; /* malloc'd, height * width * channels */
    int height, width, channels;
} sc_picture;

/* PNG or JPEG by content (not by name). ERR_FORMAT for corrupt, truncated or unknown data,
 * ERR_UNSUPPORTED for a recognised format other than PNG/JPEG, or larger than max_pixels. */
supcon_status sc_image_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                              size_t size, int64_t max_pixels, sc_picture *pic);
supcon_status sc_png_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                            size_t size, int64_t max_pixels, sc_picture *pic);
supcon_status sc_jpeg_decode(supcon_context *ctx, const char *name, const uint8_t *data,
                             size_t size, int64_t max_pixels, sc_picture *pic);

/* ---- Image folders --------------------------------------------------------------------- */
supcon_status sc_folder_open(supcon_context *ctx, const supcon_dataset_config *cfg,
                             supcon_dataset *ds);

/* ---- Class names --------------------------------------------------------------------- */
/* ds->class_names = copies of names[0..n) (names NULL: "0", "1", ...). */
supcon_status sc_set_class_names(supcon_context *ctx, supcon_dataset *ds, int n,
                                 const char *const *names);

/* ---- Transforms ----------------------------------------------------------------------- */
struct supcon_transform {
    supcon_context *ctx;
    supcon_transform_config cfg;
};

/* Growing float scratch owned by one thread. */
typedef struct sc_scratch {
    float *buf;
    size_t cap; /* floats */
} sc_scratch;

void sc_scratch_free(sc_scratch *s);

/* Draw the parameters of one view (never fails on valid arguments). */
void sc_transform_draw(const supcon_transform *t, int height, int width, uint64_t seed,
                       uint64_t epoch, uint64_t index, int view, supcon_transform_params *p);
/* Apply drawn or given parameters: image uint8 CHW -> out float CHW (channels x size x size).
 * Only fails (ERR_OUT_OF_MEMORY, with no message recorded) when scratch cannot grow. */
supcon_status sc_transform_run(const supcon_transform *t, const uint8_t *image, int channels,
                               int height, int width, const supcon_transform_params *p,
                               float *out, sc_scratch *scratch);

#endif
