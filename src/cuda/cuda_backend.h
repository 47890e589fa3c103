/* The CUDA backend's private state and its error helpers, shared by the .cu files beside it.
 * Leaves out the ops themselves (backend.cu, loss.cu). Nothing here is exported: the module
 * shows one symbol, supcon_cuda_backend_entry. */
#ifndef SUPCON_CUDA_BACKEND_H
#define SUPCON_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

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

/* One per context: nothing is shared between two states, so two contexts on one device
 * (or one thread driving both) never see each other's stream, handle or workspace. */
typedef struct sc_cuda_state {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    size_t tile_bytes; /* budget for one block of logits */

    /* Loss workspace, grown to the largest problem seen and kept until shutdown, so
     * repeated calls with one shape never allocate. */
    void *ws;
    size_t ws_bytes;

    /* 8 bytes of device memory for single results (first non-finite index). */
    unsigned long long *scratch;

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
/* After a kernel launch: picks up launch-configuration errors (cudaGetLastError). */
supcon_status sc_cuda_launched(sc_cuda_state *st, const char *kernel);
/* Block the host until the state's stream is idle; reports asynchronous kernel faults. */
supcon_status sc_cuda_sync(sc_cuda_state *st, const char *what);
/* Make the state's device current for this host thread (contexts may be on different
 * devices and driven from one thread). */
supcon_status sc_cuda_enter(sc_cuda_state *st);

/* At least `bytes` of workspace in st->ws (contents undefined). */
supcon_status sc_cuda_workspace(sc_cuda_state *st, size_t bytes);

/* The loss op (loss.cu). */
supcon_status sc_cuda_loss(void *state, const supcon_loss_problem *p, double *value);

#endif /* SUPCON_CUDA_BACKEND_H */
