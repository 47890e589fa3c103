/* The GEMM driver: blocking (NC x KC panels of B shared by all workers, MC x KC blocks of A
 * per worker), packing for both storage orders, edge tiles, and the portable micro-kernel.
 * The vector micro-kernels live in gemm_avx512.c and gemm_avx2.c; without them, OpenBLAS. */
#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_kernels.h"

#define SC_KC 256
#define SC_MC 144
#define SC_NC 4096
#define SC_TILE_MAX (SC_MR_MAX * SC_NR_MAX)

/* The vector kernel for this CPU, or NULL: then the BLAS does the work (other ISAs, or
 * SUPCON_CPU_GEMM=blas to compare against it). */
static const sc_ukernel_desc *sc_pick_kernel(void) {
    const char *env = getenv("SUPCON_CPU_GEMM");
    if (env && strcmp(env, "blas") == 0) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return &sc_ukernel_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &sc_ukernel_avx2;
#endif
    return NULL;
}

const char *sc_gemm_kernel_name(void) {
    const sc_ukernel_desc *kd = sc_pick_kernel();
    return kd ? kd->name : "blas";
}

size_t sc_gemm_ws_floats(int workers) {
    return (size_t)SC_KC * SC_NC + (size_t)workers * ((size_t)SC_MC * SC_KC + SC_TILE_MAX);
}

/* ---- packing: zero-padded micro-panels, k-major ------------------------------------------ */

/* A block rows [i0, i0+mc), depth [p0, p0+kc) into panels of mr rows. Reads run along
 * memory (rows when A is stored m x k, columns when stored k x m); the scattered writes
 * land in the small packed block, which stays in cache. */
static void sc_pack_a(float *dst, const float *a, int64_t lda, int trans, int64_t i0, int64_t mc, int64_t p0,
                      int64_t kc, int mr, sc_pack_a_fn pack_rows) {
    for (int64_t ip = 0; ip < mc; ip += mr) {
        const int64_t rows = mc - ip < mr ? mc - ip : mr;
        if (!trans && pack_rows) {
            pack_rows(dst, a + (i0 + ip) * lda + p0, lda, rows, kc);
        } else if (!trans) {
            for (int64_t i = 0; i < rows; i++) {
                const float *src = a + (i0 + ip + i) * lda + p0;
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = src[p];
            }
            for (int64_t i = rows; i < mr; i++)
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = 0.0f;
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = a + (p0 + p) * lda + i0 + ip;
                float *d = dst + p * mr;
                for (int64_t i = 0; i < mr; i++) d[i] = i < rows ? src[i] : 0.0f;
            }
        }
        dst += kc * mr;
    }
}

/* One panel of nr columns [j0, j0+nr) of op(B), depth [p0, p0+kc). */
static void sc_pack_b_panel(float *dst, const float *b, int64_t ldb, int trans, int64_t j0, int64_t cols,
                            int64_t p0, int64_t kc, int nr) {
    if (!trans) {
        for (int64_t p = 0; p < kc; p++) {
            const float *s = b + (p0 + p) * ldb + j0;
            float *d = dst + p * nr;
            memcpy(d, s, (size_t)cols * sizeof(float));
            for (int64_t j = cols; j < nr; j++) d[j] = 0.0f;
        }
    } else {
        for (int64_t p = 0; p < kc; p++) {
            float *d = dst + p * nr;
            for (int64_t j = 0; j < cols; j++) d[j] = b[(j0 + j) * ldb + p0 + p];
            for (int64_t j = cols; j < nr; j++) d[j] = 0.0f;
        }
    }
}

/* ---- the parallel driver -------------------------------------------------------------- */

typedef struct sc_gemm_job {
    const sc_ukernel_desc *kd;
    const sc_gemm_ws *ws;
    int trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
    /* the current (jc, pc) block */
    int64_t jc, nc, pc, kc;
    int64_t col_chunks, chunk_panels;
} sc_gemm_job;

static void sc_pack_b_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gemm_job *g = arg;
    const int nr = g->kd->nr;
    for (int64_t q = begin; q < end; q++) {
        const int64_t j0 = g->jc + q * nr, cols = g->jc + g->nc - j0 < nr ? g->jc + g->nc - j0 : nr;
        sc_pack_b_panel(g->ws->mem + q * g->kc * nr, g->b, g->ldb, g->trans_b, j0, cols, g->pc, g->kc, nr);
    }
}

/* A task is one MC block of rows times one chunk of column panels. */
static void sc_block_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gemm_job *g = arg;
    const int mr = g->kd->mr, nr = g->kd->nr;
    float *apack = g->ws->mem + (size_t)SC_KC * SC_NC + (size_t)worker * ((size_t)SC_MC * SC_KC + SC_TILE_MAX);
    float *tile = apack + (size_t)SC_MC * SC_KC;
    const float beta = g->pc == 0 ? g->beta : 1.0f;
    const int64_t n_panels = (g->nc + nr - 1) / nr;
    int64_t packed_block = -1;
    for (int64_t t = begin; t < end; t++) {
        const int64_t blk = t / g->col_chunks, chunk = t % g->col_chunks;
        const int64_t i0 = blk * SC_MC, mc = g->m - i0 < SC_MC ? g->m - i0 : SC_MC;
        if (blk != packed_block) {
            sc_pack_a(apack, g->a, g->lda, g->trans_a, i0, mc, g->pc, g->kc, mr, g->kd->pack_a_rows);
            packed_block = blk;
        }
        const int64_t q0 = chunk * g->chunk_panels;
        const int64_t q1 = q0 + g->chunk_panels < n_panels ? q0 + g->chunk_panels : n_panels;
        for (int64_t q = q0; q < q1; q++) {
            const float *bp = g->ws->mem + q * g->kc * nr;
            const int64_t j0 = g->jc + q * nr, cols = g->jc + g->nc - j0 < nr ? g->jc + g->nc - j0 : nr;
            for (int64_t ip = 0; ip < mc; ip += mr) {
                const int64_t rows = mc - ip < mr ? mc - ip : mr;
                const float *ap = apack + ip * g->kc;
                float *cp = g->c + (i0 + ip) * g->ldc + j0;
                if (rows == mr && cols == nr) {
                    g->kd->fn(g->kc, ap, bp, cp, g->ldc, g->alpha, beta);
                    continue;
                }
                g->kd->fn(g->kc, ap, bp, tile, nr, 1.0f, 0.0f);
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = 0; j < cols; j++) {
                        float v = g->alpha * tile[i * nr + j];
                        cp[i * g->ldc + j] = beta == 0.0f ? v : v + beta * cp[i * g->ldc + j];
                    }
            }
        }
    }
}

void sc_sgemm(sc_pool *pool, const sc_gemm_ws *ws, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const sc_ukernel_desc *kd = sc_pick_kernel();
    if (!kd) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
        return;
    }
    sc_gemm_job g = {.kd = kd, .ws = ws, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n,
                     .k = k, .alpha = alpha, .beta = beta, .a = a, .b = b, .lda = lda, .ldb = ldb, .ldc = ldc,
                     .c = c};
    const int nr = g.kd->nr, workers = sc_pool_size(pool);
    const int64_t m_blocks = (m + SC_MC - 1) / SC_MC;
    for (int64_t jc = 0; jc < n; jc += SC_NC) {
        g.jc = jc;
        g.nc = n - jc < SC_NC ? n - jc : SC_NC;
        const int64_t n_panels = (g.nc + nr - 1) / nr;
        /* Split columns too when there are few row blocks, so every worker has work. */
        int64_t chunks = (2 * workers + m_blocks - 1) / m_blocks;
        chunks = chunks < 1 ? 1 : chunks > n_panels ? n_panels : chunks;
        g.chunk_panels = (n_panels + chunks - 1) / chunks;
        g.col_chunks = (n_panels + g.chunk_panels - 1) / g.chunk_panels;
        for (int64_t pc = 0; pc < k; pc += SC_KC) {
            g.pc = pc;
            g.kc = k - pc < SC_KC ? k - pc : SC_KC;
            sc_pool_run(pool, n_panels, 8, sc_pack_b_task, &g);
            sc_pool_run(pool, m_blocks * g.col_chunks, 1, sc_block_task, &g);
        }
    }
}
