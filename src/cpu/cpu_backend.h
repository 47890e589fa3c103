/* Private state of the CPU backend, shared by its files. */
#ifndef SUPCON_CPU_BACKEND_H
#define SUPCON_CPU_BACKEND_H

#include <stddef.h>

#include "backend.h"
#include "gemm.h"
#include "pool.h"

typedef struct sc_cpu {
    sc_pool *pool;
    sc_gemm_ws gemm; /* packing buffers of sc_sgemm, sized once for the pool */
    char msg[SUPCON_BACKEND_MSG_LEN];
    float *block; /* logits / dz of one block of anchor rows, reused across calls */
    size_t block_cap;
    double *row_terms; /* per-anchor loss terms of one block, summed in order */
    size_t row_terms_cap;
    int bf16_convs; /* SUPCON_PRECISION_BF16: the conv2d slots round to bfloat16 (conv_bf16.c) */
} sc_cpu;

supcon_status sc_cpu_fail(sc_cpu *st, supcon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
supcon_status sc_cpu_loss(void *state, const supcon_loss_problem *p, double *value);

#endif
