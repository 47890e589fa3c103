/* Number formats the emulated cuBLAS and cuDNN round to: TF32 (what tensor cores keep of a
 * float operand) and bfloat16 (the high half of a float). Internal to the emulation. */
#ifndef SUPCON_CUDA_EMU_ROUND_H
#define SUPCON_CUDA_EMU_ROUND_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t sc_emu_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float sc_emu_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* TF32 keeps 10 of the 23 mantissa bits. Tensor cores take it as cvt.rna does: to nearest,
 * ties away from zero. Adding half a unit to the magnitude bits and truncating is exactly
 * that, since the sign is apart; NaN and infinity pass unchanged. */
static inline float sc_emu_tf32(float f)
{
    const uint32_t u = sc_emu_bits(f);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return f;
    return sc_emu_float((u + 0x1000u) & ~0x1fffu);
}

/* float -> bfloat16, to nearest even; NaN stays a (quiet) NaN. */
static inline uint16_t sc_emu_to_bf16(float f)
{
    const uint32_t u = sc_emu_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float sc_emu_from_bf16(uint16_t h)
{
    return sc_emu_float((uint32_t)h << 16);
}

/* Ampere and later allow TF32 where the math mode does, unless NVIDIA_TF32_OVERRIDE=0 (the
 * driver's switch, which both libraries honour). */
static inline int sc_emu_tf32_allowed(void)
{
    const char *o = getenv("NVIDIA_TF32_OVERRIDE");
    return !(o && strcmp(o, "0") == 0);
}

#endif /* SUPCON_CUDA_EMU_ROUND_H */
