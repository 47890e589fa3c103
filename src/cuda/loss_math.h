/* The per-anchor arithmetic of the loss, as __host__ __device__ functions: the row statistics
 * (stable log-sum-exps), the anchor's term m_a and d loss / d z for one entry. loss.cu runs
 * them in a block per row; being host-callable they can be checked on a machine with no GPU.
 * Leaves out the GEMMs and the blocking (loss.cu). */
#ifndef SUPCON_CUDA_LOSS_MATH_H
#define SUPCON_CUDA_LOSS_MATH_H

#include <math.h>

#include "supcon/loss.h"

#ifdef __CUDACC__
#define SC_HD __host__ __device__ __forceinline__
#else
#define SC_HD static inline
#endif

/* Derivation. One anchor a; K = the columns k it is contrasted with (k != a when excluded);
 * z_k = A_a . C_k / tau; weights w_k >= 0; P = {k: w_k > 0}, N = {k: w_k == 0};
 * W = sum w_k, |P| = W clamped to 1 when W < 1e-6; c = (tau / tau_b) / N_A; the anchor adds
 * -c m_a to the loss, so d loss / d z_k = -c d m_a / d z_k. Notation:
 *   L_all = log sum_K e^z, L_neg = log sum_N e^z, L_pos = log sum_P w e^z,
 *   s_k = e^(z_k - L_all) (softmax over K), r_k = e^(z_k - L_neg) (softmax over N),
 *   q_k = w_k e^(z_k - L_pos) (weighted softmax over P).
 *
 * ALL, lp_k = z_k - L_all:
 *   OUT  m = (sum w z - W L_all) / |P|       dm/dz_k = (w_k - W s_k) / |P|
 *        => g_k = c (W s_k - w_k) / |P|.
 *   IN   m = log sum_P w e^(lp) - log|P| = L_pos - L_all - log|P|
 *        dm/dz_k = q_k - s_k                 => g_k = c (s_k - q_k).
 * NEGATIVES, lp_k = z_k - L_neg (no negatives: m = 0, g = 0):
 *   OUT  m = (sum w z - W L_neg) / |P|
 *        positive k: dm/dz_k = w_k / |P|; negative j: dm/dz_j = -W r_j / |P|
 *        => g_k = -c w_k / |P|,  g_j = c W r_j / |P|.
 *   IN   m = L_pos - L_neg - log|P|          => g_k = -c q_k,  g_j = c r_j.
 * POSITIVE, lp_k = z_k - log(e^z_k + E), E = sum_N e^z = e^L_neg. Then e^lp_k = sigma_k =
 *   sigmoid(z_k - L_neg), lp_k = -softplus(L_neg - z_k), 1 - sigma_k = sigmoid(L_neg - z_k);
 *   d lp_k / d z_k = 1 - sigma_k, d lp_k / d z_j = -(1 - sigma_k) r_j for j in N, and a
 *   positive k never depends on another positive. With no negatives lp = 0 and g = 0.
 *   OUT  m = sum_P w lp / |P|. With G = sum_P w (1 - sigma):
 *        g_k = -c w_k (1 - sigma_k) / |P|,  g_j = c r_j G / |P|.
 *   IN   m = log U - log|P|, U = sum_P w sigma. d sigma_k / d z_k = sigma_k (1 - sigma_k),
 *        d sigma_k / d z_j = -sigma_k (1 - sigma_k) r_j. With u_k = w_k sigma_k / U:
 *        g_k = -c u_k (1 - sigma_k),  g_j = c r_j sum_P u (1 - sigma).
 *        log U and the u_k are formed in the log domain (log w + lp), so U may be far
 *        below the float range (positives much further than the negatives) without harm.
 * W == 0: m = 0 and no gradient, for every variant (the reference's guard against NaN).
 * The excluded entry k = a gets g = 0. Every log-sum-exp subtracts its own maximum. */

/* Running log-sum-exp: sum of w e^(x - m) in s with m the largest x seen. */
struct sc_lse {
    float m;
    double s;
};

SC_HD sc_lse sc_lse_empty(void)
{
    sc_lse l;
    l.m = -INFINITY;
    l.s = 0.0;
    return l;
}

SC_HD void sc_lse_add(sc_lse *l, float x, double w)
{
    if (x > l->m) {
        l->s = l->s * (double)expf(l->m - x) + w; /* m = -inf at first: the factor is 0 */
        l->m = x;
    } else {
        l->s += w * (double)expf(x - l->m);
    }
}

/* Commutative bit for bit, so that the two lanes of a shuffle exchange agree. */
SC_HD sc_lse sc_lse_merge(sc_lse a, sc_lse b)
{
    if (a.m == -INFINITY)
        return b;
    if (b.m == -INFINITY)
        return a;
    if (a.m >= b.m) {
        a.s += b.s * (double)expf(b.m - a.m);
        return a;
    }
    b.s += a.s * (double)expf(a.m - b.m);
    return b;
}

SC_HD double sc_lse_value(sc_lse l)
{
    return l.m == -INFINITY ? -INFINITY : (double)l.m + log(l.s);
}

/* First pass over a row. */
struct sc_row_stats {
    sc_lse all, neg, pos; /* over K, over N, over P weighted by w */
    double w, wz;         /* sum w, sum w z */
};

SC_HD sc_row_stats sc_row_stats_empty(void)
{
    sc_row_stats r;
    r.all = sc_lse_empty();
    r.neg = sc_lse_empty();
    r.pos = sc_lse_empty();
    r.w = 0.0;
    r.wz = 0.0;
    return r;
}

SC_HD void sc_row_stats_add(sc_row_stats *r, float z, float w)
{
    sc_lse_add(&r->all, z, 1.0);
    if (w == 0.0f) {
        sc_lse_add(&r->neg, z, 1.0);
    } else {
        sc_lse_add(&r->pos, z, (double)w);
        r->w += (double)w;
        r->wz += (double)w * (double)z;
    }
}

SC_HD sc_row_stats sc_row_stats_merge(sc_row_stats a, sc_row_stats b)
{
    sc_row_stats r;
    r.all = sc_lse_merge(a.all, b.all);
    r.neg = sc_lse_merge(a.neg, b.neg);
    r.pos = sc_lse_merge(a.pos, b.pos);
    r.w = a.w + b.w;
    r.wz = a.wz + b.wz;
    return r;
}

SC_HD double sc_softplus(double x)
{
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* Second pass, POSITIVE denominator only: over P, given L_neg. */
struct sc_pos_stats {
    double wlp; /* sum w lp                                   (OUT) */
    double wom; /* sum w (1 - sigma)                          (OUT) */
    double um;  /* running max of y = log w + lp              (IN)  */
    double us;  /* sum e^(y - um)                             (IN)  */
    double uv;  /* sum e^(y - um) (1 - sigma)                 (IN)  */
};

SC_HD sc_pos_stats sc_pos_stats_empty(void)
{
    sc_pos_stats p;
    p.wlp = 0.0;
    p.wom = 0.0;
    p.um = -INFINITY;
    p.us = 0.0;
    p.uv = 0.0;
    return p;
}

SC_HD void sc_pos_stats_add(sc_pos_stats *p, float z, float w, double l_neg)
{
    double x = l_neg - (double)z; /* -inf when there are no negatives */
    double lp = -sc_softplus(x);
    double om = exp(-sc_softplus(-x));
    double y = log((double)w) + lp;
    p->wlp += (double)w * lp;
    p->wom += (double)w * om;
    if (y > p->um) {
        double f = exp(p->um - y);
        p->us = p->us * f + 1.0;
        p->uv = p->uv * f + om;
        p->um = y;
    } else {
        double e = exp(y - p->um);
        p->us += e;
        p->uv += e * om;
    }
}

SC_HD sc_pos_stats sc_pos_stats_merge(sc_pos_stats a, sc_pos_stats b)
{
    sc_pos_stats r;
    r.wlp = a.wlp + b.wlp;
    r.wom = a.wom + b.wom;
    if (a.um == -INFINITY) {
        r.um = b.um;
        r.us = b.us;
        r.uv = b.uv;
    } else if (b.um == -INFINITY) {
        r.um = a.um;
        r.us = a.us;
        r.uv = a.uv;
    } else {
        double m = a.um >= b.um ? a.um : b.um;
        double fa = exp(a.um - m), fb = exp(b.um - m);
        r.um = m;
        r.us = a.us * fa + b.us * fb;
        r.uv = a.uv * fa + b.uv * fb;
    }
    return r;
}

/* Everything the per-entry gradient needs, and the anchor's term. */
struct sc_row_coef {
    double m;     /* m_a (the loss adds -c m_a) */
    int zero;     /* 1: no contribution, the gradient row is 0 */
    int den, agg;
    double l_all, l_neg, l_pos, log_u;
    double c_all; /* coefficient of s_k (ALL) */
    double c_neg; /* coefficient of r_j (negatives) */
    double c_w;   /* coefficient of w_k, or of the positive's own factor */
};

SC_HD int sc_row_needs_pos_pass(int den)
{
    return den == SUPCON_DENOMINATOR_POSITIVE;
}

SC_HD double sc_row_l_neg(const sc_row_stats *r)
{
    return sc_lse_value(r->neg);
}

/* c = (tau / tau_b) / N_A. ps is read for the POSITIVE denominator only. */
SC_HD sc_row_coef sc_row_finish(const sc_row_stats *r, const sc_pos_stats *ps, int den, int agg,
                                double c)
{
    sc_row_coef k;
    k.den = den;
    k.agg = agg;
    k.l_all = sc_lse_value(r->all);
    k.l_neg = sc_lse_value(r->neg);
    k.l_pos = sc_lse_value(r->pos);
    k.log_u = 0.0;
    k.c_all = k.c_neg = k.c_w = 0.0;
    k.m = 0.0;
    k.zero = 1;
    double W = r->w;
    if (!(W > 0.0))
        return k;
    int has_neg = r->neg.m != -INFINITY;
    double P = W < 1e-6 ? 1.0 : W;
    double logP = log(P);
    if (den == SUPCON_DENOMINATOR_ALL) {
        k.zero = 0;
        if (agg == SUPCON_AGGREGATE_OUT) {
            k.m = (r->wz - W * k.l_all) / P;
            k.c_all = c * W / P;
            k.c_w = -c / P;
        } else {
            k.m = k.l_pos - k.l_all - logP;
            k.c_all = c;
            k.c_w = -c;
        }
    } else if (den == SUPCON_DENOMINATOR_NEGATIVES) {
        if (!has_neg)
            return k;
        k.zero = 0;
        if (agg == SUPCON_AGGREGATE_OUT) {
            k.m = (r->wz - W * k.l_neg) / P;
            k.c_neg = c * W / P;
            k.c_w = -c / P;
        } else {
            k.m = k.l_pos - k.l_neg - logP;
            k.c_neg = c;
            k.c_w = -c;
        }
    } else { /* POSITIVE */
        if (agg == SUPCON_AGGREGATE_OUT) {
            k.m = ps->wlp / P;
            k.c_neg = c * ps->wom / P;
            k.c_w = -c / P;
        } else {
            k.log_u = ps->um + log(ps->us);
            k.m = k.log_u - logP;
            k.c_neg = c * (ps->uv / ps->us);
            k.c_w = -c;
        }
        /* Without negatives every sigma is 1: m as computed, but no gradient. */
        k.zero = !has_neg;
    }
    return k;
}

/* d loss / d z for one entry k of K with weight w (the excluded entry is 0, by the caller). */
SC_HD float sc_row_grad(const sc_row_coef *k, float z, float w)
{
    if (k->zero)
        return 0.0f;
    if (k->den == SUPCON_DENOMINATOR_ALL) {
        if (w == 0.0f)
            return (float)k->c_all * expf((float)((double)z - k->l_all));
        /* A positive's two parts nearly cancel once it dominates its row (s_k -> w_k / W):
         * form them in double. Positives are few, so the double exp costs little. */
        double g = k->c_all * exp((double)z - k->l_all);
        if (k->agg == SUPCON_AGGREGATE_OUT)
            g += k->c_w * (double)w;
        else
            g += k->c_w * (double)w * exp((double)z - k->l_pos);
        return (float)g;
    }
    if (w == 0.0f)
        return (float)k->c_neg * expf((float)((double)z - k->l_neg));
    if (k->den == SUPCON_DENOMINATOR_NEGATIVES) {
        if (k->agg == SUPCON_AGGREGATE_OUT)
            return (float)k->c_w * w;
        return (float)k->c_w * w * expf((float)((double)z - k->l_pos));
    }
    /* POSITIVE: the positive's own factor needs sigma_k. */
    double x = k->l_neg - (double)z;
    double om = exp(-sc_softplus(-x));
    if (k->agg == SUPCON_AGGREGATE_OUT)
        return (float)(k->c_w * (double)w * om);
    double lp = -sc_softplus(x);
    return (float)(k->c_w * exp(log((double)w) + lp - k->log_u) * om);
}

#endif /* SUPCON_CUDA_LOSS_MATH_H */
