/* Stand-in for CUDA's bfloat16 header (see ../emu.h): the 16-bit storage type and the
 * conversions src/cuda uses, rounding to nearest even as the hardware's cvt.rn.bf16.f32. */
#ifndef SUPCON_CUDA_EMU_CUDA_BF16_H
#define SUPCON_CUDA_EMU_CUDA_BF16_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda_runtime.h"

struct __nv_bfloat16_raw {
    unsigned short x;
};

static inline unsigned short sc_emu_f32_to_bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return 0x7fff; /* any NaN becomes the canonical quiet NaN, as on the device */
    /* Adding 0x7fff plus the lowest kept bit carries into the kept half exactly when the
     * dropped half is above one half, or equal to it with the kept half odd. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

/* A double rounds once, not through float: first to float rounding to odd (toward zero, the
 * last bit set when inexact), which keeps enough to round to nearest even correctly next. */
static inline unsigned short sc_emu_f64_to_bf16_bits(double d)
{
    float t = (float)d;
    if (d == d && (double)t != d) {
        if (fabs((double)t) > fabs(d))
            t = nextafterf(t, 0.0f);
        uint32_t u;
        memcpy(&u, &t, sizeof u);
        u |= 1u;
        memcpy(&t, &u, sizeof t);
    }
    return sc_emu_f32_to_bf16_bits(t);
}

static inline float sc_emu_bf16_bits_to_f32(unsigned short h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Two bytes, trivially copyable; converts to and from float as the real type does. */
struct alignas(2) __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    constexpr __nv_bfloat16(const __nv_bfloat16_raw &r) : __x(r.x) {}
    __nv_bfloat16(float f) : __x(sc_emu_f32_to_bf16_bits(f)) {}
    __nv_bfloat16(double f) : __x(sc_emu_f64_to_bf16_bits(f)) {}
    operator float() const { return sc_emu_bf16_bits_to_f32(__x); }
    operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
static_assert(sizeof(__nv_bfloat16) == 2, "bfloat16 is two bytes");

static inline __nv_bfloat16 __float2bfloat16_rn(float f)
{
    return __nv_bfloat16(__nv_bfloat16_raw{sc_emu_f32_to_bf16_bits(f)});
}
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 h) { return sc_emu_bf16_bits_to_f32(h.__x); }

#endif /* SUPCON_CUDA_EMU_CUDA_BF16_H */
