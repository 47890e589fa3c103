/* libsupcon tensors: dense, row-major (C order) arrays that live where their context's
 * backend computes (host memory for the CPU backend, device memory for CUDA).
 * No views or strides: a tensor is one contiguous block. */
#ifndef SUPCON_TENSOR_H
#define SUPCON_TENSOR_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SUPCON_MAX_DIMS 8

typedef enum supcon_dtype {
    SUPCON_FLOAT32 = 0,
    SUPCON_INT32 = 1,
    SUPCON_INT64 = 2
} supcon_dtype;

typedef enum supcon_memory {
    SUPCON_MEMORY_HOST = 0,  /* ordinary CPU memory */
    SUPCON_MEMORY_DEVICE = 1 /* memory of the context's CUDA device */
} supcon_memory;

typedef struct supcon_tensor supcon_tensor;

/** Allocate a tensor of the given shape in the backend's memory. Contents are undefined.
 *  ndim 0..SUPCON_MAX_DIMS; every extent >= 0. Errors: ERR_INVALID_ARGUMENT (NULL ctx/out,
 *  bad ndim, negative extent, size overflow), ERR_DTYPE, ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_tensor_create(supcon_context *ctx, supcon_dtype dtype,
                                              int ndim, const int64_t *shape,
                                              supcon_tensor **out);

/** Describe caller-owned memory as a tensor, without copying. The caller keeps ownership
 *  and must keep the memory alive until supcon_tensor_free; `where` must match the
 *  backend (HOST for CPU, DEVICE for CUDA), otherwise ERR_INVALID_ARGUMENT.
 *  data must be aligned to the element size. */
SUPCON_API supcon_status supcon_tensor_wrap(supcon_context *ctx, supcon_dtype dtype, int ndim,
                                            const int64_t *shape, void *data,
                                            supcon_memory where, supcon_tensor **out);

/** Copy exactly supcon_tensor_bytes(t) bytes from host memory into the tensor.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, bytes != tensor size), ERR_DEVICE. */
SUPCON_API supcon_status supcon_tensor_upload(supcon_tensor *t, const void *src, size_t bytes);
/** Copy exactly supcon_tensor_bytes(t) bytes from the tensor into host memory. */
SUPCON_API supcon_status supcon_tensor_download(const supcon_tensor *t, void *dst,
                                                size_t bytes);

/** Free the tensor (and its memory unless it was wrapped). NULL is a no-op. */
SUPCON_API void supcon_tensor_free(supcon_tensor *t);

/* Accessors; all are O(1), thread-safe for concurrent readers, and accept no NULL. */
SUPCON_API supcon_dtype supcon_tensor_dtype(const supcon_tensor *t);
SUPCON_API int supcon_tensor_ndim(const supcon_tensor *t);
/** Extent of dimension i, or -1 when i is out of range. */
SUPCON_API int64_t supcon_tensor_dim(const supcon_tensor *t, int i);
SUPCON_API int64_t supcon_tensor_numel(const supcon_tensor *t);
SUPCON_API size_t supcon_tensor_bytes(const supcon_tensor *t);
SUPCON_API supcon_memory supcon_tensor_memory(const supcon_tensor *t);
/** Raw pointer to the tensor's memory (a device pointer on the CUDA backend). Valid until
 *  the tensor is freed. */
SUPCON_API void *supcon_tensor_data(supcon_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_TENSOR_H */
