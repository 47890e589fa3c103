/* Tensors: shape bookkeeping and copies between host memory and the backend's memory.
 * The bytes themselves are owned by the backend (host heap or device memory). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "context_internal.h"
#include "error.h"
#include "profile.h"
#include "tensor_internal.h"

size_t sc_dtype_size(supcon_dtype dtype) {
    switch (dtype) {
    case SUPCON_FLOAT32:
    case SUPCON_INT32:
        return 4;
    case SUPCON_INT64:
        return 8;
    }
    return 0;
}

supcon_status sc_tensor_describe(supcon_context *ctx, supcon_dtype dtype, int ndim, const int64_t *shape,
                                 const char *fn, supcon_tensor *t) {
    memset(t, 0, sizeof *t);
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    size_t esize = sc_dtype_size(dtype);
    if (!esize) return sc_error(ctx, SUPCON_ERR_DTYPE, "%s: dtype %d is not a supcon_dtype", fn, (int)dtype);
    if (ndim < 0 || ndim > SUPCON_MAX_DIMS)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: ndim %d is not in 0..%d", fn, ndim,
                        SUPCON_MAX_DIMS);
    if (ndim > 0 && !shape) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: shape is NULL", fn);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: shape[%d] = %lld is negative", fn, i,
                            (long long)shape[i]);
        if (shape[i] && numel > (int64_t)(SIZE_MAX / 16) / shape[i])
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: shape overflows the address space", fn);
        numel *= shape[i];
    }
    t->ctx = ctx;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->bytes = (size_t)numel * esize;
    return SUPCON_OK;
}

static supcon_status sc_tensor_new(supcon_context *ctx, supcon_dtype dtype, int ndim,
                                   const int64_t *shape, const char *fn, supcon_tensor **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    supcon_tensor desc;
    supcon_status s = sc_tensor_describe(ctx, dtype, ndim, shape, fn, &desc);
    if (s != SUPCON_OK) return s;
    supcon_tensor *t = malloc(sizeof *t);
    if (!t) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *t = desc;
    *out = t;
    return SUPCON_OK;
}

supcon_status supcon_tensor_create(supcon_context *ctx, supcon_dtype dtype, int ndim,
                                   const int64_t *shape, supcon_tensor **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_create: out is NULL");
    *out = NULL;
    supcon_tensor *t;
    supcon_status s = sc_tensor_new(ctx, dtype, ndim, shape, "supcon_tensor_create", &t);
    if (s != SUPCON_OK) return s;
    s = sc_alloc(ctx, t->bytes, &t->data);
    if (s != SUPCON_OK) {
        free(t);
        return s;
    }
    t->owned = 1;
    *out = t;
    return SUPCON_OK;
}

supcon_status supcon_tensor_wrap(supcon_context *ctx, supcon_dtype dtype, int ndim,
                                 const int64_t *shape, void *data, supcon_memory where,
                                 supcon_tensor **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_wrap: out is NULL");
    *out = NULL;
    supcon_tensor *t;
    supcon_status s = sc_tensor_new(ctx, dtype, ndim, shape, "supcon_tensor_wrap", &t);
    if (s != SUPCON_OK) return s;
    supcon_memory native = ctx->kind == SUPCON_BACKEND_CUDA ? SUPCON_MEMORY_DEVICE : SUPCON_MEMORY_HOST;
    const char *bad = NULL;
    if (where != SUPCON_MEMORY_HOST && where != SUPCON_MEMORY_DEVICE)
        bad = "where is not a supcon_memory value";
    else if (where != native)
        bad = native == SUPCON_MEMORY_HOST ? "the cpu backend computes on host memory: wrap "
                                             "SUPCON_MEMORY_HOST, not device memory"
                                           : "the cuda backend computes on device memory: wrap "
                                             "SUPCON_MEMORY_DEVICE, or create + upload host data";
    else if (!data && t->bytes)
        bad = "data is NULL";
    else if ((uintptr_t)data % sc_dtype_size(dtype))
        bad = "data is not aligned to the element size";
    if (bad) {
        free(t);
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_wrap: %s", bad);
    }
    t->data = data;
    t->owned = 0;
    *out = t;
    return SUPCON_OK;
}

supcon_status supcon_tensor_upload(supcon_tensor *t, const void *src, size_t bytes) {
    if (!t) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_upload: tensor is NULL");
    if (!src && bytes) return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_upload: src is NULL");
    if (bytes != t->bytes)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_tensor_upload: %zu bytes given, the tensor holds %zu", bytes, t->bytes);
    if (!bytes) return SUPCON_OK;
    const double t0 = sc_prof_begin(t->ctx);
    supcon_status s = t->ctx->ops->upload(t->ctx->state, t->data, src, bytes);
    sc_prof_end(t->ctx, "tensor upload", t0);
    return s == SUPCON_OK ? s : sc_backend_error(t->ctx, s, "supcon_tensor_upload");
}

supcon_status supcon_tensor_download(const supcon_tensor *t, void *dst, size_t bytes) {
    if (!t) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_download: tensor is NULL");
    if (!dst && bytes) return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_tensor_download: dst is NULL");
    if (bytes != t->bytes)
        return sc_error(t->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_tensor_download: %zu bytes asked, the tensor holds %zu", bytes, t->bytes);
    if (!bytes) return SUPCON_OK;
    const double t0 = sc_prof_begin(t->ctx);
    supcon_status s = t->ctx->ops->download(t->ctx->state, dst, t->data, bytes);
    sc_prof_end(t->ctx, "tensor download", t0);
    return s == SUPCON_OK ? s : sc_backend_error(t->ctx, s, "supcon_tensor_download");
}

void supcon_tensor_free(supcon_tensor *t) {
    if (!t) return;
    if (t->owned) sc_free(t->ctx, t->data, t->bytes);
    free(t);
}

supcon_dtype supcon_tensor_dtype(const supcon_tensor *t) { return t->dtype; }
int supcon_tensor_ndim(const supcon_tensor *t) { return t->ndim; }
int64_t supcon_tensor_dim(const supcon_tensor *t, int i) {
    return (i >= 0 && i < t->ndim) ? t->shape[i] : -1;
}
int64_t supcon_tensor_numel(const supcon_tensor *t) { return t->numel; }
size_t supcon_tensor_bytes(const supcon_tensor *t) { return t->bytes; }
supcon_memory supcon_tensor_memory(const supcon_tensor *t) {
    return t->ctx->kind == SUPCON_BACKEND_CUDA ? SUPCON_MEMORY_DEVICE : SUPCON_MEMORY_HOST;
}
void *supcon_tensor_data(supcon_tensor *t) { return t->data; }
