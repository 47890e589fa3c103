/* libsupcon data: data sets (CIFAR-10/100 binary, image folders, IDX), the SupCon / SimCLR
 * augmentations with torchvision's parameter semantics, and a multi-threaded batch loader.
 * Everything random is keyed by (seed, epoch, sample index, view), so a given seed gives
 * bit-identical batches whatever the number of worker threads. See docs/data.md. */
#ifndef SUPCON_DATA_H
#define SUPCON_DATA_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Data sets ====================================================================== */

/** A data set: a fixed list of images (uint8, 1 or 3 channels) with integer labels, held in
 *  memory once opened. Read-only after opening: the accessors and supcon_dataset_read_image
 *  may be called from several threads at once (errors are then reported through the
 *  context, which is not thread-safe: check arguments first if you share one). */
typedef struct supcon_dataset supcon_dataset;

typedef enum supcon_dataset_format {
    SUPCON_DATASET_CIFAR10 = 0,      /* data_batch_1..5.bin / test_batch.bin */
    SUPCON_DATASET_CIFAR100 = 1,     /* train.bin / test.bin, fine labels (100 classes) */
    SUPCON_DATASET_IMAGE_FOLDER = 2, /* root/<class>/<image>, as torchvision's ImageFolder */
    SUPCON_DATASET_IDX = 3           /* MNIST-style IDX files, plain or gzipped */
} supcon_dataset_format;

typedef enum supcon_split {
    SUPCON_SPLIT_TRAIN = 0,
    SUPCON_SPLIT_TEST = 1
} supcon_split;

/** Memory layout of one image: channel planes (CHW) or interleaved pixels (HWC). */
typedef enum supcon_image_layout {
    SUPCON_LAYOUT_CHW = 0,
    SUPCON_LAYOUT_HWC = 1
} supcon_image_layout;

typedef struct supcon_dataset_config {
    size_t struct_size;           /* sizeof(supcon_dataset_config): set by _default() */
    supcon_dataset_format format; /* default SUPCON_DATASET_CIFAR10 */
    /** CIFAR: the folder holding the .bin files, or its parent holding
     *  cifar-10-batches-bin/ (cifar-100-binary/). IMAGE_FOLDER: the root. IDX: the folder
     *  holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Default NULL (required
     *  unless IDX files are named below). */
    const char *path;
    supcon_split split;      /* CIFAR and IDX; default SUPCON_SPLIT_TRAIN */
    const char *idx_images;  /* IDX: explicit images file (overrides path/split), or NULL */
    const char *idx_labels;  /* IDX: explicit labels file, or NULL */
    /** Channels of the images handed out: 0 = the data set's own (3 for CIFAR and image
     *  folders, 1 for IDX); 1 converts RGB to grey (L = 0.299 R + 0.587 G + 0.114 B,
     *  rounded); 3 repeats a grey plane. Default 0. */
    int channels;
    /** IMAGE_FOLDER: 1 = leave out files that cannot be read or decoded, counting them
     *  (supcon_dataset_skipped); 0 = the first such file fails the open. Default 0. */
    int skip_bad_images;
    /** IMAGE_FOLDER: images larger than this many pixels (width x height) are treated as
     *  bad. Default 1 << 26. */
    int64_t max_pixels;
} supcon_dataset_config;

/** Defaults as documented per field, with struct_size set. */
SUPCON_API supcon_dataset_config supcon_dataset_config_default(void);

/** Open (read and decode) a whole data set into memory.
 *  Errors, each with a message naming the file (and the byte offset where it helps):
 *  ERR_INVALID_ARGUMENT (NULL ctx/cfg/out, bad struct_size, unknown format, channels not
 *  0/1/3, no path), ERR_IO (missing or unreadable file or folder), ERR_FORMAT (CIFAR file
 *  whose size is not a whole number of records or with a label out of range; IDX with a
 *  wrong magic, an element type other than uint8, a size that disagrees with its header,
 *  or image and label counts that differ; corrupt gzip; an image folder with no class
 *  folder, a class folder with no image file, a corrupt, truncated or non-image file),
 *  ERR_UNSUPPORTED (an image format other than PNG or JPEG), ERR_OUT_OF_MEMORY.
 *  On error *out is NULL. */
SUPCON_API supcon_status supcon_dataset_open(supcon_context *ctx,
                                             const supcon_dataset_config *cfg,
                                             supcon_dataset **out);

/** A data set made from caller memory (copied): count images of channels x height x width
 *  uint8 pixels laid out as `layout`, one after the other, and count labels in
 *  [0, num_classes). Class names are "0", "1", ... Errors: ERR_INVALID_ARGUMENT (NULL,
 *  count < 0, channels not 1/3, height/width < 1, num_classes < 1, a label out of range),
 *  ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_dataset_from_memory(supcon_context *ctx, int64_t count,
                                                    int channels, int height, int width,
                                                    supcon_image_layout layout,
                                                    const uint8_t *pixels,
                                                    const int64_t *labels, int num_classes,
                                                    supcon_dataset **out);

/** Free the data set. NULL is a no-op. Free loaders that use it first. */
SUPCON_API void supcon_dataset_free(supcon_dataset *ds);

/* Accessors: O(1), thread-safe, no NULL accepted. */
SUPCON_API int64_t supcon_dataset_count(const supcon_dataset *ds);
SUPCON_API int supcon_dataset_num_classes(const supcon_dataset *ds);
/** Name of class c ("airplane", a folder name, "7"), or NULL when c is out of range. */
SUPCON_API const char *supcon_dataset_class_name(const supcon_dataset *ds, int c);
SUPCON_API int supcon_dataset_channels(const supcon_dataset *ds);
/** Files left out by skip_bad_images (0 otherwise). */
SUPCON_API int64_t supcon_dataset_skipped(const supcon_dataset *ds);
/** Height and width shared by every image, or 0 and 0 when sizes differ. */
SUPCON_API void supcon_dataset_image_shape(const supcon_dataset *ds, int *height, int *width);

/** Size and label of image i; any output may be NULL.
 *  Errors: ERR_INVALID_ARGUMENT (NULL ds, i out of range). */
SUPCON_API supcon_status supcon_dataset_image_info(const supcon_dataset *ds, int64_t i,
                                                   int *height, int *width, int64_t *label);

/** Copy image i (channels x height x width uint8, as `layout`) into dst, whose size
 *  dst_bytes must be at least that; label may be NULL.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, i out of range, dst too small, bad layout). */
SUPCON_API supcon_status supcon_dataset_read_image(const supcon_dataset *ds, int64_t i,
                                                   supcon_image_layout layout, uint8_t *dst,
                                                   size_t dst_bytes, int64_t *label);

/** The reference's normalisation constants of a format (CIFAR-10, CIFAR-100); other formats
 *  get mean 0.5 and std 0.5 per channel. mean and std receive 3 values. */
SUPCON_API void supcon_dataset_normalization(supcon_dataset_format format, float mean[3],
                                             float std[3]);

/* ==== Transforms ===================================================================== */

/** The three pipelines of the reference programs. */
typedef enum supcon_transform_preset {
    SUPCON_PRESET_CONTRASTIVE = 0, /* crop, flip, jitter (p 0.8), grey (p 0.2), normalise;
                                      two views */
    SUPCON_PRESET_SUPERVISED = 1,  /* crop, flip, normalise; one view (cross-entropy and
                                      linear-evaluation training) */
    SUPCON_PRESET_EVAL = 2         /* normalise only; one view */
} supcon_transform_preset;

typedef struct supcon_transform_config {
    size_t struct_size; /* set by _default() / _preset() */
    int size;           /* output height = width, default 32 */
    int views;          /* views per sample, 1..8; default 2 */
    /** RandomResizedCrop: 1 = on. Area fraction from U[scale_min, scale_max], aspect ratio
     *  log-uniform in [ratio_min, ratio_max], up to 10 tries, then a centre crop. Off: the
     *  image is used whole, resized only when it is not size x size. Default 1. */
    int crop;
    float scale_min, scale_max; /* default 0.2, 1 */
    float ratio_min, ratio_max; /* default 3/4, 4/3 */
    /** Bilinear resize with an antialiasing (triangle) filter when shrinking, as PIL and
     *  torchvision >= 0.17; 0 = torchvision's plain bilinear (align_corners=False).
     *  Both agree when enlarging, as for CIFAR crops. Default 1. */
    int antialias;
    float flip_p; /* horizontal flip probability, default 0.5 */
    /** ColorJitter(brightness, contrast, saturation, hue) applied with probability
     *  jitter_p: factors from U[max(0, 1 - x), 1 + x] (hue: shift from U[-hue, hue]),
     *  applied in a random order. Defaults 0.8 and 0.4, 0.4, 0.4, 0.1. */
    float jitter_p;
    float brightness, contrast, saturation, hue;
    float grey_p;  /* grey-scale probability, default 0.2 */
    float mean[3]; /* per-channel normalisation, default CIFAR-10's */
    float std[3];
} supcon_transform_config;

/** The contrastive preset at size 32 with CIFAR-10's mean and std. */
SUPCON_API supcon_transform_config supcon_transform_config_default(void);
/** A preset at size 32 with CIFAR-10's mean and std (change size, mean, std after). */
SUPCON_API supcon_transform_config supcon_transform_config_preset(supcon_transform_preset p);

/** An immutable pipeline. Applying it is thread-safe. */
typedef struct supcon_transform supcon_transform;

/** Errors: ERR_INVALID_ARGUMENT (NULL ctx/out, bad struct_size, size < 1, views not in 1..8,
 *  scale or ratio range empty or not positive, a probability outside [0, 1], a negative
 *  jitter strength, hue > 0.5, a std of 0, a value not finite), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_transform_create(supcon_context *ctx,
                                                 const supcon_transform_config *cfg,
                                                 supcon_transform **out);
SUPCON_API void supcon_transform_free(supcon_transform *t);
/** Views per sample and output size of the pipeline. */
SUPCON_API int supcon_transform_views(const supcon_transform *t);
SUPCON_API int supcon_transform_size(const supcon_transform *t);

/** Jitter operations, as ordered in supcon_transform_params.jitter_order. */
typedef enum supcon_jitter_op {
    SUPCON_JITTER_BRIGHTNESS = 0,
    SUPCON_JITTER_CONTRAST = 1,
    SUPCON_JITTER_SATURATION = 2,
    SUPCON_JITTER_HUE = 3
} supcon_jitter_op;

/** The random choices made for one view of one sample. */
typedef struct supcon_transform_params {
    size_t struct_size;     /* set by the caller to sizeof(supcon_transform_params) */
    int crop_top, crop_left, crop_height, crop_width; /* the box in the source image */
    int crop_tries;         /* tries used (1..10), or 11 for the centre-crop fallback, 0 when
                               cropping is off */
    float crop_scale;       /* area fraction and aspect ratio of the accepted try (0 for the */
    float crop_ratio;       /* fallback or no crop) */
    int flip;               /* 1: mirrored horizontally */
    int jitter;             /* 1: colour jitter applied */
    int jitter_order[4];    /* supcon_jitter_op values in the order applied */
    float brightness, contrast, saturation, hue; /* the factors / hue shift drawn */
    int grey;               /* 1: converted to grey scale */
} supcon_transform_params;

/** Draw the parameters of view `view` of sample `index` in epoch `epoch` for a source
 *  image of height x width, without touching pixels. Errors: ERR_INVALID_ARGUMENT. */
SUPCON_API supcon_status supcon_transform_sample(const supcon_transform *t, int height,
                                                 int width, uint64_t seed, uint64_t epoch,
                                                 uint64_t index, int view,
                                                 supcon_transform_params *params);

/** Apply the pipeline to one image (uint8 CHW, `channels` 1 or 3) for one view, writing
 *  channels x size x size float32 (CHW) to out. params, if not NULL, receives the choices.
 *  Errors: ERR_INVALID_ARGUMENT, ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_transform_apply(const supcon_transform *t, const uint8_t *image,
                                                int channels, int height, int width,
                                                uint64_t seed, uint64_t epoch, uint64_t index,
                                                int view, float *out,
                                                supcon_transform_params *params);

/** Apply given parameters instead of drawing them (to reproduce torchvision exactly, or
 *  to test). Crop fields must lie inside the image; jitter_order must be a permutation of
 *  0..3 when jitter is 1. Steps the pipeline's config leaves out still apply if set here,
 *  except normalisation, which is always the config's. Errors: ERR_INVALID_ARGUMENT,
 *  ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_transform_apply_params(const supcon_transform *t,
                                                       const uint8_t *image, int channels,
                                                       int height, int width,
                                                       const supcon_transform_params *params,
                                                       float *out);

/* ==== Loader ========================================================================= */

typedef struct supcon_loader_config {
    size_t struct_size; /* set by _default() */
    int64_t batch_size; /* B, default 256 */
    int num_workers;    /* worker threads, default 2; 0 = batches made on the calling thread */
    int prefetch;       /* batches made ahead, >= 1; default 0 = 2 x max(num_workers, 1) */
    int shuffle;        /* reshuffle every epoch, default 1 */
    int drop_last;      /* drop the last, smaller batch; default 0 (the reference keeps it) */
    uint64_t seed;      /* seeds the shuffles and the augmentations, default 0 */
} supcon_loader_config;

SUPCON_API supcon_loader_config supcon_loader_config_default(void);

/** One batch, owned by the loader. images: [views x size, C, H, W] float32, view-major:
 *  row v * size + i is view v of sample i (SPEC §1's contrast order; the encoder takes all
 *  rows as one batch, and its [views x size, D] output, viewed as [V, B, D] and transposed,
 *  gives supcon_loss_forward's [B, V, D]). labels and indices: [size] int64. */
typedef struct supcon_batch {
    size_t struct_size;     /* set by the caller to sizeof(supcon_batch) */
    int64_t size;           /* samples in this batch, 0 at the end of the epoch */
    int views, channels, height, width;
    const float *images;
    const int64_t *labels;  /* class of each sample */
    const int64_t *indices; /* data-set index of each sample */
    int64_t epoch;
    int64_t batch_index;    /* position within the epoch, from 0 */
} supcon_batch;

typedef struct supcon_loader supcon_loader;

/** A loader over ds with pipeline t (both must outlive it). Threads start at once and wait
 *  for supcon_loader_start_epoch. Errors: ERR_INVALID_ARGUMENT (NULL, bad struct_size,
 *  batch_size < 1, num_workers < 0 or > 256, prefetch < 0, channels of t and ds that
 *  cannot meet, an empty data set, data set from another context), ERR_OUT_OF_MEMORY,
 *  ERR_INTERNAL (a thread could not be started). */
SUPCON_API supcon_status supcon_loader_create(supcon_context *ctx, const supcon_dataset *ds,
                                              const supcon_transform *t,
                                              const supcon_loader_config *cfg,
                                              supcon_loader **out);

/** Start (or jump to) an epoch. Workers make the batches of each epoch and then carry on
 *  with the next one, so calling this with the epoch that just ended + 1 finds batches
 *  ready; any other epoch, or a call in the middle of an epoch, drops what was made ahead.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, epoch < 0). */
SUPCON_API supcon_status supcon_loader_start_epoch(supcon_loader *l, int64_t epoch);

/** Next batch of the current epoch; batch->size is 0 once the epoch is over. The batch's
 *  memory stays valid until the next call on the loader. Blocks until the batch is ready.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, bad struct_size), ERR_STATE (no epoch started). */
SUPCON_API supcon_status supcon_loader_next(supcon_loader *l, supcon_batch *batch);

/** Batches per epoch (the last one may be smaller unless drop_last). */
SUPCON_API int64_t supcon_loader_num_batches(const supcon_loader *l);

/** Stop the workers (mid-epoch is fine) and free everything. NULL is a no-op. */
SUPCON_API void supcon_loader_free(supcon_loader *l);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_DATA_H */
