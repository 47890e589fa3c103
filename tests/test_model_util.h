/* Helpers of the model tests: the reader of the binary fixtures written by
 * tests/fixtures/gen_model_fixtures.py, the hashed weights both sides compute, loading them
 * through the parameter table, and error measures. Header-only, public API only. */
#ifndef SUPCON_TEST_MODEL_UTIL_H
#define SUPCON_TEST_MODEL_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supcon/supcon.h"

/* ---- fixture records ----------------------------------------------------------------------- */

typedef struct tm_rec {
    char name[128];
    int dtype; /* 0 float32, 2 int64 */
    int ndim;
    int64_t shape[8];
    int64_t numel;
    const void *data; /* an aligned copy (records in the file are packed) */
} tm_rec;

typedef struct tm_fix {
    unsigned char *bytes;
    tm_rec *recs;
    int n;
} tm_fix;

static inline uint32_t tm_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads tests/fixtures/<file>; returns 0 on success. The host is little-endian (checked). */
static inline int tm_load(const char *file, tm_fix *fx) {
    const uint32_t one = 1;
    if (*(const unsigned char *)&one != 1) return -1;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SUPCON_TEST_FIXTURES, file);
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    fx->bytes = malloc((size_t)size + 8);
    if (!fx->bytes || fread(fx->bytes, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    int cap = 0;
    for (long o = 0; o < size;) {
        if (fx->n == cap) {
            cap = cap ? 2 * cap : 64;
            fx->recs = realloc(fx->recs, (size_t)cap * sizeof *fx->recs);
        }
        tm_rec *r = &fx->recs[fx->n++];
        uint32_t len = tm_u32(fx->bytes + o);
        o += 4;
        if (len >= sizeof r->name) return -1;
        memcpy(r->name, fx->bytes + o, len);
        r->name[len] = 0;
        o += len;
        r->dtype = (int)tm_u32(fx->bytes + o);
        r->ndim = (int)tm_u32(fx->bytes + o + 4);
        o += 8;
        r->numel = 1;
        for (int i = 0; i < r->ndim; i++) {
            memcpy(&r->shape[i], fx->bytes + o, 8);
            r->numel *= r->shape[i];
            o += 8;
        }
        const size_t nbytes = (size_t)r->numel * (r->dtype == 2 ? 8 : 4);
        if (o + (long)nbytes > size) return -1;
        void *copy = malloc(nbytes ? nbytes : 8);
        memcpy(copy, fx->bytes + o, nbytes);
        r->data = copy;
        o += (long)nbytes;
    }
    return 0;
}

static inline void tm_free(tm_fix *fx) {
    for (int i = 0; i < fx->n; i++) free((void *)fx->recs[i].data);
    free(fx->bytes);
    free(fx->recs);
}

static inline const tm_rec *tm_get(const tm_fix *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->recs[i].name, name)) return &fx->recs[i];
    return NULL;
}

static inline const float *tm_f32(const tm_fix *fx, const char *name) {
    const tm_rec *r = tm_get(fx, name);
    return r && r->dtype == 0 ? (const float *)r->data : NULL;
}

/* ---- the hashed weights (same as gen_model_fixtures.py) ------------------------------------ */

static inline uint64_t tm_splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline double tm_hash_uniform(uint64_t salt, uint64_t index, uint64_t k) {
    const uint64_t key = tm_splitmix(salt ^ tm_splitmix(index));
    return (double)(tm_splitmix(key + k) >> 40) / 16777216.0;
}

/* A float32 host tensor of the given shape filled with hashed values in [-1, 1) (salt picks
 * the stream), or NULL when it cannot be made. */
static inline supcon_tensor *tm_filled(supcon_context *ctx, int ndim, const int64_t *shape, uint64_t salt) {
    supcon_tensor *t = NULL;
    if (supcon_tensor_create(ctx, SUPCON_FLOAT32, ndim, shape, &t) != SUPCON_OK) return NULL;
    float *p = supcon_tensor_data(t);
    for (int64_t i = 0; i < supcon_tensor_numel(t); i++) p[i] = (float)(2.0 * tm_hash_uniform(salt, 0, (uint64_t)i) - 1.0);
    return t;
}

static inline int tm_ends(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Writes every entry's hashed value through the table's views (as a checkpoint loader
 * would); returns 0 on success. */
static inline int tm_load_hashed(supcon_model *m) {
    const int64_t d = supcon_model_feature_dim(m);
    for (int64_t i = 0; i < supcon_model_param_count(m); i++) {
        const supcon_param_info *in = supcon_model_param(m, i);
        if (in->dtype == SUPCON_INT64) {
            int64_t v = i;
            if (supcon_tensor_upload(in->value, &v, sizeof v) != SUPCON_OK) return -1;
            continue;
        }
        float *v = malloc((size_t)in->numel * sizeof(float));
        for (int64_t k = 0; k < in->numel; k++) {
            const double u = tm_hash_uniform(0x5EED, (uint64_t)i, (uint64_t)k), s = 2.0 * u - 1.0;
            double x;
            if (in->ndim == 4)
                x = s * sqrt(6.0 / (double)(in->shape[0] * in->shape[2] * in->shape[3]));
            else if (!strncmp(in->name, "head", 4) || !strncmp(in->name, "fc", 2))
                x = s / sqrt((double)d);
            else if (tm_ends(in->name, "running_var"))
                x = 0.5 + u;
            else if (tm_ends(in->name, "running_mean"))
                x = 0.2 * s;
            else if (tm_ends(in->name, "weight"))
                x = 1.0 + 0.25 * s;
            else
                x = 0.2 * s;
            v[k] = (float)x;
        }
        supcon_status st = supcon_tensor_upload(in->value, v, (size_t)in->numel * sizeof(float));
        free(v);
        if (st != SUPCON_OK) return -1;
    }
    return 0;
}

/* ---- errors -------------------------------------------------------------------------------- */

/* max |got - want| / max |want|: error relative to the tensor's scale. */
static inline double tm_err(const float *got, const float *want, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (e > num || e != e) num = e;
        if (fabs((double)want[i]) > den) den = fabs((double)want[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

#endif
