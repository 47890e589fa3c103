/* libsupcon core: version, status codes, the context that owns a backend.
 * This header is part of the stable public API; it is identical in every build (CPU-only
 * or with CUDA). Every type here is opaque or a plain config struct that only grows. */
#ifndef SUPCON_CORE_H
#define SUPCON_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Symbol export ------------------------------------------------------------------ */
#if defined(__GNUC__)
#  define SUPCON_API __attribute__((visibility("default")))
#else
#  define SUPCON_API
#endif

/* ---- Version ------------------------------------------------------------------------ */
#define SUPCON_VERSION_MAJOR 0
#define SUPCON_VERSION_MINOR 1
#define SUPCON_VERSION_PATCH 0
#define SUPCON_VERSION_NUMBER \
    (SUPCON_VERSION_MAJOR * 10000 + SUPCON_VERSION_MINOR * 100 + SUPCON_VERSION_PATCH)

/** Version of the library actually loaded (compare with SUPCON_VERSION_NUMBER). */
SUPCON_API unsigned    supcon_version_number(void);
/** "MAJOR.MINOR.PATCH" of the library actually loaded. Static storage, never NULL. */
SUPCON_API const char *supcon_version_string(void);

/* ---- Status codes ------------------------------------------------------------------- */
/* One list makes the enum, the names and the messages, so they cannot drift apart.
 * Values are stable: new codes are only appended. */
#define SUPCON_STATUS_MAP(X)                                                              \
    X(OK, 0, "success")                                                                   \
    X(ERR_INVALID_ARGUMENT, 1, "invalid argument")                                        \
    X(ERR_SHAPE, 2, "tensor shape does not fit")                                          \
    X(ERR_DTYPE, 3, "tensor data type does not fit")                                      \
    X(ERR_OUT_OF_MEMORY, 4, "out of memory")                                              \
    X(ERR_UNSUPPORTED, 5, "operation not supported by this backend")                      \
    X(ERR_BACKEND_UNAVAILABLE, 6, "requested backend is not available on this machine")   \
    X(ERR_NON_FINITE, 7, "input holds NaN or infinity")                                   \
    X(ERR_STATE, 8, "call made in the wrong state")                                       \
    X(ERR_DEVICE, 9, "device (GPU) runtime reported an error")                            \
    X(ERR_IO, 10, "file could not be read or written")                                    \
    X(ERR_FORMAT, 11, "data is corrupt or not in the expected format")                    \
    X(ERR_INTERNAL, 12, "internal error in libsupcon")

typedef enum supcon_status {
#define SUPCON_STATUS_ENUM_(name, value, msg) SUPCON_##name = value,
    SUPCON_STATUS_MAP(SUPCON_STATUS_ENUM_)
#undef SUPCON_STATUS_ENUM_
} supcon_status;

/** Short English description of a status ("invalid argument"). Unknown codes give
 *  "unknown status". Static storage, never NULL, thread-safe. */
SUPCON_API const char *supcon_status_string(supcon_status s);
/** The status's identifier without prefix ("ERR_SHAPE"). Static storage, never NULL. */
SUPCON_API const char *supcon_status_name(supcon_status s);

/* ---- Context ------------------------------------------------------------------------ */
/** A context owns one backend (CPU or one CUDA device), its worker threads, its random
 *  number generator, its workspaces and its last-error message. Objects created from a
 *  context belong to it and must be freed before it. Two contexts never share mutable
 *  state, so different threads may each use their own context freely. One context must
 *  not be used from two threads at the same time. */
typedef struct supcon_context supcon_context;

typedef enum supcon_backend_kind {
    SUPCON_BACKEND_AUTO = 0, /* $SUPCON_BACKEND if set ("cpu"/"cuda"), else CUDA when a
                                device is usable, else CPU */
    SUPCON_BACKEND_CPU = 1,
    SUPCON_BACKEND_CUDA = 2
} supcon_backend_kind;

typedef enum supcon_log_level {
    SUPCON_LOG_ERROR = 0,
    SUPCON_LOG_WARNING = 1,
    SUPCON_LOG_INFO = 2,
    SUPCON_LOG_DEBUG = 3
} supcon_log_level;

/** Receives the library's log lines. The library never prints by itself: without a
 *  callback nothing is written anywhere. Called on the thread that made the call. */
typedef void (*supcon_log_fn)(void *user, supcon_log_level level, const char *message);

/** Arithmetic of the matrix products (convolutions, linear layers, the loss's logits).
 *  Everything else — sums, statistics, the optimiser, parameters — stays float32. */
typedef enum supcon_precision {
    SUPCON_PRECISION_FP32 = 0, /* strict float32 everywhere: the reference, and what the
                                  tests compare */
    SUPCON_PRECISION_TF32 = 1, /* products may round their inputs to TF32 (10-bit mantissa)
                                  on tensor cores, as PyTorch's allow_tf32; about 1e-3
                                  relative. A permission: backends without such units (the
                                  CPU) compute in float32 */
    SUPCON_PRECISION_BF16 = 2  /* mixed precision for the convolutions (nearly all of a
                                  ResNet's arithmetic): their operands and results are
                                  rounded to bfloat16 (8-bit significand, to nearest even)
                                  and they sum in float32, on a GPU's bfloat16 tensor cores.
                                  Linear layers, the loss, batch norm, the optimiser and the
                                  parameters (the master weights) stay strict float32. Not a
                                  permission: every backend rounds the same way, the CPU
                                  included, so a CPU run reproduces a GPU's arithmetic
                                  (about 1e-2 relative from float32) */
} supcon_precision;

typedef struct supcon_context_config {
    size_t struct_size;          /* sizeof(supcon_context_config): set by _default() */
    supcon_backend_kind backend; /* default SUPCON_BACKEND_AUTO */
    int device;                  /* CUDA device ordinal, default 0 */
    int num_threads;             /* CPU worker threads; 0 = one per online core */
    uint64_t seed;               /* seed of the context's RNG, default 0 */
    supcon_log_fn log_fn;        /* default NULL: silent */
    void *log_user;              /* passed back to log_fn */
    supcon_log_level log_level;  /* most verbose level delivered, default WARNING */
    int reserved_;               /* ignored: the padding of the first 0.1 layout, which older
                                    callers may leave unset */
    supcon_precision precision;  /* arithmetic of the products, default FP32 (appended: a
                                    shorter struct from an older caller means FP32) */
} supcon_context_config;

/** Defaults as documented per field, with struct_size filled in. */
SUPCON_API supcon_context_config supcon_context_config_default(void);

/** Create a context. cfg NULL means defaults (backend auto).
 *  Errors: ERR_INVALID_ARGUMENT (out NULL, bad struct_size or field),
 *  ERR_BACKEND_UNAVAILABLE (CUDA asked for but the module, the CUDA libraries or a device
 *  is missing; the message says which), ERR_OUT_OF_MEMORY. On error *out is NULL and the
 *  reason is available from supcon_context_last_error(NULL) on this thread. */
SUPCON_API supcon_status supcon_context_create(const supcon_context_config *cfg,
                                               supcon_context **out);
/** Free a context. NULL is a no-op. All objects made from it must be freed first. */
SUPCON_API void supcon_context_free(supcon_context *ctx);

/** Message describing the last failed call on ctx, or "" if none failed yet. With ctx NULL:
 *  the last failure of any call on the calling thread (for errors before a context exists).
 *  The string stays valid until the next failing call on the same context / thread. */
SUPCON_API const char *supcon_context_last_error(const supcon_context *ctx);

/** Which backend the context runs on (never AUTO), and its name ("cpu", "cuda"). */
SUPCON_API supcon_backend_kind supcon_context_backend(const supcon_context *ctx);
SUPCON_API const char *supcon_context_backend_name(const supcon_context *ctx);

/** The precision the context was made with. */
SUPCON_API supcon_precision supcon_context_precision(const supcon_context *ctx);

/* ---- Profiling ---------------------------------------------------------------------- */
/** One kind of backend call and the time spent in it since profiling was switched on.
 *  Names say the operation and, for convolutions, the shape ("conv2d forward 64x32x32 ->
 *  128 k3 s2 p1"). */
typedef struct supcon_profile_entry {
    const char *name; /* owned by the context: valid until profiling is switched on again
                         or the context is freed */
    int64_t calls;
    double seconds;
} supcon_profile_entry;

/** on = 1: time every backend call the library makes from now on (model layers, loss,
 *  optimiser, copies), starting from empty; on = 0: stop, keeping what was gathered. With
 *  it on, an asynchronous backend (CUDA) is synchronised before and after each call, so the
 *  times add up to the wall clock but a step runs slower than without: compare the parts,
 *  not the totals. Calls of more than 512 different names are counted under "(other)".
 *  Errors: ERR_INVALID_ARGUMENT (NULL ctx, on not 0 or 1), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_context_set_profiling(supcon_context *ctx, int on);

/** The entries gathered, in the order first seen: up to `capacity` of them into entries
 *  (which may be NULL when capacity is 0), and how many there are into *count.
 *  Errors: ERR_INVALID_ARGUMENT (NULL ctx or count, capacity < 0, entries NULL with
 *  capacity > 0). */
SUPCON_API supcon_status supcon_context_profile(const supcon_context *ctx, supcon_profile_entry *entries,
                                                int64_t capacity, int64_t *count);

/** Bytes currently allocated by the context's backend for tensors and workspaces. */
SUPCON_API size_t supcon_context_bytes_in_use(const supcon_context *ctx);
/** Largest value of supcon_context_bytes_in_use seen since creation. */
SUPCON_API size_t supcon_context_peak_bytes(const supcon_context *ctx);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_CORE_H */
