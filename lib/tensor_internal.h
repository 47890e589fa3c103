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

#endif
