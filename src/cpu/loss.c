/* SupConLoss on the CPU, tiled: blocks of anchor rows against the whole contrast set.
 * Per block: logits by one GEMM, then each row's statistics, loss term and dL/dz in place
 * (worker pool), then dA and dC by two GEMMs. Three GEMMs of N_A x N_C x D in all; memory is
 * one block, never the whole N_A x N_C matrix.
 *
 * Per anchor a (self excluded), with e_k = exp(z_k - max), weights w_k, negatives w_k == 0,
 * W = sum w, Pc = W clamped to 1 below 1e-6 (the reference's guard), g = (tau/tau_b)/N_A:
 *   ALL/OUT  term = (sum w (z-max) - W log Zall)/Pc      dz = g/Pc (W e/Zall - w)
 *   NEG/OUT  term = (sum w (z-max) - W log Zneg)/Pc      dz = g/Pc (W [neg] e/Zneg - w)
 *   ALL/IN   term = log S - log Zall - log Pc            dz = g (e/Zall - w e/S)
 *   NEG/IN   term = log S - log Zneg - log Pc            dz = g ([neg] e/Zneg - w e/S)
 *   POS/OUT  term = (sum w (z-max) - sum w log(e+Zneg))/Pc,
 *            dz = g/Pc ([neg] e R - w (1-q)),  q = e/(e+Zneg), R = sum w/(e+Zneg)
 *   POS/IN   term = log Q - log Pc, Q = sum w q,
 *            dz = g/Q ([neg] e U - w q (1-q)),  U = sum w q/(e+Zneg)
 * where Zall = sum e, Zneg = sum over negatives of e, S = sum w e. The loss is -g sum term.
 * Anchors with W == 0 (no positive), or without negatives in the NEG variant, give 0 and no
 * gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "gemm.h"
#include "supcon/loss.h"
#include "vmath.h"

/* Logits of one block stay under this many floats (32 MB). */
#define SC_BLOCK_FLOATS ((int64_t)8 << 20)

#define SC_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

typedef struct sc_row_sums {
    double zall, zneg, w, s, wz;
} sc_row_sums;

typedef struct sc_block_job {
    const supcon_loss_problem *p;
    float *block;   /* (rows, nc): logits in, e then dz out */
    float *weights; /* (workers, nc) scratch */
    double *terms;  /* (rows) */
    int64_t a0;
    float g;
    int want_grad;
} sc_block_job;

/* ---- vectorised passes over [0, n) of one row -------------------------------------------- */

SC_VECTOR_CLONES
static float sc_row_max(const float *z, int64_t n, float m) {
#pragma omp simd reduction(max : m)
    for (int64_t k = 0; k < n; k++) m = z[k] > m ? z[k] : m;
    return m;
}

/* z becomes e = exp(z - m); accumulates the sums every variant needs. Float partial sums
 * over short chunks (vector lanes), added into doubles, keep the error near float epsilon
 * at any row length without paying for double arithmetic in the inner loop. */
#define SC_CHUNK 512
SC_VECTOR_CLONES
static void sc_row_exp(float *z, const float *w, int64_t n, float m, sc_row_sums *acc) {
    for (int64_t c0 = 0; c0 < n; c0 += SC_CHUNK) {
        const int64_t c1 = n - c0 < SC_CHUNK ? n : c0 + SC_CHUNK;
        float zall = 0, zneg = 0, ws = 0, s = 0, wz = 0;
#pragma omp simd reduction(+ : zall, zneg, ws, s, wz)
        for (int64_t k = c0; k < c1; k++) {
            float x = z[k] - m;
            float e = sc_expf(x);
            z[k] = e;
            zall += e;
            zneg += w[k] == 0.0f ? e : 0.0f;
            ws += w[k];
            s += w[k] * e;
            wz += w[k] * x;
        }
        acc->zall += zall;
        acc->zneg += zneg;
        acc->w += ws;
        acc->s += s;
        acc->wz += wz;
    }
}

/* Over positives, for the POSITIVE denominator: sum w log(e+Zneg), sum w/(e+Zneg),
 * sum w q, sum w q/(e+Zneg). Entries with w == 0 contribute nothing. */
SC_VECTOR_CLONES
static void sc_row_pos(const float *e, const float *w, int64_t n, float zneg, double out[4]) {
    double l = 0, r = 0, q = 0, u = 0;
#pragma omp simd reduction(+ : l, r, q, u)
    for (int64_t k = 0; k < n; k++) {
        if (w[k] != 0.0f) {
            float den = e[k] + zneg;
            float qk = e[k] / den;
            l += (double)w[k] * log((double)den);
            r += w[k] / den;
            q += w[k] * qk;
            u += w[k] * qk / den;
        }
    }
    out[0] += l;
    out[1] += r;
    out[2] += q;
    out[3] += u;
}

/* dz = ca e + cn [neg] e + cw w + cwe w e (the ALL/NEG variants). */
SC_VECTOR_CLONES
static void sc_row_grad_linear(float *e, const float *w, int64_t n, float ca, float cn, float cw, float cwe) {
#pragma omp simd
    for (int64_t k = 0; k < n; k++) {
        float neg = w[k] == 0.0f ? 1.0f : 0.0f;
        e[k] = e[k] * (ca + cn * neg + cwe * w[k]) + cw * w[k];
    }
}

/* dz = cn [neg] e - cq w f(q), f = (1-q) for OUT or q(1-q) for IN (the POSITIVE variant). */
SC_VECTOR_CLONES
static void sc_row_grad_pos(float *e, const float *w, int64_t n, float zneg, float cn, float cq, int in) {
#pragma omp simd
    for (int64_t k = 0; k < n; k++) {
        float q = e[k] / (e[k] + zneg);
        float f = in ? q * (1.0f - q) : 1.0f - q;
        float neg = w[k] == 0.0f ? 1.0f : 0.0f;
        e[k] = cn * neg * e[k] - cq * w[k] * f;
    }
}

/* ---- one anchor row ------------------------------------------------------------------------ */

static void sc_fill_weights(const supcon_loss_problem *p, int64_t a, float *w) {
    const int64_t nc = p->n_contrast;
    if (p->positive_kind == SUPCON_POSITIVE_LABELS) {
        const int64_t la = p->anchor_labels[a];
        const int64_t *lc = p->contrast_labels;
        for (int64_t k = 0; k < nc; k++) w[k] = lc[k] == la ? 1.0f : 0.0f;
    } else {
        const int64_t n = p->mask_n;
        const float *mrow = p->mask + (a % n) * n;
        for (int64_t base = 0; base < nc; base += n) {
            int64_t len = nc - base < n ? nc - base : n;
            memcpy(w + base, mrow, (size_t)len * sizeof(float));
        }
    }
}

/* Run pass(ptr + offset, ...) on the two ranges around the excluded entry. */
#define SC_SPLIT(self, n, CALL)                                  \
    do {                                                         \
        int64_t lo_ = (self) < 0 ? (n) : (self);                 \
        { int64_t o_ = 0, len_ = lo_; CALL; }                    \
        if ((self) >= 0) { int64_t o_ = (self) + 1, len_ = (n) - o_; CALL; } \
    } while (0)

static void sc_row(const sc_block_job *j, int64_t r, float *w) {
    const supcon_loss_problem *p = j->p;
    const int64_t nc = p->n_contrast, a = j->a0 + r;
    const int64_t self = (p->exclude_self && a < nc) ? a : -1;
    float *z = j->block + r * nc;
    sc_fill_weights(p, a, w);

    float m = -INFINITY;
    SC_SPLIT(self, nc, m = sc_row_max(z + o_, len_, m));
    sc_row_sums t = {0, 0, 0, 0, 0};
    SC_SPLIT(self, nc, sc_row_exp(z + o_, w + o_, len_, m, &t));
    if (self >= 0) z[self] = 0.0f;

    const int den = p->denominator, in = p->aggregation == SUPCON_AGGREGATE_IN;
    const double pc = t.w < 1e-6 ? 1.0 : t.w;
    const double g = j->g;
    double term = 0.0;
    int zero_row = t.w == 0.0 || (den == SUPCON_DENOMINATOR_NEGATIVES && t.zneg == 0.0);
    float ca = 0, cn = 0, cw = 0, cwe = 0;
    if (!zero_row && den != SUPCON_DENOMINATOR_POSITIVE) {
        const double zd = den == SUPCON_DENOMINATOR_ALL ? t.zall : t.zneg;
        if (!in) {
            term = (t.wz - t.w * log(zd)) / pc;
            if (den == SUPCON_DENOMINATOR_ALL)
                ca = (float)(g / pc * t.w / zd);
            else
                cn = (float)(g / pc * t.w / zd);
            cw = (float)(-g / pc);
        } else {
            term = log(t.s) - log(zd) - log(pc);
            if (den == SUPCON_DENOMINATOR_ALL)
                ca = (float)(g / zd);
            else
                cn = (float)(g / zd);
            cwe = (float)(-g / t.s);
        }
        if (j->want_grad) SC_SPLIT(self, nc, sc_row_grad_linear(z + o_, w + o_, len_, ca, cn, cw, cwe));
    } else if (!zero_row) {
        double sums[4] = {0, 0, 0, 0}; /* sum w log(e+Zn), R, Q, U */
        const float zn = (float)t.zneg;
        SC_SPLIT(self, nc, sc_row_pos(z + o_, w + o_, len_, zn, sums));
        double cq;
        if (!in) {
            term = (t.wz - sums[0]) / pc;
            cn = (float)(g / pc * sums[1]);
            cq = g / pc;
        } else {
            term = log(sums[2]) - log(pc);
            cn = (float)(g / sums[2] * sums[3]);
            cq = g / sums[2];
        }
        if (j->want_grad) SC_SPLIT(self, nc, sc_row_grad_pos(z + o_, w + o_, len_, zn, cn, (float)cq, in));
    }
    if (zero_row && j->want_grad) memset(z, 0, (size_t)nc * sizeof(float));
    if (self >= 0) z[self] = 0.0f;
    j->terms[r] = term;
}

static void sc_rows_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_block_job *j = arg;
    float *w = j->weights + (int64_t)worker * j->p->n_contrast;
    for (int64_t r = begin; r < end; r++) sc_row(j, r, w);
}

/* ---- the whole loss -------------------------------------------------------------------- */

static supcon_status sc_grow(sc_cpu *st, void **buf, size_t *cap, size_t count, size_t elem) {
    if (*cap >= count) return SUPCON_OK;
    free(*buf);
    *buf = NULL;
    *cap = 0;
    size_t bytes = ((count * elem) + 63) & ~(size_t)63;
    *buf = aligned_alloc(64, bytes);
    if (!*buf) return sc_cpu_fail(st, SUPCON_ERR_OUT_OF_MEMORY, "cannot allocate a %zu-byte loss workspace", bytes);
    *cap = count;
    return SUPCON_OK;
}

supcon_status sc_cpu_loss(void *state, const supcon_loss_problem *p, double *value) {
    sc_cpu *st = state;
    const int64_t na = p->n_anchors, nc = p->n_contrast, d = p->dim;
    const int workers = sc_pool_size(st->pool);
    int64_t rows = SC_BLOCK_FLOATS / nc;
    rows = rows < 1 ? 1 : rows > na ? na : rows;

    /* One allocation holds the block and the per-worker weight rows. */
    size_t block_floats = (size_t)(rows * nc), weight_floats = (size_t)workers * (size_t)nc;
    supcon_status s = sc_grow(st, (void **)&st->block, &st->block_cap, block_floats + weight_floats, sizeof(float));
    if (s == SUPCON_OK) s = sc_grow(st, (void **)&st->row_terms, &st->row_terms_cap, (size_t)rows, sizeof(double));
    if (s != SUPCON_OK) return s;

    const float inv_t = 1.0f / p->temperature;
    const int want_grad = p->grad_anchors || p->grad_contrast;
    if (p->grad_contrast) memset(p->grad_contrast, 0, (size_t)(nc * d) * sizeof(float));
    sc_block_job job = {
        .p = p,
        .block = st->block,
        .weights = st->block + block_floats,
        .terms = st->row_terms,
        .g = (float)((double)p->temperature / p->base_temperature / (double)na),
        .want_grad = want_grad,
    };
    const int64_t grain = nc >= 2048 ? 1 : 2048 / nc;
    double total = 0.0;
    for (int64_t a0 = 0; a0 < na; a0 += rows) {
        const int64_t t = na - a0 < rows ? na - a0 : rows;
        const float *a_rows = p->anchors + a0 * d;
        sc_sgemm(st->pool, &st->gemm, 0, 1, t, nc, d, inv_t, a_rows, d, p->contrast, d, 0.0f, st->block, nc);
        job.a0 = a0;
        sc_pool_run(st->pool, t, grain, sc_rows_task, &job);
        for (int64_t r = 0; r < t; r++) total += st->row_terms[r]; /* fixed order: same sum on any thread count */
        if (!want_grad) continue;
        if (p->grad_anchors) {
            const float beta = p->grad_anchors == p->grad_contrast ? 1.0f : 0.0f;
            sc_sgemm(st->pool, &st->gemm, 0, 0, t, d, nc, inv_t, st->block, nc, p->contrast, d, beta,
                     p->grad_anchors + a0 * d, d);
        }
        if (p->grad_contrast)
            sc_sgemm(st->pool, &st->gemm, 1, 0, nc, d, t, inv_t, st->block, nc, a_rows, d, 1.0f,
                     p->grad_contrast, d);
    }
    *value = -((double)p->temperature / p->base_temperature / (double)na) * total;
    return SUPCON_OK;
}
