/* PCA for t-SNE's preprocessing: the covariance in double (dsyrk over row blocks), its top
 * eigenpairs by Householder tridiagonalisation, bisection and inverse iteration — what
 * LAPACK's dsyevx does, written small because LAPACK is not linked. Only the `count`
 * wanted eigenvectors are ever formed, so the cost is ~4/3 m^3 for the reduction. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"
#include "error.h"

/* Eigenvalues of the tridiagonal (diag, off) smaller than x: a Sturm sequence count. */
static size_t sc_sturm_count(const double *diag, const double *off, size_t m, double x, double pivmin) {
    size_t count = 0;
    double q = diag[0] - x;
    if (fabs(q) < pivmin) q = -pivmin;
    if (q < 0) count++;
    for (size_t i = 1; i < m; i++) {
        q = diag[i] - x - off[i - 1] * off[i - 1] / q;
        if (fabs(q) < pivmin) q = -pivmin;
        if (q < 0) count++;
    }
    return count;
}

/* Solve (T - lambda I) x = b in place, T tridiagonal, by the LU factors with partial
 * pivoting made in sc_tri_factor: u0/u1/u2 the rows of U, mult/swap the elimination. */
typedef struct {
    double *u0, *u1, *u2, *mult;
    unsigned char *swap;
} sc_tri_lu;

static void sc_tri_factor(const double *diag, const double *off, size_t m, double lambda, double tiny,
                          sc_tri_lu *f) {
    double a0 = diag[0] - lambda, a1 = m > 1 ? off[0] : 0.0, a2 = 0.0; /* current pivot row */
    for (size_t j = 0; j + 1 < m; j++) {
        double l = off[j], b1 = diag[j + 1] - lambda, b2 = j + 2 < m ? off[j + 1] : 0.0;
        if (fabs(a0) >= fabs(l)) {
            if (a0 == 0.0) a0 = tiny;
            double mu = l / a0;
            f->u0[j] = a0, f->u1[j] = a1, f->u2[j] = a2;
            f->mult[j] = mu, f->swap[j] = 0;
            a0 = b1 - mu * a1, a1 = b2 - mu * a2, a2 = 0.0;
        } else {
            double mu = a0 / l;
            f->u0[j] = l, f->u1[j] = b1, f->u2[j] = b2;
            f->mult[j] = mu, f->swap[j] = 1;
            double n0 = a1 - mu * b1, n1 = a2 - mu * b2;
            a0 = n0, a1 = n1, a2 = 0.0;
        }
    }
    if (a0 == 0.0 || fabs(a0) < tiny) a0 = a0 < 0 ? -tiny : tiny;
    f->u0[m - 1] = a0, f->u1[m - 1] = 0.0, f->u2[m - 1] = 0.0;
    for (size_t j = 0; j < m; j++)
        if (fabs(f->u0[j]) < tiny) f->u0[j] = f->u0[j] < 0 ? -tiny : tiny;
}

static void sc_tri_solve(const sc_tri_lu *f, size_t m, double *x) {
    for (size_t j = 0; j + 1 < m; j++) {
        if (f->swap[j]) {
            double t = x[j];
            x[j] = x[j + 1];
            x[j + 1] = t - f->mult[j] * x[j];
        } else {
            x[j + 1] -= f->mult[j] * x[j];
        }
    }
    for (size_t jj = m; jj-- > 0;) {
        double s = x[jj];
        if (jj + 1 < m) s -= f->u1[jj] * x[jj + 1];
        if (jj + 2 < m) s -= f->u2[jj] * x[jj + 2];
        x[jj] = s / f->u0[jj];
    }
}

static double sc_norm(const double *v, size_t m) {
    double s = 0.0;
    for (size_t i = 0; i < m; i++) s += v[i] * v[i];
    return sqrt(s);
}

int sc_an_sym_eigen_top(double *a, size_t m, size_t count, double *values, double *vectors) {
    if (count == 0 || m == 0) return 0;
    if (count > m) count = m;
    double *diag = malloc(m * sizeof *diag), *off = malloc(m * sizeof *off);
    double *v = malloc(m * sizeof *v), *p = malloc(m * sizeof *p);
    unsigned char *reflected = calloc(m, 1);
    sc_tri_lu f = {malloc(m * sizeof(double)), malloc(m * sizeof(double)), malloc(m * sizeof(double)),
                   malloc(m * sizeof(double)), malloc(m)};
    int rc = -1;
    if (!diag || !off || !v || !p || !reflected || !f.u0 || !f.u1 || !f.u2 || !f.mult || !f.swap) goto done;

    /* 1. A = Q T Q^T, Q = H_0 ... H_{m-3}; H_k = I - 2 v v^T acts on rows k+1.. and its v is
     *    kept in column k below the subdiagonal's position (never read again). */
    off[m - 1] = 0.0;
    for (size_t k = 0; k + 2 < m; k++) {
        size_t len = m - k - 1;
        for (size_t i = 0; i < len; i++) v[i] = a[(k + 1 + i) * m + k];
        double tail = 0.0;
        for (size_t i = 1; i < len; i++) tail += v[i] * v[i];
        if (tail == 0.0) { /* already tridiagonal in this column */
            off[k] = v[0];
            continue;
        }
        double norm = sqrt(v[0] * v[0] + tail);
        double alpha = v[0] > 0 ? -norm : norm;
        v[0] -= alpha;
        double vn = sc_norm(v, len);
        for (size_t i = 0; i < len; i++) v[i] /= vn;
        off[k] = alpha;
        reflected[k] = 1;
        double *a22 = a + (k + 1) * m + (k + 1);
        cblas_dsymv(CblasRowMajor, CblasLower, (int)len, 1.0, a22, (int)m, v, 1, 0.0, p, 1);
        double c = 0.0;
        for (size_t i = 0; i < len; i++) c += v[i] * p[i];
        for (size_t i = 0; i < len; i++) p[i] -= c * v[i];
        cblas_dsyr2(CblasRowMajor, CblasLower, (int)len, -2.0, v, 1, p, 1, a22, (int)m);
        for (size_t i = 0; i < len; i++) a[(k + 1 + i) * m + k] = v[i];
    }
    for (size_t k = 0; k < m; k++) diag[k] = a[k * m + k];
    if (m >= 2) off[m - 2] = a[(m - 1) * m + (m - 2)];

    /* 2. The wanted eigenvalues by bisection inside the Gershgorin interval. */
    double lo0 = INFINITY, hi0 = -INFINITY, tnorm = 0.0;
    for (size_t i = 0; i < m; i++) {
        double r = (i > 0 ? fabs(off[i - 1]) : 0.0) + (i + 1 < m ? fabs(off[i]) : 0.0);
        lo0 = fmin(lo0, diag[i] - r);
        hi0 = fmax(hi0, diag[i] + r);
        tnorm = fmax(tnorm, fabs(diag[i]) + r);
    }
    if (tnorm == 0.0) tnorm = 1.0;
    const double pivmin = DBL_MIN * fmax(1.0, tnorm * tnorm) / DBL_EPSILON;
    for (size_t t = 0; t < count; t++) {
        size_t want = m - 1 - t; /* ascending index of the t-th largest */
        double lo = lo0 - DBL_EPSILON * tnorm, hi = hi0 + DBL_EPSILON * tnorm;
        if (t > 0) hi = fmin(hi, values[t - 1] + 4 * DBL_EPSILON * tnorm);
        for (int it = 0; it < 200 && hi - lo > 2 * DBL_EPSILON * fmax(fabs(lo), fabs(hi)) + pivmin; it++) {
            double mid = 0.5 * (lo + hi);
            if (sc_sturm_count(diag, off, m, mid, pivmin) > want) hi = mid;
            else lo = mid;
        }
        values[t] = 0.5 * (lo + hi);
    }

    /* 3. Inverse iteration on T, orthogonal to the vectors already found (this keeps a
     *    cluster of equal eigenvalues apart), then 4. back through the reflections. */
    const double tiny = DBL_EPSILON * tnorm;
    for (size_t t = 0; t < count; t++) {
        double *x = vectors + t * m;
        sc_tri_factor(diag, off, m, values[t], tiny, &f);
        for (size_t i = 0; i < m; i++) x[i] = 1.0 + 0.01 * (double)((i * 7919u + t * 104729u) % 101u);
        for (int it = 0; it < 5; it++) {
            sc_tri_solve(&f, m, x);
            for (int pass = 0; pass < 2; pass++) /* twice is enough (Kahan) */
                for (size_t s = 0; s < t; s++) {
                    const double *w = vectors + s * m; /* still in T's basis until step 4 */
                    double dot = 0.0;
                    for (size_t i = 0; i < m; i++) dot += w[i] * x[i];
                    for (size_t i = 0; i < m; i++) x[i] -= dot * w[i];
                }
            double nx = sc_norm(x, m);
            if (!(nx > 0.0) || !isfinite(nx)) { /* restart from a unit vector */
                memset(x, 0, m * sizeof *x);
                x[t % m] = 1.0;
                nx = 1.0;
            }
            for (size_t i = 0; i < m; i++) x[i] /= nx;
        }
    }
    for (size_t t = 0; t < count; t++) {
        double *x = vectors + t * m;
        for (size_t k = m >= 2 ? m - 2 : 0; k-- > 0;) {
            if (!reflected[k]) continue;
            size_t len = m - k - 1;
            double dot = 0.0;
            for (size_t i = 0; i < len; i++) dot += a[(k + 1 + i) * m + k] * x[k + 1 + i];
            for (size_t i = 0; i < len; i++) x[k + 1 + i] -= 2.0 * dot * a[(k + 1 + i) * m + k];
        }
        size_t big = 0;
        for (size_t i = 1; i < m; i++)
            if (fabs(x[i]) > fabs(x[big])) big = i;
        if (x[big] < 0)
            for (size_t i = 0; i < m; i++) x[i] = -x[i];
    }
    rc = 0;
done:
    free(diag);
    free(off);
    free(v);
    free(p);
    free(reflected);
    free(f.u0);
    free(f.u1);
    free(f.u2);
    free(f.mult);
    free(f.swap);
    return rc;
}

enum { SC_PCA_ROWS = 512 };

supcon_status sc_an_pca(supcon_context *ctx, const char *fn, const float *x, size_t n, size_t d,
                        size_t k, float *out, double *components, double *variances) {
    double *mean = calloc(d, sizeof *mean);
    double *cov = calloc(d * d, sizeof *cov);
    double *blk = malloc((size_t)SC_PCA_ROWS * d * sizeof *blk);
    double *vec = malloc(k * d * sizeof *vec);
    double *val = malloc(k * sizeof *val);
    double *proj = malloc((size_t)SC_PCA_ROWS * k * sizeof *proj);
    supcon_status st = SUPCON_OK;
    if (!mean || !cov || !blk || !vec || !val || !proj) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory for the PCA (%zu x %zu covariance)",
                      fn, d, d);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (size_t r0 = 0; r0 < n; r0 += SC_PCA_ROWS) {
        size_t rb = n - r0 < SC_PCA_ROWS ? n - r0 : SC_PCA_ROWS;
        for (size_t i = 0; i < rb; i++)
            for (size_t j = 0; j < d; j++) blk[i * d + j] = (double)x[(r0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)rb, 1.0, blk, (int)d, 1.0, cov, (int)d);
    }
    const double scale = n > 1 ? 1.0 / (double)(n - 1) : 1.0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++) cov[i * d + j] *= scale;
    if (sc_an_sym_eigen_top(cov, d, k, val, vec) != 0) {
        st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory for the PCA's eigen-solver", fn);
        goto done;
    }
    for (size_t r0 = 0; r0 < n; r0 += SC_PCA_ROWS) {
        size_t rb = n - r0 < SC_PCA_ROWS ? n - r0 : SC_PCA_ROWS;
        for (size_t i = 0; i < rb; i++)
            for (size_t j = 0; j < d; j++) blk[i * d + j] = (double)x[(r0 + i) * d + j] - mean[j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)k, (int)d, 1.0, blk, (int)d, vec,
                    (int)d, 0.0, proj, (int)k);
        for (size_t i = 0; i < rb * k; i++) out[r0 * k + i] = (float)proj[i];
    }
    if (components) memcpy(components, vec, k * d * sizeof *vec);
    if (variances) memcpy(variances, val, k * sizeof *val);
done:
    free(mean);
    free(cov);
    free(blk);
    free(vec);
    free(val);
    free(proj);
    return st;
}
