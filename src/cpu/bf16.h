/* Rounding a float to the nearest bfloat16 (ties to even), kept in a float: the upper 16 bits
 * of the float, as CUDA's __float2bfloat16_rn computes them for every value but NaN (checked
 * against a double reference over all 2^32 floats). Infinities stay, finite values past
 * bfloat16's largest round to infinity, a NaN stays a quiet NaN with its sign (CUDA gives its
 * canonical NaN). */
#ifndef SUPCON_CPU_BF16_H
#define SUPCON_CPU_BF16_H

#include <stdint.h>
#include <string.h>

static inline float sc_bf16_round(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        u = (u | 0x00400000u) & 0xffff0000u; /* NaN: quiet, and the payload's top kept */
    } else {
        u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, a tie to the even upper half */
        u &= 0xffff0000u;
    }
    memcpy(&v, &u, sizeof v);
    return v;
}

#endif
