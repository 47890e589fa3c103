/* Plain double-precision reference of SupConLoss and its variants (see loss_ref.h).
 * Per anchor a, over the entries k it is contrasted with: logits z_k, positive weights w_k,
 * negatives N = {k : w_k == 0}, |P| = sum w clamped (< 1e-6 -> 1). Log-probabilities lp_k
 * per denominator, combined per aggregation into m_a; loss = -(tau/tau_b) mean_a m_a.
 * The gradient is written as dm/dz_k = sum_j g_j dlp_j/dz_k with g_j = dm/dlp_j. */
#include "loss_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double loss_ref_problem(const loss_ref_config *cfg, const double *anchors, int64_t na,
                        const double *contrast, int64_t nc, int64_t d, int exclude_self,
                        const double *weight, double *grad_anchors, double *grad_contrast) {
    const double tau = cfg->temperature;
    const double scale = (cfg->temperature / cfg->base_temperature) / (double)na;
    double *z = malloc(sizeof(double) * (size_t)(nc > 0 ? nc : 1));
    double *e = malloc(sizeof(double) * (size_t)(nc > 0 ? nc : 1));
    double *lp = malloc(sizeof(double) * (size_t)(nc > 0 ? nc : 1));
    double *g = malloc(sizeof(double) * (size_t)(nc > 0 ? nc : 1));
    double *dz = malloc(sizeof(double) * (size_t)(nc > 0 ? nc : 1));
    if (!z || !e || !lp || !g || !dz) {
        free(z), free(e), free(lp), free(g), free(dz);
        return NAN;
    }
    if (grad_anchors) memset(grad_anchors, 0, sizeof(double) * (size_t)(na * d));
    if (grad_contrast) memset(grad_contrast, 0, sizeof(double) * (size_t)(nc * d));

    double msum = 0.0;
    for (int64_t a = 0; a < na; a++) {
        const double *w = weight + a * nc;
#define IN_K(k) (!(exclude_self && (k) == a))
        double wsum = 0.0, zmax = -INFINITY;
        int has_neg = 0;
        for (int64_t k = 0; k < nc; k++) {
            if (!IN_K(k)) continue;
            double s = 0.0;
            for (int64_t j = 0; j < d; j++) s += anchors[a * d + j] * contrast[k * d + j];
            z[k] = s / tau;
            if (z[k] > zmax) zmax = z[k];
            wsum += w[k];
            if (w[k] == 0.0) has_neg = 1;
        }
        if (wsum == 0.0) continue; /* no positive: m_a = 0, no gradient */
        if (cfg->denominator == REF_DEN_NEGATIVES && !has_neg) continue;
        const double pcount = wsum < 1e-6 ? 1.0 : wsum;

        double s_all = 0.0, s_neg = 0.0;
        for (int64_t k = 0; k < nc; k++) {
            if (!IN_K(k)) continue;
            e[k] = exp(z[k] - zmax);
            s_all += e[k];
            if (w[k] == 0.0) s_neg += e[k];
        }
        /* log-probabilities of the positives (shifted logits: the shift cancels) */
        for (int64_t k = 0; k < nc; k++) {
            if (!IN_K(k) || w[k] == 0.0) continue;
            double zk = z[k] - zmax;
            switch (cfg->denominator) {
            case REF_DEN_ALL: lp[k] = zk - log(s_all); break;
            case REF_DEN_POSITIVE: lp[k] = zk - log(e[k] + s_neg); break;
            default: lp[k] = zk - log(s_neg); break;
            }
        }
        /* m_a and g_k = dm_a / dlp_k */
        double m = 0.0, gsum = 0.0;
        if (cfg->aggregation == REF_AGG_OUT) {
            for (int64_t k = 0; k < nc; k++) {
                if (!IN_K(k) || w[k] == 0.0) continue;
                m += w[k] * lp[k];
                g[k] = w[k] / pcount;
            }
            m /= pcount;
        } else {
            double lmax = -INFINITY;
            for (int64_t k = 0; k < nc; k++) {
                if (!IN_K(k) || w[k] == 0.0) continue;
                double t = log(w[k]) + lp[k];
                if (t > lmax) lmax = t;
            }
            double q = 0.0;
            for (int64_t k = 0; k < nc; k++) {
                if (!IN_K(k) || w[k] == 0.0) continue;
                g[k] = exp(log(w[k]) + lp[k] - lmax);
                q += g[k];
            }
            for (int64_t k = 0; k < nc; k++)
                if (IN_K(k) && w[k] != 0.0) g[k] /= q;
            m = lmax + log(q) - log(pcount);
        }
        msum += m;
        if (!grad_anchors && !grad_contrast) continue;

        for (int64_t k = 0; k < nc; k++)
            if (IN_K(k) && w[k] != 0.0) gsum += g[k];
        /* sum_j g_j / (e_j + S_N), for the 'positive' denominator */
        double gpos = 0.0;
        if (cfg->denominator == REF_DEN_POSITIVE)
            for (int64_t k = 0; k < nc; k++)
                if (IN_K(k) && w[k] != 0.0) gpos += g[k] / (e[k] + s_neg);

        for (int64_t k = 0; k < nc; k++) {
            if (!IN_K(k)) {
                dz[k] = 0.0;
                continue;
            }
            const int pos = w[k] != 0.0;
            double dm;
            switch (cfg->denominator) {
            case REF_DEN_ALL: dm = (pos ? g[k] : 0.0) - e[k] / s_all * gsum; break;
            case REF_DEN_POSITIVE:
                dm = pos ? g[k] * (1.0 - e[k] / (e[k] + s_neg)) : -e[k] * gpos;
                break;
            default: dm = pos ? g[k] : -e[k] / s_neg * gsum; break;
            }
            dz[k] = -scale * dm; /* dL/dz_k */
        }
        for (int64_t k = 0; k < nc; k++) {
            if (dz[k] == 0.0) continue;
            for (int64_t j = 0; j < d; j++) {
                if (grad_anchors) grad_anchors[a * d + j] += dz[k] * contrast[k * d + j] / tau;
                if (grad_contrast) grad_contrast[k * d + j] += dz[k] * anchors[a * d + j] / tau;
            }
        }
#undef IN_K
    }
    free(z), free(e), free(lp), free(g), free(dz);
    return -(cfg->temperature / cfg->base_temperature) * msum / (double)na;
}

double loss_ref_batch(const loss_ref_config *cfg, const double *features, int64_t b,
                      int64_t v, int64_t d, const int64_t *labels, const double *mask,
                      double *grad) {
    const int64_t nc = b * v;
    const int64_t na = cfg->contrast_mode == REF_MODE_ONE ? b : nc;
    double *c = malloc(sizeof(double) * (size_t)(nc * d));
    double *w = calloc((size_t)(na * nc) + 1, sizeof(double));
    double *ga = grad ? malloc(sizeof(double) * (size_t)(na * d)) : NULL;
    double *gc = grad ? malloc(sizeof(double) * (size_t)(nc * d)) : NULL;
    if (!c || !w || (grad && (!ga || !gc))) {
        free(c), free(w), free(ga), free(gc);
        return NAN;
    }
    /* contrast row v*b + i = view v of sample i */
    for (int64_t i = 0; i < b; i++)
        for (int64_t vv = 0; vv < v; vv++)
            memcpy(c + (vv * b + i) * d, features + (i * v + vv) * d, sizeof(double) * (size_t)d);
    for (int64_t a = 0; a < na; a++)
        for (int64_t k = 0; k < nc; k++) {
            int64_t i = a % b, j = k % b;
            double wt;
            if (labels)
                wt = labels[i] == labels[j] ? 1.0 : 0.0;
            else if (mask)
                wt = mask[i * b + j];
            else
                wt = i == j ? 1.0 : 0.0;
            w[a * nc + k] = wt;
        }
    /* anchors are the first na rows of the contrast set */
    double loss = loss_ref_problem(cfg, c, na, c, nc, d, 1, w, ga, gc);
    if (grad) {
        for (int64_t r = 0; r < na * d; r++) gc[r] += ga[r];
        for (int64_t i = 0; i < b; i++)
            for (int64_t vv = 0; vv < v; vv++)
                memcpy(grad + (i * v + vv) * d, gc + (vv * b + i) * d, sizeof(double) * (size_t)d);
    }
    free(c), free(w), free(ga), free(gc);
    return loss;
}

double loss_ref_pair(const loss_ref_config *cfg, const double *anchors,
                     const int64_t *anchor_labels, int64_t na, const double *contrast,
                     const int64_t *contrast_labels, int64_t nc, int64_t d, int same,
                     double *grad_anchors, double *grad_contrast) {
    double *w = calloc((size_t)(na * nc) + 1, sizeof(double));
    const int want = grad_anchors || grad_contrast;
    double *ga = want ? malloc(sizeof(double) * (size_t)(na * d)) : NULL;
    double *gc = want ? malloc(sizeof(double) * (size_t)(nc * d)) : NULL;
    if (!w || (want && (!ga || !gc))) {
        free(w), free(ga), free(gc);
        return NAN;
    }
    for (int64_t a = 0; a < na; a++)
        for (int64_t k = 0; k < nc; k++)
            w[a * nc + k] = anchor_labels[a] == contrast_labels[k] ? 1.0 : 0.0;
    double loss = loss_ref_problem(cfg, anchors, na, contrast, nc, d, same, w, ga, gc);
    if (want) {
        if (same)
            for (int64_t r = 0; r < na * d; r++) ga[r] = gc[r] = ga[r] + gc[r];
        if (grad_anchors) memcpy(grad_anchors, ga, sizeof(double) * (size_t)(na * d));
        if (grad_contrast) memcpy(grad_contrast, gc, sizeof(double) * (size_t)(nc * d));
    }
    free(w), free(ga), free(gc);
    return loss;
}
