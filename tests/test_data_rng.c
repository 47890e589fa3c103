/* The counter-based RNG (lib/rng.c): Philox-4x32-10 against Random123's known answers, the
 * cursor against the stateless block function, seeking and splitting, and the shape of the
 * uniform, bounded-integer and normal draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "rng.h"

static void test_known_answers(void **state) {
    (void)state;
    /* Random123 kat_vectors: philox4x32 10 <ctr x4> <key x2> -> <out x4> */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        sc_philox4x32_10(kat[k], kat[k] + 4, out);
        for (int i = 0; i < 4; i++) assert_int_equal(out[i], kat[k][6 + i]);
    }
    /* the same through the (seed, stream, block) form: key = seed, ctr = block | stream */
    uint32_t out[4];
    sc_rng_block(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, out);
    assert_int_equal(out[0], 0xd16cfe09);
    assert_int_equal(out[3], 0x24126ea1);
}

static void test_cursor_seek_split(void **state) {
    (void)state;
    sc_rng r;
    sc_rng_init(&r, 42, 7);
    uint32_t seq[40];
    for (int i = 0; i < 40; i++) seq[i] = sc_rng_u32(&r);
    for (uint64_t b = 0; b < 10; b++) {
        uint32_t blk[4];
        sc_rng_block(42, 7, b, blk);
        assert_memory_equal(blk, seq + 4 * b, sizeof blk);
    }
    /* seeking lands on the same words, whatever came before */
    sc_rng s;
    sc_rng_init(&s, 42, 7);
    sc_rng_u32(&s);
    sc_rng_seek(&s, 6);
    for (int i = 24; i < 40; i++) assert_int_equal(sc_rng_u32(&s), seq[i]);
    /* a copy continues identically */
    sc_rng c = s;
    assert_int_equal(sc_rng_u32(&c), sc_rng_u32(&s));
    /* other seeds, streams and children give other words */
    sc_rng o;
    sc_rng_init(&o, 43, 7);
    assert_true(sc_rng_u32(&o) != seq[0]);
    sc_rng_init(&o, 42, 8);
    assert_true(sc_rng_u32(&o) != seq[0]);
    sc_rng a = sc_rng_split(&r, 1), b = sc_rng_split(&r, 2), a2 = sc_rng_split(&r, 1);
    uint32_t wa = sc_rng_u32(&a), wb = sc_rng_u32(&b);
    assert_true(wa != wb);
    assert_int_equal(sc_rng_u32(&a2), wa);
    /* element-wise draws: element k is block k, whatever order they are asked in */
    sc_rng e;
    sc_rng_init(&e, 9, 3);
    sc_rng_seek(&e, 5);
    double z5 = sc_rng_normal(&e);
    assert_true(sc_rng_normal_at(9, 3, 5) == z5);
    assert_true(sc_rng_normal_at(9, 3, 6) == sc_rng_normal(&e)); /* a normal is one block */
    sc_rng_seek(&e, 2);
    assert_true(sc_rng_uniform_at(9, 3, 2) == sc_rng_uniform(&e));
    /* the mixer is a bijection: no collisions among many consecutive inputs */
    enum { N = 4096 };
    static uint64_t v[N];
    for (int i = 0; i < N; i++) v[i] = sc_rng_mix(5, (uint64_t)i);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j += 61) assert_true(v[i] != v[j]);
}

static void test_distributions(void **state) {
    (void)state;
    sc_rng r;
    sc_rng_init(&r, 1, 2);
    const int n = 200000;
    double s = 0, s2 = 0, sf = 0;
    long bins[7] = {0};
    double ns = 0, ns2 = 0;
    for (int i = 0; i < n; i++) {
        double u = sc_rng_uniform(&r);
        float f = sc_rng_uniform_f(&r);
        assert_true(u >= 0 && u < 1 && f >= 0 && f < 1);
        s += u;
        s2 += u * u;
        sf += f;
        uint64_t k = sc_rng_below(&r, 7);
        assert_true(k < 7);
        bins[k]++;
        double z = sc_rng_normal(&r);
        assert_true(isfinite(z));
        ns += z;
        ns2 += z * z;
    }
    assert_true(fabs(s / n - 0.5) < 0.005 && fabs(sf / n - 0.5) < 0.005);
    assert_true(fabs(s2 / n - 1.0 / 3) < 0.005);
    double chi = 0, e = n / 7.0;
    for (int b = 0; b < 7; b++) chi += (bins[b] - e) * (bins[b] - e) / e;
    assert_true(chi < 30); /* df 6 */
    assert_true(fabs(ns / n) < 0.01 && fabs(ns2 / n - 1) < 0.02);
    /* range edges */
    assert_int_equal(sc_rng_below(&r, 1), 0);
    assert_int_equal(sc_rng_below(&r, 0), 0);
    for (int i = 0; i < 1000; i++) {
        assert_true(sc_rng_below(&r, 0x100000001ull) < 0x100000001ull);
        float x = sc_rng_range_f(&r, -0.1f, 0.1f);
        assert_true(x >= -0.1f && x <= 0.1f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_cursor_seek_split),
        cmocka_unit_test(test_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
