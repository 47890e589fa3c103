/* Uploaders: two tensors per training input, filled in turn, so that the copy of the next
 * batch can run while the previous batch's work is still queued. The ordering lives in the
 * backend's stages (the CUDA module: pinned buffer, copy stream, events); a backend without
 * stages copies synchronously, which is already correctly ordered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context_internal.h"
#include "error.h"
#include "profile.h"
#include "tensor_internal.h"

typedef struct sc_upload_slot {
    void *data;           /* backend memory, capacity bytes */
    size_t capacity;
    void *stage;          /* the backend's stage, NULL without staged uploads */
    int written;          /* 1 once a push filled it: its readers must be released */
    supcon_tensor tensor; /* what the push that filled it handed out (not owned) */
} sc_upload_slot;

struct supcon_uploader {
    supcon_context *ctx;
    sc_upload_slot slot[2];
    int next; /* the slot the next push fills */
};

static int sc_staged(const supcon_context *ctx) { return ctx->ops->stage_upload != NULL; }

/* Wait for queued work before memory it may read is freed (best effort: a failure here was
 * or will be reported by the call that saw it). */
static void sc_quiesce(supcon_context *ctx) {
    if (ctx->ops->synchronize) (void)ctx->ops->synchronize(ctx->state);
}

static void sc_slot_drop(supcon_context *ctx, sc_upload_slot *s) {
    if (s->stage) ctx->ops->stage_destroy(ctx->state, s->stage);
    sc_free(ctx, s->data, s->capacity);
    memset(s, 0, sizeof *s);
}

void supcon_uploader_free(supcon_uploader *u) {
    if (!u) return;
    sc_quiesce(u->ctx);
    for (int k = 0; k < 2; k++) sc_slot_drop(u->ctx, &u->slot[k]);
    free(u);
}

supcon_status supcon_uploader_create(supcon_context *ctx, supcon_uploader **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_uploader_create: out is NULL");
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_uploader_create: ctx is NULL");
    supcon_uploader *u = calloc(1, sizeof *u);
    if (!u) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "supcon_uploader_create: out of memory");
    u->ctx = ctx;
    for (int k = 0; k < 2 && sc_staged(ctx); k++) {
        supcon_status s = ctx->ops->stage_create(ctx->state, &u->slot[k].stage);
        if (s != SUPCON_OK) {
            u->slot[k].stage = NULL;
            s = sc_backend_error(ctx, s, "supcon_uploader_create"); /* before the free's calls */
            supcon_uploader_free(u);
            return s;
        }
    }
    *out = u;
    return SUPCON_OK;
}

/* At least bytes of backend memory in the slot. Its old memory may still be read by queued
 * calls or written by its last copy, so the device is drained before it is freed; this
 * happens only when a batch is larger than every one before it. */
static supcon_status sc_slot_reserve(supcon_context *ctx, sc_upload_slot *s, size_t bytes) {
    if (s->capacity >= bytes) return SUPCON_OK;
    if (s->data) {
        sc_quiesce(ctx);
        sc_free(ctx, s->data, s->capacity);
        s->data = NULL;
        s->capacity = 0;
    }
    s->written = 0; /* its tensor pointed into the memory just freed */
    supcon_status st = sc_alloc(ctx, bytes, &s->data);
    if (st != SUPCON_OK) { /* the push's name before sc_alloc's message */
        char why[SC_ERROR_LEN];
        snprintf(why, sizeof why, "%s", supcon_context_last_error(ctx));
        return sc_error(ctx, st, "supcon_uploader_push: %s", why);
    }
    s->capacity = bytes;
    return SUPCON_OK;
}

supcon_status supcon_uploader_push(supcon_uploader *u, supcon_dtype dtype, int ndim, const int64_t *shape,
                                   const void *src, size_t bytes, const supcon_tensor **out) {
    static const char fn[] = "supcon_uploader_push";
    if (out) *out = NULL;
    if (!u) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: uploader is NULL", fn);
    supcon_context *ctx = u->ctx;
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    supcon_tensor desc;
    supcon_status s = sc_tensor_describe(ctx, dtype, ndim, shape, fn, &desc);
    if (s != SUPCON_OK) return s;
    if (!src && bytes) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: src is NULL", fn);
    if (bytes != desc.bytes)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %zu bytes given, the shape holds %zu", fn, bytes,
                        desc.bytes);

    const double t0 = sc_prof_begin(ctx);
    sc_upload_slot *fill = &u->slot[u->next], *prev = &u->slot[1 - u->next];
    /* The previous push's tensor may be read by the calls made until now and by no later
     * ones: the push after this one waits for exactly those before it overwrites it. */
    if (prev->written && prev->stage) {
        s = ctx->ops->stage_release(ctx->state, prev->stage);
        if (s != SUPCON_OK) return sc_backend_error(ctx, s, fn);
    }
    s = sc_slot_reserve(ctx, fill, bytes);
    if (s != SUPCON_OK) return s;
    if (bytes) {
        s = fill->stage ? ctx->ops->stage_upload(ctx->state, fill->stage, fill->data, src, bytes)
                        : ctx->ops->upload(ctx->state, fill->data, src, bytes);
        if (s != SUPCON_OK) {
            fill->written = 0;
            return sc_backend_error(ctx, s, fn);
        }
    }
    sc_prof_end(ctx, "uploader push", t0);
    desc.data = fill->data;
    fill->tensor = desc;
    fill->written = 1;
    u->next = 1 - u->next;
    *out = &fill->tensor;
    return SUPCON_OK;
}
