/* Philox-4x32-10 and the draws built on it. Written from the published algorithm; checked
 * against the Random123 known-answer vectors in tests/test_data_rng.c. */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static void set_counter(uint32_t ctr[4], uint64_t block, uint64_t stream)
{
    ctr[0] = (uint32_t)block;
    ctr[1] = (uint32_t)(block >> 32);
    ctr[2] = (uint32_t)stream;
    ctr[3] = (uint32_t)(stream >> 32);
}

void sc_rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4];
    set_counter(ctr, block, stream);
    sc_philox4x32_10(ctr, key, out);
}

void sc_rng_init(sc_rng *r, uint64_t seed, uint64_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    set_counter(r->ctr, 0, stream);
    r->used = 4;
}

void sc_rng_seek(sc_rng *r, uint64_t block)
{
    r->ctr[0] = (uint32_t)block;
    r->ctr[1] = (uint32_t)(block >> 32);
    r->used = 4;
}

uint64_t sc_rng_mix1(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t sc_rng_mix(uint64_t a, uint64_t b)
{
    /* mix1 is a bijection, so for a fixed a this is injective in b. */
    return sc_rng_mix1(sc_rng_mix1(a) ^ b);
}

sc_rng sc_rng_split(const sc_rng *r, uint64_t id)
{
    sc_rng child;
    uint64_t stream = (uint64_t)r->ctr[2] | ((uint64_t)r->ctr[3] << 32);
    child.key[0] = r->key[0];
    child.key[1] = r->key[1];
    set_counter(child.ctr, 0, sc_rng_mix(stream, id));
    child.used = 4;
    return child;
}

uint32_t sc_rng_u32(sc_rng *r)
{
    if (r->used >= 4) {
        sc_philox4x32_10(r->ctr, r->key, r->buf);
        /* advance the 64-bit block position; the stream words stay */
        if (++r->ctr[0] == 0)
            ++r->ctr[1];
        r->used = 0;
    }
    return r->buf[r->used++];
}

uint64_t sc_rng_u64(sc_rng *r)
{
    uint64_t lo = sc_rng_u32(r);
    uint64_t hi = sc_rng_u32(r);
    return lo | (hi << 32);
}

double sc_rng_uniform(sc_rng *r)
{
    return (double)(sc_rng_u64(r) >> 11) * 0x1.0p-53;
}

float sc_rng_uniform_f(sc_rng *r)
{
    return (float)(sc_rng_u32(r) >> 8) * 0x1.0p-24f;
}

float sc_rng_range_f(sc_rng *r, float lo, float hi)
{
    return sc_rng_uniform_f(r) * (hi - lo) + lo;
}

uint64_t sc_rng_below(sc_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    if (n <= 0xFFFFFFFFull) {
        /* Lemire: multiply a 32-bit word by n, reject the few low products that bias */
        uint32_t n32 = (uint32_t)n;
        uint64_t m = (uint64_t)sc_rng_u32(r) * n32;
        uint32_t low = (uint32_t)m;
        if (low < n32) {
            uint32_t threshold = (uint32_t)(-n32) % n32;
            while (low < threshold) {
                m = (uint64_t)sc_rng_u32(r) * n32;
                low = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    /* wide n: plain rejection on the smallest covering power of two */
    uint64_t mask = n - 1;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    for (;;) {
        uint64_t v = sc_rng_u64(r) & mask;
        if (v < n)
            return v;
    }
}

double sc_rng_normal(sc_rng *r)
{
    double u1 = 1.0 - sc_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = sc_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

double sc_rng_normal_at(uint64_t seed, uint64_t stream, uint64_t k)
{
    sc_rng r;
    sc_rng_init(&r, seed, stream);
    sc_rng_seek(&r, k);
    return sc_rng_normal(&r);
}

double sc_rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t k)
{
    sc_rng r;
    sc_rng_init(&r, seed, stream);
    sc_rng_seek(&r, k);
    return sc_rng_uniform(&r);
}
