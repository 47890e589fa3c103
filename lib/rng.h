/* Counter-based, splittable random numbers: Philox-4x32-10 (Salmon et al., SC'11).
 * Every value is a pure function of (seed, stream, position), so work split over any number
 * of threads draws the same numbers. Internal (sc_ prefix); no global state. */
#ifndef SUPCON_LIB_RNG_H
#define SUPCON_LIB_RNG_H

#include <stdint.h>

/* A cursor into one stream. Copy it freely: it is plain data. Each Philox block yields four
 * 32-bit words; the cursor hands them out in order and moves to the next block. */
typedef struct sc_rng {
    uint32_t key[2]; /* the seed */
    uint32_t ctr[4]; /* ctr[0..1]: block position (64 bits), ctr[2..3]: stream (64 bits) */
    uint32_t buf[4]; /* words of the current block */
    int used;        /* words of buf already handed out (4: draw a fresh block) */
} sc_rng;

/* One Philox-4x32-10 block: out = philox(ctr, key). */
void sc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Stateless: the four words of block `block` of stream `stream` under `seed`. */
void sc_rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]);

/* Cursor at block 0 of (seed, stream). */
void sc_rng_init(sc_rng *r, uint64_t seed, uint64_t stream);
/* Move to the first word of block `block` of the same stream. */
void sc_rng_seek(sc_rng *r, uint64_t block);
/* A child stream at block 0: same seed, stream = sc_rng_mix(parent's stream, id). Children
 * with different ids (or different parents) are independent streams. */
sc_rng sc_rng_split(const sc_rng *r, uint64_t id);

/* A bijective 64-bit mixer (the splitmix64 finaliser); sc_rng_mix(a, b) hashes a pair into
 * a stream id, e.g. sc_rng_mix(sc_rng_mix(epoch, index), view). */
uint64_t sc_rng_mix1(uint64_t x);
uint64_t sc_rng_mix(uint64_t a, uint64_t b);

uint32_t sc_rng_u32(sc_rng *r);
uint64_t sc_rng_u64(sc_rng *r); /* two words, the first in the low half */
/* Uniform in [0, 1): 53 random bits (double) or 24 random bits (float). */
double sc_rng_uniform(sc_rng *r);
float sc_rng_uniform_f(sc_rng *r);
/* lo + (hi - lo) * u with u from sc_rng_uniform_f, in float, as torch's float uniform_. */
float sc_rng_range_f(sc_rng *r, float lo, float hi);
/* Uniform integer in [0, n), n >= 1, without modulo bias (Lemire's method). */
uint64_t sc_rng_below(sc_rng *r, uint64_t n);
/* Standard normal (Box-Muller on two uniforms; consumes 4 words). */
double sc_rng_normal(sc_rng *r);

/* Element k of a stream, for filling arrays in any order or split over threads (weight
 * initialisation): each uses block k alone, so element k never depends on elements < k. */
double sc_rng_normal_at(uint64_t seed, uint64_t stream, uint64_t k);
double sc_rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t k); /* [0, 1), 53 bits */

#endif
