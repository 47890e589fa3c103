/* The context's private layout, shared by the core's files. Not public: users see an
 * opaque handle. Internal functions are prefixed sc_ (never exported). */
#ifndef SUPCON_LIB_CONTEXT_INTERNAL_H
#define SUPCON_LIB_CONTEXT_INTERNAL_H

#include "backend.h"
#include "supcon/core.h"

#define SC_ERROR_LEN 1024

struct supcon_context {
    const supcon_backend_ops *ops; /* the backend's table */
    void *state;                   /* the backend's private state */
    void *module;                  /* dlopen handle of the CUDA module, or NULL */
    supcon_backend_kind kind;
    int device;
    int num_threads;
    uint64_t seed;
    supcon_log_fn log_fn;
    void *log_user;
    supcon_log_level log_level;
    supcon_precision precision;
    struct sc_profile *profile;    /* NULL until profiling is first switched on (profile.h) */
    size_t bytes_in_use;
    size_t peak_bytes;
    char last_error[SC_ERROR_LEN];
};

/* Backend memory with accounting; sc_free(ctx, NULL) is a no-op. The size is needed to
 * keep bytes_in_use exact. */
supcon_status sc_alloc(supcon_context *ctx, size_t bytes, void **out);
void sc_free(supcon_context *ctx, void *ptr, size_t bytes);
/* Update the peak after the backend may have grown its own workspaces. */
void sc_note_peak(supcon_context *ctx);

#endif
