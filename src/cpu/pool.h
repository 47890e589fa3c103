/* A small fork-join worker pool owned by one CPU context (never global). The calling thread
 * takes part in the work; idle workers poll for the next region for some tens of
 * microseconds, then sleep on a condition variable, so they leave the cores to OpenBLAS's
 * own threads between parallel regions. */
#ifndef SUPCON_CPU_POOL_H
#define SUPCON_CPU_POOL_H

#include <stdint.h>

typedef struct sc_pool sc_pool;

/* fn runs on items [begin, end) of one chunk; worker is 0..size-1 (0 = the caller). */
typedef void (*sc_pool_fn)(void *arg, int64_t begin, int64_t end, int worker);

/* threads <= 0: one per CPU this process may run on. Returns NULL when out of memory or
 * threads cannot be started. */
sc_pool *sc_pool_create(int threads);
void sc_pool_destroy(sc_pool *pool);
int sc_pool_size(const sc_pool *pool);
/* Run fn over [0, n) in chunks of `grain` items, handed out dynamically; returns when all
 * chunks are done. Not reentrant: one parallel region at a time per pool. */
void sc_pool_run(sc_pool *pool, int64_t n, int64_t grain, sc_pool_fn fn, void *arg);

#endif
