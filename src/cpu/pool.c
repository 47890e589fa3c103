/* Fork-join pool: a generation counter wakes the workers, an atomic cursor deals out
 * chunks, a counter of finished workers wakes the caller. Both sides spin a little before
 * they sleep: a training step runs a few thousand parallel regions back to back, and waking
 * a sleeping thread through the kernel costs tens of microseconds (more in a VM), which the
 * region's other threads spend waiting. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SC_PAUSE() _mm_pause()
#else
#define SC_PAUSE() ((void)0)
#endif

/* Polls of a flag before sleeping on the condition variable (with a pause each: tens of
 * microseconds; a CPU stays busy that long after the last region, then sleeps). */
#define SC_POOL_SPIN 256

struct sc_pool {
    int size; /* workers + the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint_fast64_t generation; /* changed under lock, read by spinners without it */
    int stopping;
    atomic_int running; /* workers still busy with this generation */
    /* the current job */
    sc_pool_fn fn;
    void *arg;
    int64_t n, grain;
    atomic_llong cursor;
};

typedef struct {
    sc_pool *pool;
    int index;
} sc_worker_arg;

static void sc_pool_work(sc_pool *p, int worker) {
    for (;;) {
        int64_t begin = atomic_fetch_add(&p->cursor, p->grain);
        if (begin >= p->n) return;
        int64_t end = begin + p->grain < p->n ? begin + p->grain : p->n;
        p->fn(p->arg, begin, end, worker);
    }
}

static void *sc_worker_main(void *raw) {
    sc_worker_arg a = *(sc_worker_arg *)raw;
    free(raw);
    sc_pool *p = a.pool;
    uint64_t seen = 0;
    for (;;) {
        /* the next region usually comes within microseconds: watch for it first */
        for (int i = 0; i < SC_POOL_SPIN && atomic_load_explicit(&p->generation, memory_order_acquire) == seen; i++)
            SC_PAUSE();
        pthread_mutex_lock(&p->lock);
        while (!p->stopping && atomic_load_explicit(&p->generation, memory_order_relaxed) == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        const int stop = p->stopping;
        seen = atomic_load_explicit(&p->generation, memory_order_relaxed);
        pthread_mutex_unlock(&p->lock);
        if (stop) break;
        sc_pool_work(p, a.index);
        if (atomic_fetch_sub_explicit(&p->running, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->lock); /* the caller may be asleep: wake it under the lock */
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

static int sc_cpus_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

sc_pool *sc_pool_create(int threads) {
    if (threads <= 0) threads = sc_cpus_available();
    sc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->size = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->cursor, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->running, 0);
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof *p->threads);
        if (!p->threads) {
            sc_pool_destroy(p);
            return NULL;
        }
    }
    for (int i = 1; i < threads; i++) {
        sc_worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->pool = p;
        a->index = i;
        if (pthread_create(&p->threads[i - 1], NULL, sc_worker_main, a) != 0) {
            free(a);
            break;
        }
        p->size++;
    }
    if (p->size != threads) {
        sc_pool_destroy(p);
        return NULL;
    }
    return p;
}

void sc_pool_destroy(sc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->size - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int sc_pool_size(const sc_pool *p) { return p->size; }

void sc_pool_run(sc_pool *p, int64_t n, int64_t grain, sc_pool_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (p->size == 1 || n <= grain) {
        fn(arg, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->grain = grain;
    atomic_store(&p->cursor, 0);
    atomic_store_explicit(&p->running, p->size - 1, memory_order_relaxed);
    /* release: a worker that sees the new generation sees the job written above */
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    sc_pool_work(p, 0);
    for (int i = 0; i < SC_POOL_SPIN && atomic_load_explicit(&p->running, memory_order_acquire) > 0; i++)
        SC_PAUSE();
    if (atomic_load_explicit(&p->running, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load_explicit(&p->running, memory_order_acquire) > 0) pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}
