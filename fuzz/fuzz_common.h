/* Shared by the fuzz targets: one CPU context for the whole run (errors are recorded in it;
 * the library never prints, so a clean run is silent). */
#ifndef SUPCON_FUZZ_COMMON_H
#define SUPCON_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data_internal.h"
#include "supcon/supcon.h"

static supcon_context *fuzz_context(void)
{
    static supcon_context *ctx = NULL;
    if (!ctx) {
        supcon_context_config cfg = supcon_context_config_default();
        cfg.backend = SUPCON_BACKEND_CPU;
        cfg.num_threads = 1;
        if (supcon_context_create(&cfg, &ctx) != SUPCON_OK)
            abort(); /* the harness, not the library */
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
