/* exp for float in plain C that compilers vectorise (glibc's expf only vectorises under
 * -ffast-math, which we do not use). Relative error about 2e-7 over the range we need. */
#ifndef SUPCON_CPU_VMATH_H
#define SUPCON_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

/* e^x for x in [-87, 88]; smaller x gives about 1e-38 instead of 0, which is negligible
 * next to the row's largest term (e^0 = 1) in every sum it enters. */
static inline float sc_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* x = n ln2 + r with |r| <= ln2/2; n rounded by the 1.5 * 2^23 trick. */
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504f + shifter) - shifter;
    float r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
