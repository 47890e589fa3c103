/* The conv2d slots' two forms, which conv.c's slots choose between by the state's precision:
 * the float32 convolutions of conv.c, and their SUPCON_PRECISION_BF16 form in conv_bf16.c,
 * which rounds around them. Arguments as ops.h's conv2d slots; ws must hold the form's
 * workspace bytes. */
#ifndef SUPCON_CPU_CONV_BF16_H
#define SUPCON_CPU_CONV_BF16_H

#include "cpu_backend.h"

/* conv.c */
size_t sc_conv_f32_workspace_bytes(const supcon_conv_desc *d);
supcon_status sc_conv_f32_forward(sc_cpu *st, const supcon_conv_desc *d, float *y, const float *x,
                                  const float *weight, void *ws, size_t ws_bytes);
supcon_status sc_conv_f32_backward_data(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                                        const float *weight, int accumulate, void *ws, size_t ws_bytes);
supcon_status sc_conv_f32_backward_filter(sc_cpu *st, const supcon_conv_desc *d, float *dweight, const float *dy,
                                          const float *x, void *ws, size_t ws_bytes);

/* conv_bf16.c: float32's workspace plus the rounded copies */
size_t sc_conv_bf16_workspace_bytes(const supcon_conv_desc *d);
supcon_status sc_conv_bf16_forward(sc_cpu *st, const supcon_conv_desc *d, float *y, const float *x,
                                   const float *weight, void *ws, size_t ws_bytes);
supcon_status sc_conv_bf16_backward_data(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                                         const float *weight, int accumulate, void *ws, size_t ws_bytes);
supcon_status sc_conv_bf16_backward_filter(sc_cpu *st, const supcon_conv_desc *d, float *dweight, const float *dy,
                                           const float *x, void *ws, size_t ws_bytes);

#endif
