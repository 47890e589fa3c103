/* The tensor's private layout, for the core's files. */
#ifndef SUPCON_LIB_TENSOR_INTERNAL_H
#define SUPCON_LIB_TENSOR_INTERNAL_H

#include "supcon/tensor.h"

struct supcon_tensor {
    supcon_context *ctx;
    supcon_dtype dtype;
    int ndim;
    int64_t shape[SUPCON_MAX_DIMS];
    int64_t numel;
    size_t bytes;
    void *data;
    int owned; /* 0 when wrapped: the caller frees the memory */
};

size_t sc_dtype_size(supcon_dtype dtype);
/* Check dtype and shape as supcon_tensor_create does (errors name fn) and fill *t with
 * them; data NULL, not owned. */
supcon_status sc_tensor_describe(supcon_context *ctx, supcon_dtype dtype, int ndim, const int64_t *shape,
                                 const char *fn, supcon_tensor *t);

#endif
