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

/* ---- Uploads that overlap compute -------------------------------------------------------
 * A training loop's inputs change every step. An uploader keeps two tensors of its own for
 * one such input (the images, say) and fills them in turn. On the CUDA backend each push
 * copies the host data into page-locked (pinned) memory and from there to the device on a
 * copy stream of the context's own, while the work queued for the previous batch still runs;
 * the calls made after the push wait for the copy on the device, not on the host. On the CPU
 * backend a push is a plain copy. Use one uploader per input. */
typedef struct supcon_uploader supcon_uploader;

/** An uploader for inputs of ctx. Errors: ERR_INVALID_ARGUMENT (NULL), ERR_OUT_OF_MEMORY,
 *  ERR_DEVICE. */
SUPCON_API supcon_status supcon_uploader_create(supcon_context *ctx, supcon_uploader **out);

/** Copy bytes of host memory at src into one of the uploader's tensors, shaped as given,
 *  and set *out to it. bytes must be the tensor's size. src may be changed or freed as soon
 *  as this returns. Every call made on the context after the push sees the new contents.
 *  The tensor belongs to the uploader (do not free it or upload into it). It must only be
 *  read by calls made before the next push on this uploader (the push after that writes
 *  into it again; it waits on the device for those calls and for no others), and it stays
 *  valid until then. On error *out is NULL and the previous tensor keeps its contents.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, bad shape, bytes not the size), ERR_DTYPE,
 *  ERR_OUT_OF_MEMORY, ERR_DEVICE. */
SUPCON_API supcon_status supcon_uploader_push(supcon_uploader *u, supcon_dtype dtype, int ndim,
                                              const int64_t *shape, const void *src, size_t bytes,
                                              const supcon_tensor **out);

/** Wait for the uploader's copies, then free it and its tensors. NULL is a no-op. */
SUPCON_API void supcon_uploader_free(supcon_uploader *u);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_TENSOR_H */
