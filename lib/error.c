/* Last-error messages: one per context and one per thread, plus the optional log callback.
 * The library never prints; a message only reaches the user through these. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "context_internal.h"

static _Thread_local char sc_thread_error[SC_ERROR_LEN];

static void sc_store(supcon_context *ctx, const char *msg) {
    snprintf(sc_thread_error, sizeof sc_thread_error, "%s", msg);
    if (ctx) snprintf(ctx->last_error, sizeof ctx->last_error, "%s", msg);
}

supcon_status sc_error(supcon_context *ctx, supcon_status s, const char *fmt, ...) {
    char msg[SC_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sc_store(ctx, msg);
    sc_log(ctx, SUPCON_LOG_ERROR, "%s", msg);
    return s;
}

supcon_status sc_backend_error(supcon_context *ctx, supcon_status s, const char *what) {
    const char *detail = (ctx && ctx->ops->last_message) ? ctx->ops->last_message(ctx->state) : "";
    if (!detail || !*detail) detail = supcon_status_string(s);
    return sc_error(ctx, s, "%s: %s", what, detail);
}

void sc_log(supcon_context *ctx, supcon_log_level level, const char *fmt, ...) {
    if (!ctx || !ctx->log_fn || level > ctx->log_level) return;
    char msg[SC_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, msg);
}

const char *supcon_context_last_error(const supcon_context *ctx) {
    return ctx ? ctx->last_error : sc_thread_error;
}
