/* The CUDA backend's private state and its error helpers, shared by the .cu files beside it.
 * Leaves out the ops themselves (backend.cu, loss.cu, the layers declared in ops.h). Nothing
 * here is exported: the module shows one symbol, supcon_cuda_backend_entry. */
#ifndef SUPCON_CUDA_BACKEND_H
#define SUPCON_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "backend.h"

#if defined(__GNUC__)
#define SC_CUDA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SC_CUDA_PRINTF(a, b)
#endif

/* Default budget for one block of logits (rows x n_contrast floats): 256 MiB. The
 * environment variable SUPCON_CUDA_TILE_BYTES, read once when a context is created,
 * overrides it (tests use a tiny budget to exercise many blocks on small problems). */
#define SC_CUDA_TILE_BYTES_DEFAULT ((size_t)256 << 20)

/* Device scratch every context owns from init for the layers' small per-channel and per-row
 * partial results (batch-norm partial sums, cross-entropy block sums): 4 MiB, so that the
 * layers never allocate. */
#define SC_CUDA_LAYER_SCRATCH_BYTES ((size_t)4 << 20)

/* The convolution plans of one state (conv.cu): cuDNN descriptors and algorithm lists per
 * shape. Opaque outside conv.cu. */
typedef struct sc_conv_cache sc_conv_cache;

/* One per context: nothing is shared between two states, so two contexts on one device
 * (or one thread driving both) never see each other's stream, handle or workspace. */
typedef struct sc_cuda_state {
    int device;
    cudaStream_t stream;
    /* Staged uploads (stage.cu): made with the first stage, NULL until then. */
    cudaStream_t copy_stream;
    cublasHandle_t blas;
    size_t tile_bytes; /* budget for one block of logits */

    /* Loss workspace, grown to the largest problem seen and kept until shutdown, so
     * repeated calls with one shape never allocate. */
    void *ws;
    size_t ws_bytes;

    /* 8 bytes of device memory for single results (first non-finite index). */
    unsigned long long *scratch;

    /* Layers (ABI 2). cuDNN on the context's stream; plans cached per convolution shape. */
    cudnnHandle_t dnn;
    sc_conv_cache *convs;
    void *layer_scratch; /* SC_CUDA_LAYER_SCRATCH_BYTES */
    /* 0 keeps the products in strict float32 (CUDNN_FMA_MATH, CUBLAS_DEFAULT_MATH: the default
     * and what the tests compare with the CPU); 1 (SUPCON_PRECISION_TF32) lets convolutions and
     * GEMMs, the loss's included, use TF32 tensor cores. */
    int allow_tf32;
    /* 1 (SUPCON_PRECISION_BF16): convolutions round their operands and results to bfloat16
     * and run on bfloat16 tensor cores, summing in float32 (conv.cu, bf16.cu); everything else
     * stays strict float32. */
    int bf16_convs;
    /* Layout of the bfloat16 copies: 1 (default) channels last (NHWC, filters KRSC), what
     * cuDNN's bfloat16 tensor-core kernels read natively, made by casts that transpose;
     * SUPCON_CUDA_BF16_LAYOUT=nchw when a context is made keeps NCHW (plain casts). */
    int bf16_nhwc;
    /* 1 (default): only deterministic cuDNN algorithms, so two runs give identical bits;
     * SUPCON_CUDA_CONV_DETERMINISTIC=0 in the environment when a context is made lets the
     * fastest (atomics-based) ones in. */
    int conv_deterministic;
    /* 0 (default): algorithms ranked by cuDNN's heuristics; SUPCON_CUDA_CONV_FIND=1 when a
     * context is made ranks them by timing runs, once per shape (as cudnn.benchmark): faster
     * layers, but the choice may differ from one process to the next. */
    int conv_find;

    char msg[SUPCON_BACKEND_MSG_LEN];
} sc_cuda_state;

/* Record a message on the state and return s. */
supcon_status sc_cuda_fail(sc_cuda_state *st, supcon_status s, const char *fmt, ...)
    SC_CUDA_PRINTF(3, 4);

/* OK when e is cudaSuccess, else records "<call> failed: <error string> (<error name>)"
 * and returns ERR_OUT_OF_MEMORY for allocation failures, ERR_DEVICE for the rest. */
supcon_status sc_cuda_check(sc_cuda_state *st, cudaError_t e, const char *call);
/* The same for cuBLAS statuses. */
supcon_status sc_cublas_check(sc_cuda_state *st, cublasStatus_t e, const char *call);
/* The same for cuDNN statuses (with cuDNN's own last message where it has one). */
supcon_status sc_cudnn_check(sc_cuda_state *st, cudnnStatus_t e, const char *call);
/* After a kernel launch: picks up launch-configuration errors (cudaGetLastError). */
supcon_status sc_cuda_launched(sc_cuda_state *st, const char *kernel);
/* Block the host until the state's stream is idle; reports asynchronous kernel faults. */
supcon_status sc_cuda_sync(sc_cuda_state *st, const char *what);
/* Make the state's device current for this host thread (contexts may be on different
 * devices and driven from one thread). */
supcon_status sc_cuda_enter(sc_cuda_state *st);

/* At least `bytes` of workspace in st->ws (contents undefined). */
supcon_status sc_cuda_workspace(sc_cuda_state *st, size_t bytes);

/* Blocks for `work` items at `threads` per block, at least 1 and at most cap (grid-stride
 * kernels cover the rest). */
static inline unsigned sc_cuda_grid(int64_t work, unsigned threads, unsigned cap)
{
    int64_t blocks = (work + threads - 1) / threads;
    if (blocks < 1)
        blocks = 1;
    return blocks > (int64_t)cap ? cap : (unsigned)blocks;
}

/* Convolution plans (conv.cu): created with the state, released at shutdown. */
supcon_status sc_cuda_conv_cache_create(sc_cuda_state *st);
void sc_cuda_conv_cache_destroy(sc_cuda_state *st);

/* bf16.cu: between a float32 tensor (n, c, hw) (NCHW, or KCRS for filters) and its bfloat16
 * copy, rounded to nearest even: in the same layout, or with `rows` channels last (n, hw, c)
 * (NHWC, KRSC). to_bf16 writes the copy; from_bf16 stores it into dst, or adds it with
 * accumulate. Queued on the state's stream. */
supcon_status sc_cuda_to_bf16(sc_cuda_state *st, void *dst, const float *src, int64_t n, int64_t c, int64_t hw,
                              int rows);
supcon_status sc_cuda_from_bf16(sc_cuda_state *st, float *dst, const void *src, int64_t n, int64_t c, int64_t hw,
                                int rows, int accumulate);

/* The loss op (loss.cu). */
supcon_status sc_cuda_loss(void *state, const supcon_loss_problem *p, double *value);

#endif /* SUPCON_CUDA_BACKEND_H */
