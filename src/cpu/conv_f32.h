/* The float32 convolutions of conv.c. The backend's conv2d slots (conv_bf16.c) call them
 * directly, or around bfloat16 rounding under SUPCON_PRECISION_BF16. Arguments as ops.h's
 * conv2d slots; ws must hold sc_conv_f32_workspace_bytes(d). */
#ifndef SUPCON_CPU_CONV_F32_H
#define SUPCON_CPU_CONV_F32_H

#include "cpu_backend.h"

size_t sc_conv_f32_workspace_bytes(const supcon_conv_desc *d);
supcon_status sc_conv_f32_forward(sc_cpu *st, const supcon_conv_desc *d, float *y, const float *x,
                                  const float *weight, void *ws, size_t ws_bytes);
supcon_status sc_conv_f32_backward_data(sc_cpu *st, const supcon_conv_desc *d, float *dx, const float *dy,
                                        const float *weight, int accumulate, void *ws, size_t ws_bytes);
supcon_status sc_conv_f32_backward_filter(sc_cpu *st, const supcon_conv_desc *d, float *dweight, const float *dy,
                                          const float *x, void *ws, size_t ws_bytes);

#endif
