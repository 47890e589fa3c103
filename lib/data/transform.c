/* The augmentation pipeline of SPEC §4, with torchvision's semantics on float32 CHW images
 * in [0, 1] (ToTensor first): RandomResizedCrop, horizontal flip, ColorJitter in a random
 * order, random grey scale, normalisation. Parameters are drawn from Philox streams keyed by
 * (seed, epoch, index, view), one stream per step, so turning one step off leaves the others'
 * draws unchanged. Arithmetic follows torchvision/ATen's float32 order; see docs/data.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "error.h"
#include "rng.h"

/* Grey weights of SPEC §4 and PIL (torchvision's tensor path uses 0.2989 for red). */
#define GREY_R 0.299f
#define GREY_G 0.587f
#define GREY_B 0.114f

enum { STEP_CROP = 1, STEP_FLIP = 2, STEP_JITTER = 3, STEP_GREY = 4 };
#define STREAM_TAG 0x73757063646174ull /* "supcdat": keeps data streams apart from others */

/* ---- Configuration ----------------------------------------------------------------------- */

supcon_transform_config supcon_transform_config_preset(supcon_transform_preset p)
{
    supcon_transform_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.size = 32;
    c.views = p == SUPCON_PRESET_CONTRASTIVE ? 2 : 1;
    c.crop = p != SUPCON_PRESET_EVAL;
    c.scale_min = 0.2f; /* all three reference programs use scale (0.2, 1) */
    c.scale_max = 1.0f;
    c.ratio_min = 3.0f / 4.0f;
    c.ratio_max = 4.0f / 3.0f;
    c.antialias = 1;
    c.flip_p = p == SUPCON_PRESET_EVAL ? 0.0f : 0.5f;
    if (p == SUPCON_PRESET_CONTRASTIVE) {
        c.jitter_p = 0.8f;
        c.brightness = c.contrast = c.saturation = 0.4f;
        c.hue = 0.1f;
        c.grey_p = 0.2f;
    }
    supcon_dataset_normalization(SUPCON_DATASET_CIFAR10, c.mean, c.std);
    return c;
}

supcon_transform_config supcon_transform_config_default(void)
{
    return supcon_transform_config_preset(SUPCON_PRESET_CONTRASTIVE);
}

static int finite_in(float x, float lo, float hi)
{
    return isfinite(x) && x >= lo && x <= hi;
}

supcon_status supcon_transform_create(supcon_context *ctx, const supcon_transform_config *cfg,
                                      supcon_transform **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !cfg || !out)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_create: ctx, cfg and out must not be NULL");
    if (cfg->struct_size != sizeof *cfg)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_create: cfg->struct_size is %zu, expected %zu",
                        cfg->struct_size, sizeof *cfg);
#define BAD(...) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_transform_create: " __VA_ARGS__)
    if (cfg->size < 1 || cfg->size > 8192)
        BAD("size %d not in 1..8192", cfg->size);
    if (cfg->views < 1 || cfg->views > 8)
        BAD("views %d not in 1..8", cfg->views);
    if (cfg->crop && !(finite_in(cfg->scale_min, 1e-6f, 1e6f) &&
                       finite_in(cfg->scale_max, cfg->scale_min, 1e6f)))
        BAD("scale range (%g, %g) must satisfy 0 < min <= max", cfg->scale_min, cfg->scale_max);
    if (cfg->crop && !(finite_in(cfg->ratio_min, 1e-6f, 1e6f) &&
                       finite_in(cfg->ratio_max, cfg->ratio_min, 1e6f)))
        BAD("ratio range (%g, %g) must satisfy 0 < min <= max", cfg->ratio_min, cfg->ratio_max);
    if (!finite_in(cfg->flip_p, 0, 1) || !finite_in(cfg->jitter_p, 0, 1) ||
        !finite_in(cfg->grey_p, 0, 1))
        BAD("probabilities (flip %g, jitter %g, grey %g) must lie in [0, 1]", cfg->flip_p,
            cfg->jitter_p, cfg->grey_p);
    if (!finite_in(cfg->brightness, 0, 1e6f) || !finite_in(cfg->contrast, 0, 1e6f) ||
        !finite_in(cfg->saturation, 0, 1e6f) || !finite_in(cfg->hue, 0, 0.5f))
        BAD("jitter strengths must be >= 0 and hue <= 0.5 (got %g, %g, %g, %g)",
            cfg->brightness, cfg->contrast, cfg->saturation, cfg->hue);
    for (int c = 0; c < 3; c++)
        if (!isfinite(cfg->mean[c]) || !isfinite(cfg->std[c]) || cfg->std[c] == 0.0f)
            BAD("mean[%d] = %g / std[%d] = %g: both must be finite and std non-zero", c,
                cfg->mean[c], c, cfg->std[c]);
#undef BAD
    supcon_transform *t = calloc(1, sizeof *t);
    if (!t)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for a transform");
    t->ctx = ctx;
    t->cfg = *cfg;
    *out = t;
    return SUPCON_OK;
}

void supcon_transform_free(supcon_transform *t)
{
    free(t);
}

int supcon_transform_views(const supcon_transform *t)
{
    return t->cfg.views;
}

int supcon_transform_size(const supcon_transform *t)
{
    return t->cfg.size;
}

void sc_scratch_free(sc_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

static float *scratch_get(sc_scratch *s, size_t floats)
{
    if (floats > s->cap) {
        float *nb = realloc(s->buf, floats * sizeof(float));
        if (!nb)
            return NULL;
        s->buf = nb;
        s->cap = floats;
    }
    return s->buf;
}

/* ---- Drawing parameters ------------------------------------------------------------------- */

/* torchvision's RandomResizedCrop.get_params; area and ratio draws in float32 as torch's
 * uniform_, the box arithmetic in double with Python's round-half-even (rint). */
static void draw_crop(const supcon_transform_config *c, sc_rng *r, int height, int width,
                      supcon_transform_params *p)
{
    double area = (double)height * (double)width;
    float log_lo = logf(c->ratio_min), log_hi = logf(c->ratio_max);
    for (int attempt = 1; attempt <= 10; attempt++) {
        float s = sc_rng_range_f(r, c->scale_min, c->scale_max);
        float ar = expf(sc_rng_range_f(r, log_lo, log_hi));
        double target = area * (double)s;
        double wd = rint(sqrt(target * (double)ar)), hd = rint(sqrt(target / (double)ar));
        if (wd > 0 && wd <= width && hd > 0 && hd <= height) {
            int w = (int)wd, h = (int)hd;
            p->crop_top = (int)sc_rng_below(r, (uint64_t)(height - h + 1));
            p->crop_left = (int)sc_rng_below(r, (uint64_t)(width - w + 1));
            p->crop_height = h;
            p->crop_width = w;
            p->crop_tries = attempt;
            p->crop_scale = s;
            p->crop_ratio = ar;
            return;
        }
    }
    /* fallback: centre crop, clamped to the ratio range */
    double in_ratio = (double)width / (double)height;
    int w = width, h = height;
    if (in_ratio < (double)c->ratio_min) {
        h = (int)rint((double)w / (double)c->ratio_min);
    } else if (in_ratio > (double)c->ratio_max) {
        w = (int)rint((double)h * (double)c->ratio_max);
    }
    if (h < 1) /* only for extreme ratio ranges; torchvision would fail here */
        h = 1;
    if (w < 1)
        w = 1;
    if (h > height)
        h = height;
    if (w > width)
        w = width;
    p->crop_top = (height - h) / 2;
    p->crop_left = (width - w) / 2;
    p->crop_height = h;
    p->crop_width = w;
    p->crop_tries = 11;
    p->crop_scale = 0;
    p->crop_ratio = 0;
}

void sc_transform_draw(const supcon_transform *t, int height, int width, uint64_t seed,
                       uint64_t epoch, uint64_t index, int view, supcon_transform_params *p)
{
    const supcon_transform_config *c = &t->cfg;
    size_t keep = p->struct_size;
    memset(p, 0, sizeof *p);
    p->struct_size = keep;
    uint64_t base = sc_rng_mix(sc_rng_mix(sc_rng_mix(STREAM_TAG, epoch), index), (uint64_t)view);
    sc_rng r;

    if (c->crop) {
        sc_rng_init(&r, seed, sc_rng_mix(base, STEP_CROP));
        draw_crop(c, &r, height, width, p);
    } else {
        p->crop_height = height;
        p->crop_width = width;
    }

    sc_rng_init(&r, seed, sc_rng_mix(base, STEP_FLIP));
    p->flip = sc_rng_uniform_f(&r) < c->flip_p;

    /* ColorJitter.get_params draws the order and all four factors whether used or not */
    sc_rng_init(&r, seed, sc_rng_mix(base, STEP_JITTER));
    p->jitter = sc_rng_uniform_f(&r) < c->jitter_p;
    for (int k = 0; k < 4; k++)
        p->jitter_order[k] = k;
    for (int k = 3; k > 0; k--) {
        int j = (int)sc_rng_below(&r, (uint64_t)k + 1);
        int tmp = p->jitter_order[k];
        p->jitter_order[k] = p->jitter_order[j];
        p->jitter_order[j] = tmp;
    }
    p->brightness = sc_rng_range_f(&r, fmaxf(0.0f, 1.0f - c->brightness), 1.0f + c->brightness);
    p->contrast = sc_rng_range_f(&r, fmaxf(0.0f, 1.0f - c->contrast), 1.0f + c->contrast);
    p->saturation = sc_rng_range_f(&r, fmaxf(0.0f, 1.0f - c->saturation), 1.0f + c->saturation);
    p->hue = sc_rng_range_f(&r, -c->hue, c->hue);
    /* a strength of 0 turns that operation off (torchvision stores None) */
    if (c->brightness == 0.0f)
        p->brightness = 1.0f;
    if (c->contrast == 0.0f)
        p->contrast = 1.0f;
    if (c->saturation == 0.0f)
        p->saturation = 1.0f;
    if (c->hue == 0.0f)
        p->hue = 0.0f;

    sc_rng_init(&r, seed, sc_rng_mix(base, STEP_GREY));
    p->grey = sc_rng_uniform_f(&r) < c->grey_p;
}

/* ---- Resampling ------------------------------------------------------------------------------ */

/* One axis of a resize from `in` source samples to `out`: for output i, taps from start[i]
 * with weights w[i * stride + k], k < count[i]. */
typedef struct axis_plan {
    int *start, *count;
    float *w;
    int stride;
} axis_plan;

static int axis_stride(int in, int out, int antialias)
{
    if (!antialias)
        return 2;
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? scale : 1.0f;
    return (int)ceilf(support) * 2 + 1;
}

/* ATen's upsample_bilinear2d (align_corners=False): source x = scale (i + 0.5) - 0.5,
 * clamped at 0, two taps. The scale is a float, the source index and the weights are worked
 * out in double (CPU accumulate type) and then rounded, as ATen does. */
static void plan_bilinear(int in, int out, axis_plan *a)
{
    double scale = (double)((float)in / (float)out);
    for (int i = 0; i < out; i++) {
        double src = scale * ((double)i + 0.5) - 0.5;
        if (src < 0)
            src = 0;
        int i0 = (int)src;
        double l1 = src - (double)i0;
        if (l1 > 1.0)
            l1 = 1.0;
        a->start[i] = i0;
        a->count[i] = i0 < in - 1 ? 2 : 1;
        a->w[i * a->stride] = (float)(1.0 - l1);
        a->w[i * a->stride + 1] = (float)l1;
        if (a->count[i] == 1) /* at the border both taps are the same sample */
            a->w[i * a->stride] = 1.0f;
    }
}

/* ATen's _upsample_bilinear2d_aa / PIL: a triangle filter stretched by the shrink factor,
 * weights normalised to sum 1; float32 with ATen's promotions. */
static void plan_antialias(int in, int out, axis_plan *a)
{
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? (float)(1.0 * scale) : 1.0f;
    float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    for (int i = 0; i < out; i++) {
        float center = (float)(scale * ((double)i + 0.5));
        long xmin = (long)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        long xmax = (long)(center + support + 0.5);
        if (xmax > in)
            xmax = in;
        long n = xmax - xmin;
        if (n < 0)
            n = 0;
        if (n > a->stride)
            n = a->stride;
        float *w = a->w + (size_t)i * (size_t)a->stride;
        float total = 0;
        for (long j = 0; j < n; j++) {
            float x = (float)(((float)(j + xmin) - center + 0.5) * invscale);
            if (x < 0)
                x = -x;
            w[j] = x < 1.0f ? 1.0f - x : 0.0f;
            total += w[j];
        }
        if (total != 0.0f)
            for (long j = 0; j < n; j++)
                w[j] /= total;
        a->start[i] = (int)xmin;
        a->count[i] = (int)n;
    }
}

/* ToTensor's value of a byte, v / 255 in float32: a table, since dividing per tap is slow. */
static float byte_to_float(uint8_t v)
{
    static const float table[256] = {
#define V4(i) (float)(i) / 255.0f, (float)(i + 1) / 255.0f, (float)(i + 2) / 255.0f, (float)(i + 3) / 255.0f
#define V16(i) V4(i), V4(i + 4), V4(i + 8), V4(i + 12)
#define V64(i) V16(i), V16(i + 16), V16(i + 32), V16(i + 48)
        V64(0), V64(64), V64(128), V64(192)
#undef V64
#undef V16
#undef V4
    };
    return table[v];
}

/* Crop box (top, left, ch, cw) of a uint8 CHW image resized to S x S floats in [0, 1]
 * (width pass, then height pass, as ATen), mirrored when flip. */
static supcon_status resized_crop(const uint8_t *src, int channels, int height, int width,
                                  const supcon_transform_params *p, int size, int antialias,
                                  float *out, sc_scratch *scratch)
{
    int top = p->crop_top, left = p->crop_left, ch = p->crop_height, cw = p->crop_width;
    int sx = axis_stride(cw, size, antialias), sy = axis_stride(ch, size, antialias);
    size_t need = (size_t)size * (size_t)(sx + sy) + (size_t)ch * (size_t)size +
                  /* ints stored in float slots */ 4 * (size_t)size;
    float *buf = scratch_get(scratch, need);
    if (!buf)
        return SUPCON_ERR_OUT_OF_MEMORY;
    axis_plan ax = {(int *)(void *)buf, (int *)(void *)(buf + size), buf + 4 * (size_t)size, sx};
    axis_plan ay = {(int *)(void *)(buf + 2 * (size_t)size), (int *)(void *)(buf + 3 * (size_t)size),
                    ax.w + (size_t)size * (size_t)sx, sy};
    float *tmp = ay.w + (size_t)size * (size_t)sy; /* [ch][size] */
    if (antialias) {
        plan_antialias(cw, size, &ax);
        plan_antialias(ch, size, &ay);
    } else {
        plan_bilinear(cw, size, &ax);
        plan_bilinear(ch, size, &ay);
    }
    size_t plane = (size_t)height * (size_t)width, oplane = (size_t)size * (size_t)size;
    for (int c = 0; c < channels; c++) {
        const uint8_t *img = src + (size_t)c * plane;
        for (int y = 0; y < ch; y++) {
            const uint8_t *row = img + (size_t)(top + y) * (size_t)width + (size_t)left;
            float *trow = tmp + (size_t)y * (size_t)size;
            for (int x = 0; x < size; x++) {
                const float *w = ax.w + (size_t)x * (size_t)sx;
                const uint8_t *s = row + ax.start[x];
                float acc = byte_to_float(s[0]) * w[0];
                for (int k = 1; k < ax.count[x]; k++)
                    acc += byte_to_float(s[k]) * w[k];
                trow[x] = acc;
            }
        }
        float *o = out + (size_t)c * oplane;
        for (int y = 0; y < size; y++) {
            const float *w = ay.w + (size_t)y * (size_t)sy;
            const float *t0 = tmp + (size_t)ay.start[y] * (size_t)size;
            float *orow = o + (size_t)y * (size_t)size;
            /* tap by tap over the whole row (vectorises; the same sums in the same order) */
            for (int x = 0; x < size; x++)
                orow[x] = t0[x] * w[0];
            for (int k = 1; k < ay.count[y]; k++) {
                const float *tk = t0 + (size_t)k * (size_t)size;
                float wk = w[k];
                for (int x = 0; x < size; x++)
                    orow[x] += tk[x] * wk;
            }
            if (p->flip)
                for (int a = 0, b = size - 1; a < b; a++, b--) {
                    float t = orow[a];
                    orow[a] = orow[b];
                    orow[b] = t;
                }
        }
    }
    return SUPCON_OK;
}

/* No resize needed: convert (and mirror) the crop. */
static void plain_crop(const uint8_t *src, int channels, int height, int width,
                       const supcon_transform_params *p, float *out)
{
    int size = p->crop_height; /* == crop_width */
    size_t plane = (size_t)height * (size_t)width;
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < size; y++) {
            const uint8_t *row =
                src + (size_t)c * plane + (size_t)(p->crop_top + y) * (size_t)width + p->crop_left;
            float *orow = out + ((size_t)c * (size_t)size + (size_t)y) * (size_t)size;
            for (int x = 0; x < size; x++)
                orow[p->flip ? size - 1 - x : x] = byte_to_float(row[x]);
        }
}

/* ---- Colour ----------------------------------------------------------------------------------- */

static float clamp01(float x)
{
    x = x > 0.0f ? x : 0.0f; /* written so that they compile to maxss / minss */
    return x < 1.0f ? x : 1.0f;
}

static float grey_of(float r, float g, float b)
{
    return GREY_R * r + GREY_G * g + GREY_B * b;
}

/* torchvision's _blend: ratio * a + (1 - ratio) * b, clamped; (1 - ratio) in double first. */
static void blend_const(float *x, size_t n, float ratio, float other)
{
    float rest = (float)(1.0 - (double)ratio);
    for (size_t i = 0; i < n; i++)
        x[i] = clamp01(ratio * x[i] + rest * other);
}

static void adjust_brightness(float *img, int channels, size_t plane, float f)
{
    blend_const(img, (size_t)channels * plane, f, 0.0f);
}

static void adjust_contrast(float *img, int channels, size_t plane, float f)
{
    double sum = 0;
    if (channels == 3)
        for (size_t i = 0; i < plane; i++)
            sum += grey_of(img[i], img[plane + i], img[2 * plane + i]);
    else
        for (size_t i = 0; i < plane; i++)
            sum += img[i];
    blend_const(img, (size_t)channels * plane, f, (float)(sum / (double)plane));
}

static void adjust_saturation(float *img, int channels, size_t plane, float f)
{
    if (channels != 3) /* as torchvision (and PIL): grey images are left alone */
        return;
    float rest = (float)(1.0 - (double)f);
    for (size_t i = 0; i < plane; i++) {
        float g = grey_of(img[i], img[plane + i], img[2 * plane + i]);
        for (int c = 0; c < 3; c++)
            img[c * plane + i] = clamp01(f * img[c * plane + i] + rest * g);
    }
}

/* torchvision's _rgb2hsv, hue shift (h + shift) mod 1, _hsv2rgb, per pixel in float32. */
static void adjust_hue(float *img, int channels, size_t plane, float shift)
{
    if (channels != 3)
        return;
    for (size_t i = 0; i < plane; i++) {
        float r = img[i], g = img[plane + i], b = img[2 * plane + i];
        float maxc = r > g ? r : g, minc = r < g ? r : g;
        maxc = b > maxc ? b : maxc;
        minc = b < minc ? b : minc;
        int eqc = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1.0f : maxc);
        float div = eqc ? 1.0f : cr;
        float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
        float h;
        if (maxc == r)
            h = bc - gc;
        else if (maxc == g)
            h = 2.0f + rc - bc;
        else
            h = 4.0f + gc - rc;
        /* fmod(h / 6 + 1, 1): the argument lies in [5/6, 2), where subtracting 1 is exact */
        h = h / 6.0f + 1.0f;
        if (h >= 1.0f)
            h -= 1.0f;
        float v = maxc;
        /* torch.remainder(h + shift, 1.0) for h + shift in [-0.5, 1.5) */
        h = h + shift;
        if (h < 0.0f)
            h += 1.0f;
        else if (h >= 1.0f)
            h -= 1.0f;
        float i6 = (float)(int)(h * 6.0f); /* floor: h * 6 >= 0 */
        float f = h * 6.0f - i6;
        int sector = (int)i6 % 6;
        /* the six sectors pick R, G, B among (v, q, p, t) as _hsv2rgb's stacks do; table
         * look-ups instead of a switch keep the loop free of unpredictable branches */
        static const unsigned char pick[3][6] = {{0, 1, 2, 2, 3, 0},  /* R: v q p p t v */
                                                 {3, 0, 0, 1, 2, 2},  /* G: t v v q p p */
                                                 {2, 2, 3, 0, 0, 1}}; /* B: p p t v v q */
        float vals[4] = {v, clamp01(v * (1.0f - s * f)), clamp01(v * (1.0f - s)),
                         clamp01(v * (1.0f - s * (1.0f - f)))};
        img[i] = vals[pick[0][sector]];
        img[plane + i] = vals[pick[1][sector]];
        img[2 * plane + i] = vals[pick[2][sector]];
    }
}

static void to_grey(float *img, int channels, size_t plane)
{
    if (channels != 3)
        return;
    for (size_t i = 0; i < plane; i++) {
        float g = grey_of(img[i], img[plane + i], img[2 * plane + i]);
        img[i] = img[plane + i] = img[2 * plane + i] = g;
    }
}

/* ---- The pipeline ------------------------------------------------------------------------------ */

supcon_status sc_transform_run(const supcon_transform *t, const uint8_t *image, int channels,
                               int height, int width, const supcon_transform_params *p,
                               float *out, sc_scratch *scratch)
{
    const supcon_transform_config *c = &t->cfg;
    int size = c->size;
    if (p->crop_height == size && p->crop_width == size) {
        plain_crop(image, channels, height, width, p, out);
    } else {
        supcon_status st =
            resized_crop(image, channels, height, width, p, size, c->antialias, out, scratch);
        if (st != SUPCON_OK)
            return st;
    }
    size_t plane = (size_t)size * (size_t)size;
    if (p->jitter) {
        for (int k = 0; k < 4; k++) {
            switch (p->jitter_order[k]) {
            case SUPCON_JITTER_BRIGHTNESS:
                if (c->brightness != 0.0f)
                    adjust_brightness(out, channels, plane, p->brightness);
                break;
            case SUPCON_JITTER_CONTRAST:
                if (c->contrast != 0.0f)
                    adjust_contrast(out, channels, plane, p->contrast);
                break;
            case SUPCON_JITTER_SATURATION:
                if (c->saturation != 0.0f)
                    adjust_saturation(out, channels, plane, p->saturation);
                break;
            default:
                if (c->hue != 0.0f)
                    adjust_hue(out, channels, plane, p->hue);
                break;
            }
        }
    }
    if (p->grey)
        to_grey(out, channels, plane);
    for (int ch = 0; ch < channels; ch++) {
        float m = c->mean[ch], s = c->std[ch];
        float *o = out + (size_t)ch * plane;
        for (size_t i = 0; i < plane; i++)
            o[i] = (o[i] - m) / s;
    }
    return SUPCON_OK;
}

/* ---- Public entry points ------------------------------------------------------------------------ */

static supcon_status check_image(const supcon_transform *t, const char *fn, const void *image,
                                 int channels, int height, int width, const void *out)
{
    if (!t)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: NULL transform", fn);
    if (!image || !out)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: NULL image or out", fn);
    if ((channels != 1 && channels != 3) || height < 1 || width < 1 || height > (1 << 20) ||
        width > (1 << 20))
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "%s: channels %d (1 or 3) or size %dx%d out of range", fn, channels,
                        height, width);
    return SUPCON_OK;
}

supcon_status supcon_transform_sample(const supcon_transform *t, int height, int width,
                                      uint64_t seed, uint64_t epoch, uint64_t index, int view,
                                      supcon_transform_params *params)
{
    static const uint8_t dummy = 0;
    supcon_status st = check_image(t, "supcon_transform_sample", &dummy, 1, height, width,
                                   params);
    if (st != SUPCON_OK)
        return st;
    if (params->struct_size != sizeof *params || view < 0 || view >= t->cfg.views)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_sample: params->struct_size %zu (expected %zu) or "
                        "view %d (pipeline has %d)",
                        params->struct_size, sizeof *params, view, t->cfg.views);
    sc_transform_draw(t, height, width, seed, epoch, index, view, params);
    return SUPCON_OK;
}

static supcon_status run_public(const supcon_transform *t, const uint8_t *image, int channels,
                                int height, int width, const supcon_transform_params *p,
                                float *out)
{
    sc_scratch scratch = {0};
    supcon_status st = sc_transform_run(t, image, channels, height, width, p, out, &scratch);
    sc_scratch_free(&scratch);
    if (st != SUPCON_OK)
        return sc_error(t->ctx, st, "supcon_transform: no memory for the resize scratch");
    return SUPCON_OK;
}

supcon_status supcon_transform_apply(const supcon_transform *t, const uint8_t *image,
                                     int channels, int height, int width, uint64_t seed,
                                     uint64_t epoch, uint64_t index, int view, float *out,
                                     supcon_transform_params *params)
{
    supcon_status st =
        check_image(t, "supcon_transform_apply", image, channels, height, width, out);
    if (st != SUPCON_OK)
        return st;
    if (view < 0 || view >= t->cfg.views || (params && params->struct_size != sizeof *params))
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_apply: view %d (pipeline has %d) or params->struct_size",
                        view, t->cfg.views);
    supcon_transform_params local;
    supcon_transform_params *p = params ? params : &local;
    local.struct_size = sizeof local;
    sc_transform_draw(t, height, width, seed, epoch, index, view, p);
    return run_public(t, image, channels, height, width, p, out);
}

supcon_status supcon_transform_apply_params(const supcon_transform *t, const uint8_t *image,
                                            int channels, int height, int width,
                                            const supcon_transform_params *params, float *out)
{
    supcon_status st =
        check_image(t, "supcon_transform_apply_params", image, channels, height, width, out);
    if (st != SUPCON_OK)
        return st;
    const supcon_transform_params *p = params;
    if (!p || p->struct_size != sizeof *p)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_apply_params: NULL params or bad struct_size");
    if (p->crop_height < 1 || p->crop_width < 1 || p->crop_top < 0 || p->crop_left < 0 ||
        p->crop_top > height - p->crop_height || p->crop_left > width - p->crop_width)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_transform_apply_params: crop box (%d, %d, %d, %d) outside the "
                        "%dx%d image",
                        p->crop_top, p->crop_left, p->crop_height, p->crop_width, height, width);
    if (p->jitter) {
        int seen = 0;
        for (int k = 0; k < 4; k++)
            if (p->jitter_order[k] >= 0 && p->jitter_order[k] < 4)
                seen |= 1 << p->jitter_order[k];
        if (seen != 15 || !isfinite(p->brightness) || !isfinite(p->contrast) ||
            !isfinite(p->saturation) || !isfinite(p->hue) || p->brightness < 0 ||
            p->contrast < 0 || p->saturation < 0)
            return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "supcon_transform_apply_params: jitter_order must be a permutation "
                            "of 0..3 and the factors finite and >= 0");
    }
    /* apply_params applies every operation it is given, whatever the config's strengths */
    supcon_transform all = *t;
    all.cfg.brightness = all.cfg.contrast = all.cfg.saturation = all.cfg.hue = 1.0f;
    return run_public(&all, image, channels, height, width, p, out);
}
