/* EXPECT_ERR(call, status, ctx, "word", ...): a CMocka check that a call failed with the
 * documented status and that the last-error message of ctx (or of the thread when ctx is
 * NULL) is non-empty and names every word, case ignored. Include after <cmocka.h>. */
#ifndef SUPCON_TEST_EXPECT_ERR_H
#define SUPCON_TEST_EXPECT_ERR_H

#include "supcon/core.h"
#include "test_util.h"

static void expect_err_(supcon_status got, supcon_status want, const supcon_context *ctx,
                        const char *what, int line, const char *const *words) {
    if (got != want)
        fail_msg("line %d: %s returned %s, expected %s (last error: '%s')", line, what,
                 supcon_status_name(got), supcon_status_name(want), supcon_context_last_error(ctx));
    const char *msg = supcon_context_last_error(ctx);
    if (!msg || !msg[0]) fail_msg("line %d: %s: empty last-error message", line, what);
    for (; *words; words++)
        if (!tu_contains_ci(msg, *words))
            fail_msg("line %d: %s: message '%s' does not name '%s'", line, what, msg, *words);
}
#define EXPECT_ERR(call, want, ctx, ...)                                                      \
    expect_err_((call), (want), (ctx), #call, __LINE__, (const char *const[]){__VA_ARGS__, NULL})

#endif
