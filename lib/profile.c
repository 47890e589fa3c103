/* supcon_context_set_profiling / supcon_context_profile and the timing of backend calls.
 * Slots are allocated when profiling is switched on, so timing a call never allocates. */
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

static double sc_prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A failed synchronisation is not reported here: the call being timed, or the next one,
 * reports the fault itself. */
static void sc_prof_sync(supcon_context *ctx) {
    if (ctx->ops->synchronize) (void)ctx->ops->synchronize(ctx->state);
}

double sc_prof_start_(supcon_context *ctx) {
    sc_prof_sync(ctx);
    return sc_prof_now();
}

static sc_prof_slot *sc_prof_slot_of(struct sc_profile *p, const char *name) {
    for (int64_t i = 0; i < p->used; i++)
        if (strncmp(p->slots[i].name, name, SC_PROF_NAME_LEN - 1) == 0) return &p->slots[i];
    if (p->used == SC_PROF_SLOTS - 1) {
        sc_prof_slot *other = &p->slots[SC_PROF_SLOTS - 1];
        if (!other->name[0]) snprintf(other->name, sizeof other->name, "(other)");
        return other;
    }
    sc_prof_slot *s = &p->slots[p->used++];
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

void sc_prof_stop_(supcon_context *ctx, const char *name, double t0) {
    sc_prof_sync(ctx);
    sc_prof_slot *s = sc_prof_slot_of(ctx->profile, name);
    s->calls++;
    s->seconds += sc_prof_now() - t0;
}

void sc_prof_free(supcon_context *ctx) {
    free(ctx->profile);
    ctx->profile = NULL;
}

supcon_status supcon_context_set_profiling(supcon_context *ctx, int on) {
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_context_set_profiling: ctx is NULL");
    if (on != 0 && on != 1)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_context_set_profiling: on is %d, not 0 or 1", on);
    if (!on) {
        if (ctx->profile) ctx->profile->on = 0;
        return SUPCON_OK;
    }
    if (!ctx->profile && !(ctx->profile = malloc(sizeof *ctx->profile)))
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "supcon_context_set_profiling: out of memory");
    memset(ctx->profile, 0, sizeof *ctx->profile);
    ctx->profile->on = 1;
    return SUPCON_OK;
}

supcon_status supcon_context_profile(const supcon_context *ctx, supcon_profile_entry *entries, int64_t capacity,
                                     int64_t *count) {
    if (!ctx || !count)
        return sc_error((supcon_context *)ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_profile: %s is NULL", ctx ? "count" : "ctx");
    if (capacity < 0 || (capacity > 0 && !entries))
        return sc_error((supcon_context *)ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_context_profile: capacity %lld with entries %s", (long long)capacity,
                        entries ? "given" : "NULL");
    const struct sc_profile *p = ctx->profile;
    int64_t n = 0;
    if (p) n = p->used + (p->slots[SC_PROF_SLOTS - 1].calls > 0);
    for (int64_t i = 0, k = 0; p && i < SC_PROF_SLOTS && k < capacity; i++) {
        if (i >= p->used && i != SC_PROF_SLOTS - 1) continue;
        const sc_prof_slot *s = &p->slots[i];
        if (!s->calls && i == SC_PROF_SLOTS - 1) continue;
        entries[k].name = s->name;
        entries[k].calls = s->calls;
        entries[k].seconds = s->seconds;
        k++;
    }
    *count = n;
    return SUPCON_OK;
}
