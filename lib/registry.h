/* Finding a backend at run time: the CPU backend is built in; the CUDA backend is a module
 * loaded with dlopen, so libsupcon itself never depends on the CUDA libraries. */
#ifndef SUPCON_LIB_REGISTRY_H
#define SUPCON_LIB_REGISTRY_H

#include "context_internal.h"

/* The built-in CPU backend (src/cpu/backend.c). */
const supcon_backend_ops *sc_cpu_backend(void);

/* Fill ctx->ops/state/module/kind for the requested kind (AUTO resolved here). On failure
 * the context's error says why and nothing stays open. */
supcon_status sc_backend_open(supcon_context *ctx, supcon_backend_kind kind);
void sc_backend_close(supcon_context *ctx);

#endif
