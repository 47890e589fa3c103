/* The CPU backend's SGD update (sgd.c): one fused pass over flat parameter, gradient and
 * momentum buffers, as the backend table's sgd_update slot (lib/backend.h documents it). */
#ifndef SUPCON_CPU_SGD_H
#define SUPCON_CPU_SGD_H

#include <stdint.h>

#include "backend.h"

supcon_status sc_cpu_sgd_update(void *state, const supcon_sgd_segment *segs, int64_t count);

#endif
