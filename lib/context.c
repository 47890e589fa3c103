/* Context lifetime, its configuration and the memory accounting of its backend. */
#include <stdlib.h>
#include <string.h>

#include "context_internal.h"
#include "error.h"
#include "profile.h"
#include "registry.h"

supcon_context_config supcon_context_config_default(void) {
    supcon_context_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.backend = SUPCON_BACKEND_AUTO;
    c.device = 0;
    c.num_threads = 0;
    c.seed = 0;
    c.log_level = SUPCON_LOG_WARNING;
    c.precision = SUPCON_PRECISION_FP32;
    return c;
}

supcon_status supcon_context_create(const supcon_context_config *cfg, supcon_context **out) {
    if (!out) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_context_create: out is NULL");
    *out = NULL;
    supcon_context_config c = supcon_context_config_default();
    if (cfg) {
        /* Older callers pass a shorter struct: take what they know, defaults for the rest. */
        if (cfg->struct_size < offsetof(supcon_context_config, log_level) + sizeof(int) ||
            cfg->struct_size > 4096)
            return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                            "supcon_context_create: cfg->struct_size %zu is not a "
                            "supcon_context_config size (use supcon_context_config_default())",
                            cfg->struct_size);
        memcpy(&c, cfg, cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c);
        c.struct_size = sizeof c;
    }
    if (c.num_threads < 0 || c.num_threads > 1024)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_create: cfg->num_threads %d must be in 0..1024", c.num_threads);
    if (c.device < 0)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_create: cfg->device %d is negative", c.device);
    if ((int)c.log_level < SUPCON_LOG_ERROR || (int)c.log_level > SUPCON_LOG_DEBUG)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_create: cfg->log_level %d is not a supcon_log_level",
                        (int)c.log_level);
    if ((int)c.precision < SUPCON_PRECISION_FP32 || (int)c.precision > SUPCON_PRECISION_BF16)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_create: cfg->precision %d is not a supcon_precision", (int)c.precision);

    supcon_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return sc_error(NULL, SUPCON_ERR_OUT_OF_MEMORY, "supcon_context_create: out of memory");
    ctx->device = c.device;
    ctx->num_threads = c.num_threads;
    ctx->seed = c.seed;
    ctx->log_fn = c.log_fn;
    ctx->log_user = c.log_user;
    ctx->log_level = c.log_level;
    ctx->precision = c.precision;
    supcon_status s = sc_backend_open(ctx, c.backend);
    if (s != SUPCON_OK) {
        /* The thread-local copy of the message outlives ctx. */
        free(ctx);
        return s;
    }
    sc_log(ctx, SUPCON_LOG_INFO, "libsupcon %s on backend %s", supcon_version_string(), ctx->ops->name);
    *out = ctx;
    return SUPCON_OK;
}

void supcon_context_free(supcon_context *ctx) {
    if (!ctx) return;
    sc_backend_close(ctx);
    sc_prof_free(ctx);
    free(ctx);
}

supcon_backend_kind supcon_context_backend(const supcon_context *ctx) { return ctx->kind; }

supcon_precision supcon_context_precision(const supcon_context *ctx) { return ctx->precision; }

const char *supcon_context_backend_name(const supcon_context *ctx) { return ctx->ops->name; }

static size_t sc_workspace_bytes(const supcon_context *ctx) {
    return ctx->ops->workspace_bytes ? ctx->ops->workspace_bytes(ctx->state) : 0;
}

size_t supcon_context_bytes_in_use(const supcon_context *ctx) {
    return ctx->bytes_in_use + sc_workspace_bytes(ctx);
}

size_t supcon_context_peak_bytes(const supcon_context *ctx) {
    size_t now = supcon_context_bytes_in_use(ctx);
    return now > ctx->peak_bytes ? now : ctx->peak_bytes;
}

void sc_note_peak(supcon_context *ctx) {
    size_t now = supcon_context_bytes_in_use(ctx);
    if (now > ctx->peak_bytes) ctx->peak_bytes = now;
}

supcon_status sc_alloc(supcon_context *ctx, size_t bytes, void **out) {
    *out = NULL;
    supcon_status s = ctx->ops->alloc(ctx->state, bytes, out);
    if (s != SUPCON_OK) return sc_backend_error(ctx, s, "allocation failed");
    ctx->bytes_in_use += bytes;
    sc_note_peak(ctx);
    return SUPCON_OK;
}

void sc_free(supcon_context *ctx, void *ptr, size_t bytes) {
    if (!ptr) return;
    ctx->ops->release(ctx->state, ptr);
    ctx->bytes_in_use -= bytes;
}
