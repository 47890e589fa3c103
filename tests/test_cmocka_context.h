/* One CPU context for a whole CMocka group: g_ctx, opened by the group's setup and freed by
 * its teardown. Include after <cmocka.h>. */
#ifndef SUPCON_TEST_CMOCKA_CONTEXT_H
#define SUPCON_TEST_CMOCKA_CONTEXT_H

#include "supcon/core.h"

static supcon_context *g_ctx;

/* Opens g_ctx on the CPU backend with `threads` workers; -1 (group fails) on error. */
static int tu_open_cpu_context(int threads) {
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CPU;
    cc.num_threads = threads;
    if (supcon_context_create(&cc, &g_ctx) != SUPCON_OK) {
        print_error("context_create: %s\n", supcon_context_last_error(NULL));
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    supcon_context_free(g_ctx);
    return 0;
}

#endif
