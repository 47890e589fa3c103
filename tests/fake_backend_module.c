/* A stand-in for libsupcon_cuda.so that the core must refuse before calling anything in it:
 * built twice (tests/core_tests.cmake), once with the wrong backend ABI and once with only
 * one of the four staged-upload slots filled. Its init must never run. */
#include <stddef.h>

#include "backend.h"

static supcon_status fake_init(const supcon_backend_init *cfg, void **state, char *msg, size_t len) {
    (void)cfg, (void)msg, (void)len;
    *state = NULL;
    return SUPCON_ERR_INTERNAL; /* reached only if the core failed to refuse the table */
}

#ifndef FAKE_WRONG_ABI
static supcon_status fake_stage_create(void *state, void **stage) {
    (void)state;
    *stage = NULL;
    return SUPCON_ERR_INTERNAL;
}
#endif

static supcon_backend_ops fake_table(void) {
    supcon_backend_ops o = {0};
#ifdef FAKE_WRONG_ABI
    o.abi = SUPCON_BACKEND_ABI + 1u;
#else
    o.abi = SUPCON_BACKEND_ABI;
    o.stage_create = fake_stage_create; /* and no stage_destroy, stage_release, stage_upload */
#endif
    o.name = "fake";
    o.init = fake_init;
    return o;
}

__attribute__((visibility("default"))) const supcon_backend_ops *supcon_cuda_backend_entry(void) {
    static supcon_backend_ops ops;
    ops = fake_table();
    return &ops;
}
