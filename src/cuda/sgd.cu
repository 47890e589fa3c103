/* SGD on CUDA: one elementwise kernel per segment, on the context's stream. Every product
 * and sum is rounded on its own (__fmul_rn / __fadd_rn: no fused multiply-add), as the CPU
 * backend does, so both backends give the same bits for the same inputs. */
#include "cuda_backend.h"
#include "ops.h"

__global__ void sc_sgd_kernel(float *__restrict__ w, const float *__restrict__ g, float *__restrict__ buf,
                              int64_t n, float lr, float wd, float mu, float keep, int nesterov, int first)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float d = g[i];
        if (wd != 0.0f)
            d = __fadd_rn(d, __fmul_rn(wd, w[i]));
        if (buf) {
            const float nb = first ? d : __fadd_rn(__fmul_rn(mu, buf[i]), __fmul_rn(keep, d));
            buf[i] = nb;
            d = nesterov ? __fadd_rn(d, __fmul_rn(mu, nb)) : nb;
        }
        w[i] = __fsub_rn(w[i], __fmul_rn(lr, d));
    }
}

supcon_status sc_cuda_sgd_update(void *state, const supcon_sgd_segment *segs, int64_t count)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    supcon_status s = sc_cuda_enter(st);
    for (int64_t k = 0; s == SUPCON_OK && k < count; k++) {
        const supcon_sgd_segment *g = &segs[k];
        if (g->count <= 0)
            continue;
        float *buf = (g->momentum != 0.0f) ? g->momentum_buffer : NULL;
        sc_sgd_kernel<<<sc_cuda_grid(g->count, 256, 8192), 256, 0, st->stream>>>(
            g->param, g->grad, buf, g->count, g->lr, g->weight_decay, g->momentum, g->one_minus_dampening,
            g->nesterov, g->first);
        s = sc_cuda_launched(st, "sc_sgd_kernel");
    }
    return s;
}
