/* SupConLoss on the CPU, tiled: blocks of anchor rows against the whole contrast set.
 * Per block: logits by one GEMM, then each row's statistics, loss term and dL/dz in place
 * (worker pool), then dA and dC by two GEMMs. Three GEMMs of N_A x N_C x D in all; memory is
 * one block, never the whole N_A x N_C matrix.
 *
 * Per anchor a (self excluded), weights w_k, negatives w_k == 0, W = sum w, Pc = W clamped
 * to 1 below 1e-6 (the reference's guard), g = (tau/tau_b)/N_A, and the log-sums
 *   Zneg = sum_neg e^z,  Zpos = sum_pos e^z,  Zall = Zneg + Zpos,  S = sum w e^z,
 * each kept in the log domain from its own group's maximum, so that no group underflows
 * when the logits of an anchor span more than float's exponent range (tau = 0.01):
 *   ALL/OUT  term = (sum w z - W log Zall)/Pc           dz = g/Pc (W e^z/Zall - w)
 *   NEG/OUT  term = (sum w z - W log Zneg)/Pc           dz = g/Pc (W [neg] e^z/Zneg - w)
 *   ALL/IN   term = log S - log Zall - log Pc           dz = g (e^z/Zall - w e^z/S)
 *   NEG/IN   term = log S - log Zneg - log Pc           dz = g ([neg] e^z/Zneg - w e^z/S)
 *   POS/OUT  term = sum w (z - l)/Pc,  l_k = log(e^z_k + Zneg), q = e^(z-l),
 *            dz = g/Pc ([neg] e^z R - w (1-q)),  R = sum w e^-l
 *   POS/IN   term = log Q - log Pc,  Q = sum w q,
 *            dz = g ([neg] e^z U/Q - w q (1-q)/Q),  U = sum w q e^-l
 * The loss is -g sum term. Anchors with W == 0 (no positive), or without negatives in the
 * NEG variant, give 0 and no gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "gemm.h"
#include "supcon/loss.h"
#include "vmath.h"

/* Logits of one block stay under this many floats (16 MB) unless that would leave fewer
 * than SC_MIN_ROWS anchors per block (then 512 x N_C: 128 MB at N_C = 65536). */
#define SC_BLOCK_FLOATS ((int64_t)1 << 22)
#define SC_MIN_ROWS 512

#define SC_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

typedef struct sc_row_sums {
    double zneg, zpos, s, w, wz, nneg; /* zneg, zpos, s relative to their group's max */
} sc_row_sums;

typedef struct sc_block_job {
    const supcon_loss_problem *p;
    float *block;   /* (rows, nc): logits in, dz out */
    float *scratch; /* (workers, 2, nc): weights and exponentials of one row */
    double *terms;  /* (rows) */
    int64_t a0;
    double g;
    int want_grad;
} sc_block_job;

/* ---- vectorised passes over [0, n) of one row -------------------------------------------- */

/* Maxima of the logits over negatives and over positives. */
SC_VECTOR_CLONES
static void sc_row_max(const float *z, const float *w, int64_t n, float *mneg, float *mpos) {
    float a = *mneg, b = *mpos;
#pragma omp simd reduction(max : a, b)
    for (int64_t k = 0; k < n; k++) {
        float zn = w[k] == 0.0f ? z[k] : -INFINITY, zp = w[k] == 0.0f ? -INFINITY : z[k];
        a = zn > a ? zn : a;
        b = zp > b ? zp : b;
    }
    *mneg = a;
    *mpos = b;
}

/* e = exp(z - max of its group). Float partial sums over short chunks (vector lanes), added
 * into doubles, keep the error near float epsilon at any row length without paying for
 * double arithmetic in the inner loop. */
#define SC_CHUNK 128
SC_VECTOR_CLONES
static void sc_row_exp(const float *z, const float *w, float *e, int64_t n, float mneg, float mpos,
                       sc_row_sums *acc) {
    for (int64_t c0 = 0; c0 < n; c0 += SC_CHUNK) {
        const int64_t c1 = n - c0 < SC_CHUNK ? n : c0 + SC_CHUNK;
        float zn = 0, zp = 0, s = 0, ws = 0, wz = 0, nn = 0;
#pragma omp simd reduction(+ : zn, zp, s, ws, wz, nn)
        for (int64_t k = c0; k < c1; k++) {
            const int neg = w[k] == 0.0f;
            const float ek = sc_expf(z[k] - (neg ? mneg : mpos));
            e[k] = ek;
            zn += neg ? ek : 0.0f;
            zp += neg ? 0.0f : ek;
            nn += neg ? 1.0f : 0.0f;
            s += w[k] * ek;
            ws += w[k];
            wz += neg ? 0.0f : w[k] * (z[k] - mpos);
        }
        acc->zneg += zn;
        acc->zpos += zp;
        acc->nneg += nn;
        acc->s += s;
        acc->w += ws;
        acc->wz += wz;
    }
}

/* dz = e ([neg] cn + [pos] cp) + w (cw + cwe e). */
SC_VECTOR_CLONES
static void sc_row_grad(float *dz, const float *e, const float *w, int64_t n, float cn, float cp, float cw,
                        float cwe) {
#pragma omp simd
    for (int64_t k = 0; k < n; k++) {
        const float c = w[k] == 0.0f ? cn : cp;
        dz[k] = e[k] * c + w[k] * (cw + cwe * e[k]);
    }
}

/* POSITIVE denominator, over the positives (few: scalar, double), l_k = log(e^z_k + Zneg).
 * sums: [0] sum w (z - l), [1] R = sum w e^(mneg - l), [2] log Q, [3] U/Q; Q and U are kept
 * relative to their running maximum, since every q can be far below 1e-38. For OUT, e[k]
 * becomes 1 - q_k; for IN a second pass writes q_k (1 - q_k) / Q. */
static double sc_log_one_plus(double zk, double lzneg) {
    const double hi = zk > lzneg ? zk : lzneg, lo = zk > lzneg ? lzneg : zk;
    return hi + log1p(exp(lo - hi));
}

static void sc_row_pos(const float *z, const float *w, float *e, int64_t n, double lzneg, double mneg,
                       double out[2], double *qmax, double *qsum, double *usum) {
    for (int64_t k = 0; k < n; k++) {
        if (w[k] == 0.0f) continue;
        const double zk = z[k], l = sc_log_one_plus(zk, lzneg), lq = zk - l;
        const double inv = exp(mneg - l);
        out[0] += w[k] * lq;
        out[1] += w[k] * inv;
        if (lq > *qmax) {
            const double scale = exp(*qmax - lq);
            *qsum *= scale;
            *usum *= scale;
            *qmax = lq;
        }
        const double qr = w[k] * exp(lq - *qmax);
        *qsum += qr;
        *usum += qr * inv;
        e[k] = (float)exp(lzneg - l); /* 1 - q */
    }
}

static void sc_row_pos_in(const float *z, const float *w, float *e, int64_t n, double lzneg, double log_q) {
    for (int64_t k = 0; k < n; k++) {
        if (w[k] == 0.0f) continue;
        const double l = sc_log_one_plus(z[k], lzneg);
        e[k] = (float)(exp(z[k] - l - log_q) * exp(lzneg - l));
    }
}

/* ---- one anchor row ------------------------------------------------------------------------ */

SC_VECTOR_CLONES
static void sc_fill_weights(const supcon_loss_problem *p, int64_t a, float *w) {
    const int64_t nc = p->n_contrast;
    if (p->positive_kind == SUPCON_POSITIVE_LABELS) {
        const int64_t la = p->anchor_labels[a];
        const int64_t *lc = p->contrast_labels;
#pragma omp simd
        for (int64_t k = 0; k < nc; k++) w[k] = (float)(lc[k] == la);
    } else {
        const int64_t n = p->mask_n;
        const float *mrow = p->mask + (a % n) * n;
        for (int64_t base = 0; base < nc; base += n) {
            int64_t len = nc - base < n ? nc - base : n;
            memcpy(w + base, mrow, (size_t)len * sizeof(float));
        }
    }
}

/* Run CALL with o_ (offset) and len_ on the two ranges around the excluded entry. */
#define SC_SPLIT(self, n, CALL)                                  \
    do {                                                         \
        int64_t lo_ = (self) < 0 ? (n) : (self);                 \
        { int64_t o_ = 0, len_ = lo_; CALL; }                    \
        if ((self) >= 0) { int64_t o_ = (self) + 1, len_ = (n) - o_; CALL; } \
    } while (0)

static double sc_logaddexp(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static void sc_row(const sc_block_job *j, int64_t r, float *w, float *e) {
    const supcon_loss_problem *p = j->p;
    const int64_t nc = p->n_contrast, a = j->a0 + r;
    const int64_t self = (p->exclude_self && a < nc) ? a : -1;
    float *z = j->block + r * nc;
    sc_fill_weights(p, a, w);

    float mneg = -INFINITY, mpos = -INFINITY;
    SC_SPLIT(self, nc, sc_row_max(z + o_, w + o_, len_, &mneg, &mpos));
    sc_row_sums t = {0, 0, 0, 0, 0, 0};
    SC_SPLIT(self, nc, sc_row_exp(z + o_, w + o_, e + o_, len_, mneg, mpos, &t));

    const int den = p->denominator, in = p->aggregation == SUPCON_AGGREGATE_IN;
    const double g = j->g, pc = t.w < 1e-6 ? 1.0 : t.w;
    const int zero_row = t.w == 0.0 || (den == SUPCON_DENOMINATOR_NEGATIVES && t.nneg == 0.0);
    const double lzneg = t.nneg > 0 ? mneg + log(t.zneg) : -INFINITY;
    const double lzall = sc_logaddexp(lzneg, mpos + log(t.zpos));
    const double ls = mpos + log(t.s);
    double term = 0.0, cn = 0, cp = 0, cw = 0, cwe = 0;
    if (zero_row) {
        /* contributes nothing */
    } else if (den != SUPCON_DENOMINATOR_POSITIVE) {
        const double lz = den == SUPCON_DENOMINATOR_ALL ? lzall : lzneg;
        const double to_neg = exp(mneg - lz), to_pos = den == SUPCON_DENOMINATOR_ALL ? exp(mpos - lz) : 0.0;
        if (!in) {
            term = (t.wz + t.w * (mpos - lz)) / pc;
            cn = g / pc * t.w * to_neg;
            cp = g / pc * t.w * to_pos;
            cw = -g / pc;
        } else {
            term = ls - lz - log(pc);
            cn = g * to_neg;
            cp = g * to_pos;
            cwe = -g * exp(mpos - ls);
        }
    } else {
        double sums[2] = {0, 0}, qmax = -INFINITY, qsum = 0, usum = 0;
        SC_SPLIT(self, nc, sc_row_pos(z + o_, w + o_, e + o_, len_, lzneg, mneg, sums, &qmax, &qsum, &usum));
        if (!in) {
            term = sums[0] / pc;
            cn = g / pc * sums[1];
            cwe = -g / pc; /* e holds 1 - q for the positives */
        } else {
            const double log_q = qmax + log(qsum);
            term = log_q - log(pc);
            cn = g * usum / qsum;
            cwe = -g; /* e holds q (1 - q) / Q for the positives */
            if (j->want_grad) SC_SPLIT(self, nc, sc_row_pos_in(z + o_, w + o_, e + o_, len_, lzneg, log_q));
        }
    }
    j->terms[r] = term;
    if (!j->want_grad) return;
    if (zero_row) {
        memset(z, 0, (size_t)nc * sizeof(float));
        return;
    }
    SC_SPLIT(self, nc, sc_row_grad(z + o_, e + o_, w + o_, len_, (float)cn, (float)cp, (float)cw, (float)cwe));
    if (self >= 0) z[self] = 0.0f;
}

static void sc_rows_task(void *arg, int64_t begin, int64_t end, int worker) {
    const sc_block_job *j = arg;
    float *w = j->scratch + (int64_t)worker * 2 * j->p->n_contrast, *e = w + j->p->n_contrast;
    for (int64_t r = begin; r < end; r++) sc_row(j, r, w, e);
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
    /* At least SC_MIN_ROWS anchors per block: every block repacks the contrast set for its
     * GEMMs and rewrites all of dC, so thin blocks at large N_C cost N_C x D traffic each. */
    int64_t rows = SC_BLOCK_FLOATS / nc;
    rows = rows < SC_MIN_ROWS ? SC_MIN_ROWS : rows;
    rows = rows > na ? na : rows;

    /* One allocation holds the block and the per-worker weight and exponential rows. */
    size_t block_floats = (size_t)(rows * nc), weight_floats = (size_t)workers * 2 * (size_t)nc;
    supcon_status s = sc_grow(st, (void **)&st->block, &st->block_cap, block_floats + weight_floats, sizeof(float));
    if (s == SUPCON_OK) s = sc_grow(st, (void **)&st->row_terms, &st->row_terms_cap, (size_t)rows, sizeof(double));
    if (s != SUPCON_OK) return s;

    const float inv_t = 1.0f / p->temperature;
    const int want_grad = p->grad_anchors || p->grad_contrast;
    if (p->grad_contrast) memset(p->grad_contrast, 0, (size_t)(nc * d) * sizeof(float));
    sc_block_job job = {
        .p = p,
        .block = st->block,
        .scratch = st->block + block_floats,
        .terms = st->row_terms,
        .g = (double)p->temperature / p->base_temperature / (double)na,
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
