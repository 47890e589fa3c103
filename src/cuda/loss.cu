/* SupConLoss on CUDA: blocks of T anchor rows against the whole contrast set. Per block,
 * z = A_blk C^T / tau (cuBLAS), one CUDA block per row turns the row into its term and then
 * into d loss / d z in place, and two GEMMs push that into dA and dC. The N_A x N_C logits
 * are never held whole: T x N_C floats stay under the state's tile budget.
 * The per-row arithmetic and its derivation are in loss_math.h. */
#include <limits.h>
#include <stdint.h>

#include "cuda_backend.h"
#include "loss_math.h"

#define SC_ROW_THREADS 256
#define SC_SUM_THREADS 1024

/* ---- Block reductions (fixed tree: the same inputs give the same bits every run) ---- */

__device__ __forceinline__ sc_lse sc_shfl(sc_lse v, int o)
{
    v.m = __shfl_xor_sync(0xffffffffu, v.m, o);
    v.s = __shfl_xor_sync(0xffffffffu, v.s, o);
    return v;
}

__device__ __forceinline__ sc_row_stats sc_shfl(sc_row_stats v, int o)
{
    v.all = sc_shfl(v.all, o);
    v.neg = sc_shfl(v.neg, o);
    v.pos = sc_shfl(v.pos, o);
    v.w = __shfl_xor_sync(0xffffffffu, v.w, o);
    v.wz = __shfl_xor_sync(0xffffffffu, v.wz, o);
    return v;
}

__device__ __forceinline__ sc_pos_stats sc_shfl(sc_pos_stats v, int o)
{
    v.wlp = __shfl_xor_sync(0xffffffffu, v.wlp, o);
    v.wom = __shfl_xor_sync(0xffffffffu, v.wom, o);
    v.um = __shfl_xor_sync(0xffffffffu, v.um, o);
    v.us = __shfl_xor_sync(0xffffffffu, v.us, o);
    v.uv = __shfl_xor_sync(0xffffffffu, v.uv, o);
    return v;
}

__device__ __forceinline__ double sc_shfl(double v, int o)
{
    return __shfl_xor_sync(0xffffffffu, v, o);
}

__device__ __forceinline__ sc_row_stats sc_merge(sc_row_stats a, sc_row_stats b)
{
    return sc_row_stats_merge(a, b);
}
__device__ __forceinline__ sc_pos_stats sc_merge(sc_pos_stats a, sc_pos_stats b)
{
    return sc_pos_stats_merge(a, b);
}
__device__ __forceinline__ double sc_merge(double a, double b)
{
    return a + b;
}

/* Reduce v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets
 * the result. `identity` pads the missing warps. */
template <typename T>
__device__ T sc_block_reduce(T v, T identity)
{
    __shared__ T part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v = sc_merge(v, sc_shfl(v, o));
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? part[lane] : identity;
        for (int o = 16; o > 0; o >>= 1)
            v = sc_merge(v, sc_shfl(v, o));
        if (lane == 0)
            part[0] = v;
    }
    __syncthreads();
    v = part[0];
    __syncthreads(); /* part may be reused by the next reduction */
    return v;
}

/* ---- The row kernel ----------------------------------------------------------------- */

struct sc_rows_args {
    float *z;       /* (rows, nc): logits in, d loss / d z out */
    int64_t nc;
    int64_t a0;     /* global index of row 0 */
    int exclude_self;
    int kind;       /* supcon_positive_kind */
    const int64_t *alab, *clab;
    const float *mask;
    int64_t mask_n;
    int den, agg;
    double c;       /* (tau / tau_b) / N_A */
    int want_grad;
    double *terms;  /* (N_A): m_a per anchor */
};

/* Walks k = threadIdx.x, +blockDim.x, ... over a row and hands each entry with its weight
 * to f; the excluded entry is skipped. k % mask_n is kept incrementally (no 64-bit modulo
 * per entry). */
template <typename F>
__device__ __forceinline__ void sc_row_walk(const sc_rows_args &p, int64_t a, const float *zrow,
                                            F f)
{
    int64_t excl = p.exclude_self && a < p.nc ? a : -1;
    if (p.kind == SUPCON_POSITIVE_LABELS) {
        int64_t la = p.alab[a];
        for (int64_t k = threadIdx.x; k < p.nc; k += blockDim.x)
            if (k != excl)
                f(k, zrow[k], p.clab[k] == la ? 1.0f : 0.0f);
    } else {
        const float *mrow = p.mask + (a % p.mask_n) * p.mask_n;
        int64_t step = (int64_t)blockDim.x % p.mask_n;
        int64_t km = (int64_t)threadIdx.x % p.mask_n;
        for (int64_t k = threadIdx.x; k < p.nc; k += blockDim.x) {
            if (k != excl)
                f(k, zrow[k], mrow[km]);
            km += step;
            if (km >= p.mask_n)
                km -= p.mask_n;
        }
    }
}

__global__ void __launch_bounds__(SC_ROW_THREADS) sc_loss_rows_kernel(sc_rows_args p)
{
    int64_t r = blockIdx.x;
    int64_t a = p.a0 + r;
    float *zrow = p.z + r * p.nc;

    sc_row_stats st = sc_row_stats_empty();
    sc_row_walk(p, a, zrow, [&](int64_t, float z, float w) { sc_row_stats_add(&st, z, w); });
    st = sc_block_reduce(st, sc_row_stats_empty());

    sc_pos_stats ps = sc_pos_stats_empty();
    if (sc_row_needs_pos_pass(p.den) && st.w > 0.0) {
        double l_neg = sc_row_l_neg(&st);
        sc_row_walk(p, a, zrow, [&](int64_t, float z, float w) {
            if (w != 0.0f)
                sc_pos_stats_add(&ps, z, w, l_neg);
        });
        ps = sc_block_reduce(ps, sc_pos_stats_empty());
    }

    sc_row_coef k = sc_row_finish(&st, &ps, p.den, p.agg, p.c);
    if (threadIdx.x == 0)
        p.terms[a] = k.m;
    if (!p.want_grad)
        return;
    /* Every entry of the row is written, the excluded one with 0. Each thread rewrites only
     * the entries it read itself, so no barrier is needed between the passes. */
    int64_t excl = p.exclude_self && a < p.nc ? a : -1;
    if (excl >= 0 && excl % blockDim.x == threadIdx.x)
        zrow[excl] = 0.0f;
    sc_row_walk(p, a, zrow, [&](int64_t kk, float z, float w) { zrow[kk] = sc_row_grad(&k, z, w); });
}

/* Sum of the N_A terms in one block, in a fixed order. */
__global__ void __launch_bounds__(SC_SUM_THREADS) sc_sum_terms_kernel(const double *terms,
                                                                      int64_t n, double *out)
{
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        s += terms[i];
    s = sc_block_reduce(s, 0.0);
    if (threadIdx.x == 0)
        *out = s;
}

/* ---- Host side ---------------------------------------------------------------------- */

static size_t sc_align256(size_t x)
{
    return (x + 255) & ~(size_t)255;
}

/* Rows per block: T * nc floats within the tile budget, at least 1, at most n_anchors,
 * and T * nc below 2^31 so that cuBLAS's int sizes hold. */
static int64_t sc_tile_rows(size_t budget, int64_t na, int64_t nc)
{
    int64_t t = (int64_t)(budget / ((size_t)nc * sizeof(float)));
    int64_t cap = (int64_t)INT_MAX / nc;
    if (t > cap)
        t = cap;
    if (t > na)
        t = na;
    return t < 1 ? 1 : t;
}

static supcon_status sc_gemm(sc_cuda_state *st, cublasOperation_t ta, cublasOperation_t tb,
                             int64_t m, int64_t n, int64_t k, float alpha, const float *A,
                             int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                             int64_t ldc, const char *what)
{
    return sc_cublas_check(st, cublasSgemm(st->blas, ta, tb, (int)m, (int)n, (int)k, &alpha, A,
                                           (int)lda, B, (int)ldb, &beta, C, (int)ldc),
                           what);
}

supcon_status sc_cuda_loss(void *state, const supcon_loss_problem *p, double *value)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    const int64_t na = p->n_anchors, nc = p->n_contrast, d = p->dim;
    *value = 0.0;
    if (na <= 0 || nc < 0 || d <= 0)
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT,
                            "cuda loss: bad sizes (n_anchors %lld, n_contrast %lld, dim %lld)",
                            (long long)na, (long long)nc, (long long)d);
    if (nc > INT_MAX || d > INT_MAX)
        return sc_cuda_fail(st, SUPCON_ERR_UNSUPPORTED,
                            "cuda loss: n_contrast %lld or dim %lld exceeds the GEMM limit %d",
                            (long long)nc, (long long)d, INT_MAX);
    if (p->positive_kind == SUPCON_POSITIVE_MASK && (!p->mask || p->mask_n <= 0))
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "cuda loss: mask positives without a mask");
    if (p->positive_kind == SUPCON_POSITIVE_LABELS && (!p->anchor_labels || !p->contrast_labels))
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "cuda loss: label positives without labels");
    if (!(p->temperature > 0.0f) || !(p->base_temperature > 0.0f))
        return sc_cuda_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "cuda loss: temperatures must be > 0");

    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;

    float *ga = p->grad_anchors, *gc = p->grad_contrast;
    const int aliased = ga && ga == gc;
    const int want_grad = ga || gc;
    const double scale = (double)p->temperature / (double)p->base_temperature;
    const double c = scale / (double)na;
    const float inv_tau = (float)(1.0 / (double)p->temperature);

    if (nc == 0) { /* nothing to contrast with: every term is 0, so is the gradient */
        if (ga && !aliased)
            s = sc_cuda_check(st, cudaMemsetAsync(ga, 0, (size_t)na * d * sizeof(float), st->stream),
                              "cudaMemsetAsync (grad_anchors)");
        return s == SUPCON_OK ? sc_cuda_sync(st, "loss (empty contrast set)") : s;
    }

    /* Workspace: the logits block, the N_A terms and the sum. Halve the block on OOM. */
    int64_t rows = sc_tile_rows(st->tile_bytes, na, nc);
    size_t terms_off, sum_off, need;
    for (;;) {
        terms_off = sc_align256((size_t)rows * (size_t)nc * sizeof(float));
        sum_off = terms_off + sc_align256((size_t)na * sizeof(double));
        need = sum_off + sizeof(double);
        s = sc_cuda_workspace(st, need);
        if (s != SUPCON_ERR_OUT_OF_MEMORY || rows == 1)
            break;
        rows = (rows + 1) / 2;
    }
    if (s != SUPCON_OK)
        return s;
    float *zb = (float *)st->ws;
    double *terms = (double *)((char *)st->ws + terms_off);
    double *sum = (double *)((char *)st->ws + sum_off);

    sc_rows_args ra;
    ra.z = zb;
    ra.nc = nc;
    ra.exclude_self = p->exclude_self;
    ra.kind = p->positive_kind;
    ra.alab = p->anchor_labels;
    ra.clab = p->contrast_labels;
    ra.mask = p->mask;
    ra.mask_n = p->mask_n;
    ra.den = p->denominator;
    ra.agg = p->aggregation;
    ra.c = c;
    ra.want_grad = want_grad;
    ra.terms = terms;

    for (int64_t a0 = 0; a0 < na; a0 += rows) {
        const int64_t t = na - a0 < rows ? na - a0 : rows;
        const float *ab = p->anchors + a0 * d;
        /* Row-major X (r x c) is column-major X^T. z_blk^T (nc x t) = C (nc x d) . A_blk^T. */
        s = sc_gemm(st, CUBLAS_OP_T, CUBLAS_OP_N, nc, t, d, inv_tau, p->contrast, d, ab, d, 0.0f,
                    zb, nc, "cublasSgemm (logits)");
        if (s != SUPCON_OK)
            return s;
        ra.a0 = a0;
        sc_loss_rows_kernel<<<(unsigned)t, SC_ROW_THREADS, 0, st->stream>>>(ra);
        s = sc_cuda_launched(st, "sc_loss_rows_kernel");
        if (s != SUPCON_OK)
            return s;
        if (gc) { /* dC^T (d x nc) (+)= A_blk^T (d x t) . dz (t x nc), over tau */
            s = sc_gemm(st, CUBLAS_OP_N, CUBLAS_OP_T, d, nc, t, inv_tau, ab, d, zb, nc,
                        a0 == 0 ? 0.0f : 1.0f, gc, d, "cublasSgemm (grad contrast)");
            if (s != SUPCON_OK)
                return s;
        }
        if (ga) { /* dA_blk^T (d x t) = C^T (d x nc) . dz^T (nc x t), over tau; added when
                     the anchors' gradient goes into the contrast gradient's rows */
            s = sc_gemm(st, CUBLAS_OP_N, CUBLAS_OP_N, d, t, nc, inv_tau, p->contrast, d, zb, nc,
                        aliased ? 1.0f : 0.0f, ga + a0 * d, d, "cublasSgemm (grad anchors)");
            if (s != SUPCON_OK)
                return s;
        }
    }

    sc_sum_terms_kernel<<<1, SC_SUM_THREADS, 0, st->stream>>>(terms, na, sum);
    s = sc_cuda_launched(st, "sc_sum_terms_kernel");
    if (s != SUPCON_OK)
        return s;
    double total = 0.0;
    s = sc_cuda_check(st, cudaMemcpyAsync(&total, sum, sizeof total, cudaMemcpyDeviceToHost,
                                          st->stream),
                      "cudaMemcpyAsync (loss value)");
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_sync(st, "loss");
    if (s != SUPCON_OK)
        return s;
    *value = -c * total;
    return SUPCON_OK;
}
