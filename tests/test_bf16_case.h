/* A bfloat16 convolution whose every result is known to the bit, shared by the CPU's and the
 * GPU's BF16 tests: two channels of two pixels, 1x1. Operands m (1 + 2^-9) round to the
 * integers m, so every result is a small integer, exact in bfloat16, and a value moved to
 * another channel or pixel changes it; unrounded operands would give m m' (1 + 2^-8), which
 * rounds elsewhere. Header-only. */
#ifndef SUPCON_TEST_BF16_CASE_H
#define SUPCON_TEST_BF16_CASE_H

#include "backend.h"

typedef struct bf16_case {
    supcon_conv_desc d;
    float x[4], w[4], dy[4];                 /* x[c][p], w[o][c], dy[o][p] */
    float want_y[4], want_dx[4], want_dw[4]; /* dw from zero */
} bf16_case;

static inline bf16_case bf16_two_by_two_case(void) {
    const float e = 1.0f + 0x1p-9f;
    const bf16_case c = {{1, 2, 1, 2, 2, 1, 1, 1, 1, 0, 0},
                         {1 * e, 2 * e, 3 * e, 5 * e},
                         {1 * e, 4 * e, 6 * e, 7 * e},
                         {1 * e, 2 * e, 3 * e, 5 * e},
                         {13, 22, 27, 47},
                         {19, 32, 25, 43},
                         {5, 13, 13, 34}};
    return c;
}

#endif
