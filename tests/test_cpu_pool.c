/* The worker pool hands out every item exactly once, with any thread count and grain, and
 * can be reused many times. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "pool.h"

typedef struct {
    atomic_int *hits;
    int max_worker;
    atomic_int bad_worker;
} job;

static void count(void *arg, int64_t begin, int64_t end, int worker) {
    job *j = arg;
    if (worker < 0 || worker > j->max_worker) atomic_store(&j->bad_worker, 1);
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&j->hits[i], 1);
}

static void test_every_item_once(void **st) {
    const int threads[] = {1, 2, 4, 7};
    const int64_t sizes[] = {0, 1, 5, 1000, 4097};
    const int64_t grains[] = {1, 3, 64, 10000};
    for (size_t t = 0; t < 4; t++) {
        sc_pool *pool = sc_pool_create(threads[t]);
        assert_non_null(pool);
        assert_int_equal(sc_pool_size(pool), threads[t]);
        for (size_t s = 0; s < 5; s++)
            for (size_t g = 0; g < 4; g++)
                for (int rep = 0; rep < 3; rep++) {
                    job j = {calloc((size_t)sizes[s] + 1, sizeof(atomic_int)), threads[t] - 1, 0};
                    sc_pool_run(pool, sizes[s], grains[g], count, &j);
                    for (int64_t i = 0; i < sizes[s]; i++)
                        if (atomic_load(&j.hits[i]) != 1)
                            fail_msg("threads %d n %lld grain %lld: item %lld ran %d times", threads[t],
                                     (long long)sizes[s], (long long)grains[g], (long long)i,
                                     atomic_load(&j.hits[i]));
                    assert_int_equal(atomic_load(&j.bad_worker), 0);
                    free(j.hits);
                }
        sc_pool_destroy(pool);
    }
}

static void square(void *arg, int64_t begin, int64_t end, int worker) {
    int64_t *out = arg; /* plain stores: the caller must see them once the region returns */
    for (int64_t i = begin; i < end; i++) out[i] = i * i;
}

/* Workers poll for a while after a region, then sleep: regions right after each other (found
 * while polling) and regions after a pause (workers asleep) must both run every item, and
 * the workers' plain stores must be visible to the caller afterwards. */
static void test_regions_back_to_back_and_after_sleep(void **st) {
    sc_pool *pool = sc_pool_create(3);
    assert_non_null(pool);
    int64_t out[257];
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < 257; i++) out[i] = -1;
        sc_pool_run(pool, 257, 1 + rep % 5, square, out);
        for (int64_t i = 0; i < 257; i++) assert_int_equal(out[i], i * i);
        if (rep % 4 == 3) nanosleep(&(struct timespec){0, 3000000}, NULL); /* far longer than the polling */
    }
    sc_pool_destroy(pool);
}

static void test_default_size_and_destroy_null(void **st) {
    sc_pool *pool = sc_pool_create(0);
    assert_non_null(pool);
    assert_true(sc_pool_size(pool) >= 1);
    sc_pool_destroy(pool);
    sc_pool_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once),
        cmocka_unit_test(test_regions_back_to_back_and_after_sleep),
        cmocka_unit_test(test_default_size_and_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
