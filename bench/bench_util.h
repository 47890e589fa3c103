/* What the benchmark programs share: a monotonic clock, the process's memory (peak and
 * current RSS from /proc, getrusage as fallback), and a counter-based splitmix64 stream
 * whose element k depends on k alone (so Python can reproduce the inputs). */
#ifndef SUPCON_BENCH_UTIL_H
#define SUPCON_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One "VmXXX:   1234 kB" field of /proc/self/status in bytes, or -1 when unreadable. */
static inline long long proc_status_bytes(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    size_t n = strlen(field);
    long long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtoll(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0). Without it
 * the delta is taken against getrusage's lifetime maximum, which only ever grows. */
static inline int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static inline long long peak_rss_bytes(void) {
    long long hwm = proc_status_bytes("VmHWM");
    if (hwm >= 0) return hwm;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024; /* Linux reports kB */
}

static inline long long current_rss_bytes(void) {
    long long rss = proc_status_bytes("VmRSS");
    return rss >= 0 ? rss : peak_rss_bytes();
}

static inline uint64_t splitmix64_at(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
