/* check(ok, fmt, ...): a counting check for the plain-C test programs (the GPU tests run many
 * thousands of comparisons and report the counts at the end): counts g_pass / g_fail and
 * prints "FAIL <message>" for each failure. */
#ifndef SUPCON_TEST_CHECK_H
#define SUPCON_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int g_pass, g_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

#endif
