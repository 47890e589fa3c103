/* Softmax cross-entropy on CUDA (mean over the batch, as torch.nn.CrossEntropyLoss) with
 * top-1/top-5 counts, as src/cpu/xent.c: labels checked first (nothing is written when one is
 * outside [0, classes)), then a block per row in double, the rows' sums combined in a fixed
 * order. Leaves out label smoothing, class weights and ignore_index. */
#include "block_reduce.h"
#include "cuda_backend.h"
#include "ops.h"

#define SC_XENT_THREADS 256
#define SC_XENT_MAX_BLOCKS 1024

typedef struct sc_xent_part {
    double loss;
    long long top1, top5;
} sc_xent_part;

/* The first row whose label is out of range lowers *first (the minimum wins). */
__global__ void sc_xent_check_kernel(unsigned long long *first, const int64_t *labels, int64_t n, int64_t classes)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        if (labels[i] < 0 || labels[i] >= classes)
            atomicMin(first, (unsigned long long)i);
}

/* Rows blockIdx.x, + gridDim.x, ...: each block adds its rows' losses and counts in order. */
__global__ void sc_xent_fwd_kernel(sc_xent_part *part, float *probs, const float *logits, const int64_t *labels,
                                   int64_t n, int64_t classes)
{
    __shared__ float shf[SC_REDUCE_SLOTS];
    __shared__ double shd[SC_REDUCE_SLOTS];
    __shared__ long long shl[SC_REDUCE_SLOTS];
    double total = 0.0;
    long long c1 = 0, c5 = 0;
    for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
        const float *z = logits + r * classes;
        const float zl = z[labels[r]];
        float m = -INFINITY;
        long long above = 0; /* logits strictly above the label's: its rank */
        for (int64_t k = threadIdx.x; k < classes; k += blockDim.x) {
            m = z[k] > m ? z[k] : m;
            above += z[k] > zl;
        }
        m = sc_block_max(m, shf);
        above = sc_block_sum(above, shl);
        double sum = 0.0;
        for (int64_t k = threadIdx.x; k < classes; k += blockDim.x)
            sum += exp((double)z[k] - m);
        sum = sc_block_sum(sum, shd);
        if (threadIdx.x == 0) {
            total += log(sum) - ((double)zl - m);
            c1 += above < 1;
            c5 += above < 5;
        }
        if (probs) {
            float *p = probs + r * classes;
            for (int64_t k = threadIdx.x; k < classes; k += blockDim.x)
                p[k] = (float)(exp((double)z[k] - m) / sum);
        }
    }
    if (threadIdx.x == 0)
        part[blockIdx.x] = {total, c1, c5};
}

__global__ void sc_xent_total_kernel(sc_xent_part *out, const sc_xent_part *part, int blocks)
{
    sc_xent_part t = {0.0, 0, 0};
    for (int i = 0; i < blocks; i++) {
        t.loss += part[i].loss;
        t.top1 += part[i].top1;
        t.top5 += part[i].top5;
    }
    *out = t;
}

__global__ void sc_xent_bwd_kernel(float *dlogits, const float *probs, const int64_t *labels, int64_t n,
                                   int64_t classes, double g)
{
    const int64_t total = n * classes, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int64_t r = i / classes, k = i - r * classes;
        dlogits[i] = (float)(g * ((double)probs[i] - (k == labels[r] ? 1.0 : 0.0)));
    }
}

/* ERR_INVALID_ARGUMENT naming the first row with a label outside [0, classes), else OK. */
static supcon_status sc_xent_check(sc_cuda_state *st, const int64_t *labels, int64_t n, int64_t classes)
{
    supcon_status s = sc_cuda_check(st, cudaMemsetAsync(st->scratch, 0xff, sizeof *st->scratch, st->stream),
                                    "cudaMemsetAsync (label check)");
    if (s != SUPCON_OK)
        return s;
    sc_xent_check_kernel<<<sc_cuda_grid(n, 256, 1024), 256, 0, st->stream>>>(st->scratch, labels, n, classes);
    s = sc_cuda_launched(st, "sc_xent_check_kernel");
    if (s != SUPCON_OK)
        return s;
    unsigned long long row = 0;
    s = sc_cuda_check(st, cudaMemcpyAsync(&row, st->scratch, sizeof row, cudaMemcpyDeviceToHost, st->stream),
                      "cudaMemcpyAsync (label check)");
    if (s == SUPCON_OK)
        s = sc_cuda_sync(st, "sc_xent_check_kernel");
    if (s != SUPCON_OK || row == ~0ull)
        return s;
    int64_t label = 0;
    s = sc_cuda_check(st, cudaMemcpyAsync(&label, labels + row, sizeof label, cudaMemcpyDeviceToHost, st->stream),
                      "cudaMemcpyAsync (offending label)");
    if (s == SUPCON_OK)
        s = sc_cuda_sync(st, "reading the offending label");
    if (s != SUPCON_OK)
        return s;
    return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "label %lld of row %lld is outside [0, %lld)",
                        (long long)label, (long long)row, (long long)classes);
}

supcon_status sc_cuda_xent_forward(void *state, double *loss, int64_t *top1, int64_t *top5, float *probs,
                                   const float *logits, const int64_t *labels, int64_t n, int64_t classes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (n <= 0) {
        *loss = 0.0;
        if (top1)
            *top1 = 0;
        if (top5)
            *top5 = 0;
        return SUPCON_OK;
    }
    supcon_status s = sc_cuda_enter(st);
    if (s == SUPCON_OK)
        s = sc_xent_check(st, labels, n, classes);
    if (s != SUPCON_OK)
        return s;
    const int blocks = (int)(n < SC_XENT_MAX_BLOCKS ? n : SC_XENT_MAX_BLOCKS);
    sc_xent_part *part = (sc_xent_part *)st->layer_scratch, *result = part + blocks;
    sc_xent_fwd_kernel<<<blocks, SC_XENT_THREADS, 0, st->stream>>>(part, probs, logits, labels, n, classes);
    s = sc_cuda_launched(st, "sc_xent_fwd_kernel");
    if (s != SUPCON_OK)
        return s;
    sc_xent_total_kernel<<<1, 1, 0, st->stream>>>(result, part, blocks);
    s = sc_cuda_launched(st, "sc_xent_total_kernel");
    if (s != SUPCON_OK)
        return s;
    sc_xent_part host;
    s = sc_cuda_check(st, cudaMemcpyAsync(&host, result, sizeof host, cudaMemcpyDeviceToHost, st->stream),
                      "cudaMemcpyAsync (cross-entropy result)");
    if (s == SUPCON_OK)
        s = sc_cuda_sync(st, "sc_xent_fwd_kernel");
    if (s != SUPCON_OK)
        return s;
    *loss = host.loss / (double)n;
    if (top1)
        *top1 = host.top1;
    if (top5)
        *top5 = host.top5;
    return SUPCON_OK;
}

supcon_status sc_cuda_xent_backward(void *state, float *dlogits, const float *probs, const int64_t *labels,
                                    int64_t n, int64_t classes, float dloss)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    if (n <= 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    if (s == SUPCON_OK)
        s = sc_xent_check(st, labels, n, classes);
    if (s != SUPCON_OK)
        return s;
    sc_xent_bwd_kernel<<<sc_cuda_grid(n * classes, 256, 8192), 256, 0, st->stream>>>(
        dlogits, probs, labels, n, classes, (double)dloss / (double)n);
    return sc_cuda_launched(st, "sc_xent_bwd_kernel");
}
