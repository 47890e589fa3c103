/* Error reporting: every failing call records a message in its context and in a
 * thread-local buffer (for failures before a context exists), then returns the status. */
#ifndef SUPCON_LIB_ERROR_H
#define SUPCON_LIB_ERROR_H

#include "supcon/core.h"

#if defined(__GNUC__)
#define SC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SC_PRINTF(a, b)
#endif

/* Record "fmt..." as the last error of ctx (may be NULL) and of this thread; returns s. */
supcon_status sc_error(supcon_context *ctx, supcon_status s, const char *fmt, ...) SC_PRINTF(3, 4);
/* Copy a backend's own message after one of its calls failed; returns s. */
supcon_status sc_backend_error(supcon_context *ctx, supcon_status s, const char *what);
/* Deliver a log line to the context's callback if its level is enabled. */
void sc_log(supcon_context *ctx, supcon_log_level level, const char *fmt, ...) SC_PRINTF(3, 4);

#endif
