/* The worker pool hands out every item exactly once, with any thread count and grain, and
 * can be reused many times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
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
        cmocka_unit_test(test_default_size_and_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
