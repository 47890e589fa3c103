/* Per-call timing of the backend (supcon_context_set_profiling). The core brackets each
 * backend call it wants counted with sc_prof_begin / sc_prof_end; both cost one branch while
 * profiling is off. */
#ifndef SUPCON_LIB_PROFILE_H
#define SUPCON_LIB_PROFILE_H

#include "context_internal.h"

/* Longest name kept, with its terminator (longer ones are cut). */
#define SC_PROF_NAME_LEN 96
/* Distinct names kept; the rest go to the last slot, "(other)". */
#define SC_PROF_SLOTS 512

typedef struct sc_prof_slot {
    char name[SC_PROF_NAME_LEN];
    int64_t calls;
    double seconds;
} sc_prof_slot;

struct sc_profile {
    int on;
    int64_t used;
    sc_prof_slot slots[SC_PROF_SLOTS];
};

static inline int sc_prof_on(const supcon_context *ctx) { return ctx->profile && ctx->profile->on; }

double sc_prof_start_(supcon_context *ctx);
void sc_prof_stop_(supcon_context *ctx, const char *name, double t0);

/* The start time of a call (after the backend has finished what came before it), or 0
 * when profiling is off. */
static inline double sc_prof_begin(supcon_context *ctx) { return sc_prof_on(ctx) ? sc_prof_start_(ctx) : 0.0; }
/* Charge the time since t0 (after the backend has finished the call) to `name`. */
static inline void sc_prof_end(supcon_context *ctx, const char *name, double t0) {
    if (sc_prof_on(ctx)) sc_prof_stop_(ctx, name, t0);
}
/* Free the context's profile. */
void sc_prof_free(supcon_context *ctx);

#endif
