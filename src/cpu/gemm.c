/* The GEMM driver: blocking (MC x KC blocks of A per worker; with several row blocks, NC x
 * KC blocks of B packed once and shared by all workers, with one, each worker packs the B
 * panels it uses right before using them, or the kernel reads B in place), packing for both
 * storage orders and through the operands' own packers, C in column runs, edge tiles, and
 * the portable micro-kernel. The vector micro-kernels live in gemm_avx512.c and
 * gemm_avx2.c; without them, OpenBLAS for stored matrices. */
#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_kernels.h"

#define SC_KC SC_GEMM_KC
#define SC_MC 576
#define SC_MC_NARROW 144 /* rows per block when C is narrow (a multiple of every mr) */
#define SC_NC 1024      /* columns of the shared B block (1 MB: stays in L2) */
#define SC_NC_FUSED 4096 /* columns per block when each worker packs its own B panels */
#define SC_TAGS 64       /* workers that remember which A block they hold */
#define SC_TILE_MAX (SC_MR_MAX * SC_NR_MAX)

/* The vector kernel for this CPU, or NULL: then the BLAS does the work (other ISAs, or
 * SUPCON_CPU_GEMM=blas to compare against it). SUPCON_CPU_GEMM=avx2 takes the AVX2 kernel
 * on an AVX-512 CPU, so that its path is tested where the AVX-512 one would be chosen. */
static const sc_ukernel_desc *sc_pick_kernel(void) {
    const char *env = getenv("SUPCON_CPU_GEMM");
    if (env && strcmp(env, "blas") == 0) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (env && strcmp(env, "avx2") == 0 && avx2) return &sc_ukernel_avx2;
    if (__builtin_cpu_supports("avx512f")) return &sc_ukernel_avx512;
    if (avx2) return &sc_ukernel_avx2;
#endif
    return NULL;
}

const char *sc_gemm_kernel_name(void) {
    const sc_ukernel_desc *kd = sc_pick_kernel();
    return kd ? kd->name : "blas";
}

/* Per worker: its block of A, one panel of B, one edge tile. */
#define SC_WORKER_FLOATS ((size_t)SC_MC * SC_KC + (size_t)SC_KC * SC_NR_MAX + SC_TILE_MAX)

size_t sc_gemm_ws_floats(int workers) { return (size_t)SC_KC * SC_NC + (size_t)workers * SC_WORKER_FLOATS; }

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

/* ---- the portable micro-kernel (no vector kernel, but a packer that BLAS cannot call) -- */

#define SC_PMR 8
#define SC_PNR 16

static void sc_ukernel_portable(int64_t kc, const float *a, const float *b, float *c, float *c_hi, int64_t ldc,
                                float alpha, float beta) {
    float acc[SC_PMR][SC_PNR];
    memset(acc, 0, sizeof acc);
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < SC_PMR; i++) {
            const float ai = a[p * SC_PMR + i];
#pragma omp simd
            for (int j = 0; j < SC_PNR; j++) acc[i][j] += ai * b[p * SC_PNR + j];
        }
    for (int i = 0; i < SC_PMR; i++)
        for (int j = 0; j < SC_PNR; j++) {
            float *cij = j < SC_PNR / 2 ? c + i * ldc + j : c_hi + i * ldc + j - SC_PNR / 2;
            *cij = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *cij;
        }
}

static const sc_ukernel_desc sc_ukernel_portable_desc = {SC_PMR, SC_PNR, sc_ukernel_portable, "portable", 0, 0, 0,
                                                            0, 0};

/* ---- the parallel driver -------------------------------------------------------------- */

typedef struct sc_gemm_job {
    const sc_ukernel_desc *kd;
    const sc_gemm_ws *ws;
    int64_t m, n, k;
    float alpha, beta;
    const sc_gemm_opnd *a, *b;
    sc_gemm_out c;
    /* the current (jc, pc) block */
    int64_t jc, nc, pc, kc;
    int64_t mc, col_chunks, chunk_panels;
    /* One block of rows: every worker packs the B panels it uses right before using them
     * (no shared B block, no second hand-off per block). */
    int fused;
    int64_t tags[SC_TAGS]; /* block of A each worker holds for this (jc, pc), -1: none */
} sc_gemm_job;

static void sc_pack_b_one(const sc_gemm_job *g, float *dst, int64_t j0, int64_t cols) {
    const int nr = g->kd->nr;
    if (g->b->pack)
        g->b->pack(g->b->ctx, dst, j0, cols, g->pc, g->kc, nr, NULL);
    else
        sc_pack_b_panel(dst, g->b->p, g->b->ld, g->b->trans, j0, cols, g->pc, g->kc, nr);
}

static void sc_pack_b_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_gemm_job *g = arg;
    const int nr = g->kd->nr;
    for (int64_t q = begin; q < end; q++) {
        const int64_t j0 = g->jc + q * nr, cols = g->jc + g->nc - j0 < nr ? g->jc + g->nc - j0 : nr;
        sc_pack_b_one(g, g->ws->mem + q * g->kc * nr, j0, cols);
    }
}

static void sc_pack_a_block(const sc_gemm_job *g, float *dst, int64_t i0, int64_t mc) {
    const int mr = g->kd->mr;
    if (!g->a->pack) {
        sc_pack_a(dst, g->a->p, g->a->ld, g->a->trans, i0, mc, g->pc, g->kc, mr, g->kd->pack_a_rows);
        return;
    }
    for (int64_t ip = 0; ip < mc; ip += mr) {
        const int64_t rows = mc - ip < mr ? mc - ip : mr;
        g->a->pack(g->a->ctx, dst + ip * g->kc, i0 + ip, rows, g->pc, g->kc, mr, g->kd->pack_a_rows);
    }
}

/* Is the C tile (rows from i, cols [j0, j0 + cols)) one run in memory? Then where. */
static float *sc_c_run(const sc_gemm_out *o, int64_t i, int64_t j0, int64_t cols) {
    if (!o->seg) return o->c + i * o->ldc + j0;
    const int64_t s = j0 / o->seg, r = j0 % o->seg;
    return r + cols <= o->seg ? o->c + i * o->ldc + s * o->seg_stride + r : NULL;
}

/* A whole tile's two halves of nr / 2 columns, each one run in memory (the kernels' c and
 * c_hi): 1, or 0 when the tile is partial or a half is split. */
static int sc_c_halves(const sc_gemm_out *o, int64_t i, int64_t j0, int64_t cols, int nr, float **lo, float **hi) {
    if (cols != nr) return 0;
    *lo = sc_c_run(o, i, j0, nr / 2);
    *hi = sc_c_run(o, i, j0 + nr / 2, nr / 2);
    return *lo && *hi;
}

/* A task is one MC block of rows times one chunk of column panels. */
static void sc_block_task(void *arg, int64_t begin, int64_t end, int worker) {
    sc_gemm_job *g = arg;
    const int mr = g->kd->mr, nr = g->kd->nr;
    float *apack = g->ws->mem + (size_t)SC_KC * SC_NC + (size_t)worker * SC_WORKER_FLOATS;
    float *bpanel = apack + (size_t)SC_MC * SC_KC;
    float *tile = bpanel + (size_t)SC_KC * SC_NR_MAX;
    const float beta = g->pc == 0 ? g->beta : 1.0f;
    const int64_t n_panels = (g->nc + nr - 1) / nr;
    int64_t packed_block = worker < SC_TAGS ? g->tags[worker] : -1;
    const int try_direct = g->fused && g->kd->direct && g->kd->direct3 && g->b->direct;
    int64_t off[SC_KC];
    uint16_t mask[2][SC_KC];
    sc_bdirect bd = {.off = off, .mask = {mask[0], mask[1]}};
    for (int64_t t = begin; t < end; t++) {
        const int64_t blk = t / g->col_chunks, chunk = t % g->col_chunks;
        const int64_t i0 = blk * g->mc, mc = g->m - i0 < g->mc ? g->m - i0 : g->mc;
        if (blk != packed_block) {
            sc_pack_a_block(g, apack, i0, mc);
            packed_block = blk;
            if (worker < SC_TAGS) g->tags[worker] = blk;
        }
        const int64_t q0 = chunk * g->chunk_panels;
        const int64_t q1 = q0 + g->chunk_panels < n_panels ? q0 + g->chunk_panels : n_panels;
        for (int64_t q = q0; q < q1; q++) {
            const int64_t j0 = g->jc + q * nr, cols = g->jc + g->nc - j0 < nr ? g->jc + g->nc - j0 : nr;
            const float *bp = g->ws->mem + q * g->kc * nr;
            bd.conv3 = 0;
            const int direct = try_direct && cols == nr && g->b->direct(g->b->ctx, j0, g->pc, g->kc, &bd);
            const sc_ukernel_direct_fn dfn = bd.conv3 ? g->kd->direct3 : g->kd->direct;
            if (g->fused && !direct) {
                sc_pack_b_one(g, bpanel, j0, cols);
                bp = bpanel;
            }
            for (int64_t ip = 0; ip < mc; ip += mr) {
                const int64_t rows = mc - ip < mr ? mc - ip : mr;
                const float *ap = apack + ip * g->kc;
                float *cp = NULL, *cp_hi = NULL;
                const int whole = sc_c_halves(&g->c, i0 + ip, j0, cols, nr, &cp, &cp_hi);
                if (whole && rows == mr) {
                    if (direct)
                        dfn(g->kc, ap, &bd, cp, cp_hi, g->c.ldc, g->alpha, beta);
                    else
                        g->kd->fn(g->kc, ap, bp, cp, cp_hi, g->c.ldc, g->alpha, beta);
                    continue;
                }
                /* the in-place 3x3 kernel's last panel of 4 or 8 rows (64, 128, 256, 512
                 * channels): only those rows computed, straight into C */
                const sc_ukernel_direct_fn part = !(whole && direct && bd.conv3) ? NULL
                                                  : rows == 4                  ? g->kd->direct3_r4
                                                  : rows == 8                  ? g->kd->direct3_r8
                                                                               : NULL;
                if (part) {
                    part(g->kc, ap, &bd, cp, cp_hi, g->c.ldc, g->alpha, beta);
                    continue;
                }
                if (direct)
                    dfn(g->kc, ap, &bd, tile, tile + nr / 2, nr, 1.0f, 0.0f);
                else
                    g->kd->fn(g->kc, ap, bp, tile, tile + nr / 2, nr, 1.0f, 0.0f);
                for (int64_t j = 0; j < cols;) { /* runs of columns that are contiguous in C */
                    int64_t run = cols - j;
                    float *dst = sc_c_run(&g->c, i0 + ip, j0 + j, 1);
                    if (g->c.seg) {
                        const int64_t left = g->c.seg - (j0 + j) % g->c.seg;
                        run = run < left ? run : left;
                    }
                    for (int64_t i = 0; i < rows; i++) {
                        float *ci = dst + i * g->c.ldc;
                        const float *ti = tile + i * nr + j;
                        if (beta == 0.0f)
                            for (int64_t u = 0; u < run; u++) ci[u] = g->alpha * ti[u];
                        else
                            for (int64_t u = 0; u < run; u++) ci[u] = g->alpha * ti[u] + beta * ci[u];
                    }
                    j += run;
                }
            }
        }
    }
}

void sc_sgemm_ex(sc_pool *pool, const sc_gemm_ws *ws, int64_t m, int64_t n, int64_t k, float alpha,
                 const sc_gemm_opnd *a, const sc_gemm_opnd *b, float beta, const sc_gemm_out *c) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float *cij = sc_c_run(c, i, j, 1);
                *cij = beta == 0.0f ? 0.0f : beta * *cij;
            }
        return;
    }
    const sc_ukernel_desc *kd = sc_pick_kernel();
    if (!kd && !a->pack && !b->pack && !c->seg) {
        cblas_sgemm(CblasRowMajor, a->trans ? CblasTrans : CblasNoTrans, b->trans ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, alpha, a->p, (int)a->ld, b->p, (int)b->ld, beta, c->c, (int)c->ldc);
        return;
    }
    if (!kd) kd = &sc_ukernel_portable_desc;
    sc_gemm_job g = {.kd = kd, .ws = ws, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta, .a = a, .b = b,
                     .c = *c};
    const int nr = g.kd->nr, workers = sc_pool_size(pool);
    /* Rows in blocks of up to SC_MC; when B is a few panels wide, in smaller blocks, so that
     * the workers share the rows rather than each packing all of A. */
    const int64_t all_panels = (n + nr - 1) / nr;
    g.mc = SC_MC;
    if (all_panels < 4 * (int64_t)workers && m > SC_MC_NARROW) g.mc = SC_MC_NARROW;
    const int64_t m_blocks = (m + g.mc - 1) / g.mc;
    g.fused = m_blocks == 1;
    const int64_t ncb = g.fused ? SC_NC_FUSED : SC_NC;
    const int64_t kcb = b->kc_unit > 1 && b->kc_unit <= SC_KC ? SC_KC / b->kc_unit * b->kc_unit : SC_KC;
    for (int64_t jc = 0; jc < n; jc += ncb) {
        g.jc = jc;
        g.nc = n - jc < ncb ? n - jc : ncb;
        const int64_t n_panels = (g.nc + nr - 1) / nr;
        /* Split columns too when there are few row blocks, so every worker has work: into
         * about four chunks per worker when each packs its own panels (dealt out
         * dynamically), two per worker over the blocks otherwise (each chunk of a shared
         * block costs a packing of A). */
        int64_t chunks = g.fused ? 4 * (int64_t)workers : (2 * workers + m_blocks - 1) / m_blocks;
        chunks = chunks < 1 ? 1 : chunks > n_panels ? n_panels : chunks;
        g.chunk_panels = (n_panels + chunks - 1) / chunks;
        g.col_chunks = (n_panels + g.chunk_panels - 1) / g.chunk_panels;
        for (int64_t pc = 0; pc < k; pc += kcb) {
            g.pc = pc;
            g.kc = k - pc < kcb ? k - pc : kcb;
            for (int i = 0; i < SC_TAGS; i++) g.tags[i] = -1;
            if (!g.fused) sc_pool_run(pool, n_panels, 8, sc_pack_b_task, &g);
            sc_pool_run(pool, m_blocks * g.col_chunks, 1, sc_block_task, &g);
        }
    }
}

void sc_sgemm(sc_pool *pool, const sc_gemm_ws *ws, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc) {
    const sc_gemm_opnd oa = {.p = a, .ld = lda, .trans = trans_a}, ob = {.p = b, .ld = ldb, .trans = trans_b};
    const sc_gemm_out oc = {.c = c, .ldc = ldc};
    sc_sgemm_ex(pool, ws, m, n, k, alpha, &oa, &ob, beta, &oc);
}
