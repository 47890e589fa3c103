/* t-SNE's objective KL(P || Q) and its gradient with respect to Y: exact over all pairs, and
 * Barnes-Hut (van der Maaten 2014) with a quadtree for the repulsion. Every point's sums run
 * in a fixed order and the global Z is summed serially, so any thread split gives the same
 * bits. The 3-D octree is left out (Barnes-Hut is 2-D only). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"

/* ---- exact -------------------------------------------------------------------------------- */

typedef struct {
    const double *P, *Y;
    size_t n;
    int dims;
    double exaggeration, z;
    double *grad, *num, *row_sum, *row_kl;
    int want_kl;
} sc_exact_job;

/* Kernel values num_io = 1 / (1 + |y_i - y_o|^2) of whole rows; DIMS a constant, so the
 * loops vectorise. */
static inline void sc_exact_num_rows(sc_exact_job *j, int64_t begin, int64_t end, const int dims) {
    const size_t n = j->n;
    for (int64_t ii = begin; ii < end; ii++) {
        size_t i = (size_t)ii;
        const double *yi = j->Y + i * (size_t)dims;
        double *num = j->num + i * n, s = 0.0;
        for (size_t o = 0; o < n; o++) {
            const double *yo = j->Y + o * (size_t)dims;
            double d2 = 0.0;
            for (int c = 0; c < dims; c++) d2 += (yi[c] - yo[c]) * (yi[c] - yo[c]);
            num[o] = 1.0 / (1.0 + d2);
        }
        num[i] = 0.0;
        for (size_t o = 0; o < n; o++) s += num[o];
        j->row_sum[i] = s;
    }
}

static void sc_exact_num(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_exact_job *j = raw;
    if (j->dims == 2) sc_exact_num_rows(j, begin, end, 2);
    else if (j->dims == 3) sc_exact_num_rows(j, begin, end, 3);
    else sc_exact_num_rows(j, begin, end, j->dims);
}

static inline void sc_exact_grad_rows(sc_exact_job *j, int64_t begin, int64_t end, const int dims) {
    const size_t n = j->n;
    const double inv_z = 1.0 / j->z, ex = j->exaggeration;
    for (int64_t ii = begin; ii < end; ii++) {
        size_t i = (size_t)ii;
        const double *yi = j->Y + i * (size_t)dims, *num = j->num + i * n, *p = j->P + i * n;
        double g[3] = {0.0, 0.0, 0.0};
        for (size_t o = 0; o < n; o++) { /* o == i adds 0: num and p are 0 there */
            double mult = (ex * p[o] - num[o] * inv_z) * num[o];
            const double *yo = j->Y + o * (size_t)dims;
            for (int c = 0; c < dims; c++) g[c] += mult * (yi[c] - yo[c]);
        }
        for (int c = 0; c < dims; c++) j->grad[i * (size_t)dims + (size_t)c] = 4.0 * g[c];
        if (j->want_kl) {
            double kl = 0.0;
            for (size_t o = 0; o < n; o++)
                if (p[o] > 0.0) kl += p[o] * log(p[o] / (num[o] * inv_z));
            j->row_kl[i] = kl;
        }
    }
}

static void sc_exact_rows(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_exact_job *j = raw;
    if (j->dims == 2) sc_exact_grad_rows(j, begin, end, 2);
    else if (j->dims == 3) sc_exact_grad_rows(j, begin, end, 3);
    else sc_exact_grad_rows(j, begin, end, j->dims);
}

double sc_tsne_exact_grad(sc_pool *pool, const double *P, const double *Y, size_t n, int dims,
                          double exaggeration, double *grad, double *num, int want_kl) {
    /* num holds n * n kernel values, then n row sums and n row KL terms. */
    sc_exact_job j = {P, Y, n, dims, exaggeration, 0.0, grad, num, num + n * n, num + n * n + n, want_kl};
    sc_an_parallel(pool, (int64_t)n, 4, sc_exact_num, &j);
    double z = 0.0;
    for (size_t i = 0; i < n; i++) z += j.row_sum[i];
    j.z = z;
    sc_an_parallel(pool, (int64_t)n, 4, sc_exact_rows, &j);
    double kl = 0.0;
    if (want_kl)
        for (size_t i = 0; i < n; i++) kl += j.row_kl[i];
    return kl;
}

/* ---- quadtree ----------------------------------------------------------------------------- */

enum { SC_QT_LEAF = 8, SC_QT_MAX_DEPTH = 48 };

typedef struct sc_qnode {
    double cx, cy;     /* centre of mass */
    double bx, by, hw; /* box centre and half width (square cells) */
    int32_t start, count;
    int32_t child; /* first of four consecutive children, or -1 for a leaf */
    int32_t depth;
} sc_qnode;

struct sc_quadtree {
    size_t n;
    sc_qnode *node;
    size_t cap, used;
    int32_t *perm, *tmp, *pos; /* points in node order, scratch, and each point's slot */
    unsigned char *quad;
};

sc_quadtree *sc_quadtree_create(size_t n) {
    sc_quadtree *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->cap = 4 * n + 16;
    t->node = malloc(t->cap * sizeof *t->node);
    t->perm = malloc(n * sizeof *t->perm);
    t->tmp = malloc(n * sizeof *t->tmp);
    t->pos = malloc(n * sizeof *t->pos);
    t->quad = malloc(n);
    if (!t->node || !t->perm || !t->tmp || !t->pos || !t->quad) {
        sc_quadtree_free(t);
        return NULL;
    }
    return t;
}

void sc_quadtree_free(sc_quadtree *t) {
    if (!t) return;
    free(t->node);
    free(t->perm);
    free(t->tmp);
    free(t->pos);
    free(t->quad);
    free(t);
}

/* Breadth-first: children always come after their parent, so one backward pass over the
 * nodes fills in the centres of mass. Starts from the identity order every time, so the
 * tree depends on Y alone. */
static int sc_quadtree_build(sc_quadtree *t, const double *Y) {
    const size_t n = t->n;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        t->perm[i] = (int32_t)i;
        x0 = fmin(x0, Y[2 * i]), x1 = fmax(x1, Y[2 * i]);
        y0 = fmin(y0, Y[2 * i + 1]), y1 = fmax(y1, Y[2 * i + 1]);
    }
    double hw = 0.5 * fmax(x1 - x0, y1 - y0);
    hw = hw * (1.0 + 1e-9) + 1e-300;
    const double min_hw = hw * 1e-12;
    t->used = 1;
    t->node[0] = (sc_qnode){0, 0, 0.5 * (x0 + x1), 0.5 * (y0 + y1), hw, 0, (int32_t)n, -1, 0};
    for (size_t at = 0; at < t->used; at++) {
        sc_qnode nd = t->node[at];
        if (nd.count <= SC_QT_LEAF || nd.depth >= SC_QT_MAX_DEPTH || nd.hw < min_hw) continue;
        if (t->used + 4 > t->cap) {
            size_t cap = 2 * t->cap;
            sc_qnode *g = realloc(t->node, cap * sizeof *g);
            if (!g) return -1;
            t->node = g;
            t->cap = cap;
        }
        int32_t cnt[4] = {0, 0, 0, 0};
        for (int32_t s = nd.start; s < nd.start + nd.count; s++) {
            int32_t i = t->perm[s];
            unsigned char q = (unsigned char)((Y[2 * i] >= nd.bx) + 2 * (Y[2 * i + 1] >= nd.by));
            t->quad[s] = q;
            cnt[q]++;
        }
        int32_t off[4] = {nd.start, 0, 0, 0};
        for (int q = 1; q < 4; q++) off[q] = off[q - 1] + cnt[q - 1];
        int32_t put[4] = {off[0], off[1], off[2], off[3]};
        for (int32_t s = nd.start; s < nd.start + nd.count; s++) t->tmp[put[t->quad[s]]++] = t->perm[s];
        memcpy(t->perm + nd.start, t->tmp + nd.start, (size_t)nd.count * sizeof *t->perm);
        const double h = 0.5 * nd.hw;
        t->node[at].child = (int32_t)t->used;
        for (int q = 0; q < 4; q++) {
            double bx = nd.bx + ((q & 1) ? h : -h), by = nd.by + ((q & 2) ? h : -h);
            t->node[t->used++] = (sc_qnode){0, 0, bx, by, h, off[q], cnt[q], -1, nd.depth + 1};
        }
    }
    for (size_t at = t->used; at-- > 0;) {
        sc_qnode *nd = &t->node[at];
        double sx = 0.0, sy = 0.0;
        if (nd->child < 0) {
            for (int32_t s = nd->start; s < nd->start + nd->count; s++) {
                sx += Y[2 * t->perm[s]];
                sy += Y[2 * t->perm[s] + 1];
            }
        } else {
            for (int q = 0; q < 4; q++) {
                const sc_qnode *c = &t->node[nd->child + q];
                sx += c->cx * c->count;
                sy += c->cy * c->count;
            }
        }
        nd->cx = nd->count ? sx / nd->count : nd->bx;
        nd->cy = nd->count ? sy / nd->count : nd->by;
    }
    for (size_t s = 0; s < n; s++) t->pos[t->perm[s]] = (int32_t)s;
    return 0;
}

/* ---- Barnes-Hut gradient ------------------------------------------------------------------- */

typedef struct {
    const sc_quadtree *tree;
    const sc_sparse_p *P;
    const double *Y;
    double theta2, exaggeration, z;
    double *rep, *zi, *grad;
    int want_kl;
} sc_bh_job;

/* Repulsion sum_j num_ij^2 (y_i - y_j) and sum_j num_ij for one point; a cell is taken whole
 * when its full width w satisfies w^2 < theta^2 * dist^2 to its centre of mass and it does
 * not hold the point itself (sklearn's criterion). */
static void sc_bh_repulse(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_bh_job *j = raw;
    const sc_quadtree *t = j->tree;
    int32_t stack[4 * SC_QT_MAX_DEPTH + 8];
    for (int64_t slot = begin; slot < end; slot++) { /* in tree order: neighbours share nodes */
        const int32_t ii = t->perm[slot], me = (int32_t)slot;
        const double xi = j->Y[2 * ii], yi = j->Y[2 * ii + 1];
        double fx = 0.0, fy = 0.0, z = 0.0;
        int top = 0;
        stack[top++] = 0;
        while (top > 0) {
            const sc_qnode *nd = &t->node[stack[--top]];
            if (nd->count == 0) continue;
            const int mine = me >= nd->start && me < nd->start + nd->count;
            if (!mine) {
                double dx = xi - nd->cx, dy = yi - nd->cy, d2 = dx * dx + dy * dy;
                double w = 2.0 * nd->hw;
                if (w * w < j->theta2 * d2) {
                    double q = 1.0 / (1.0 + d2), m = nd->count * q;
                    z += m;
                    fx += m * q * dx;
                    fy += m * q * dy;
                    continue;
                }
            }
            if (nd->child < 0) {
                for (int32_t s = nd->start; s < nd->start + nd->count; s++) {
                    int32_t o = t->perm[s];
                    if (o == ii) continue;
                    double dx = xi - j->Y[2 * o], dy = yi - j->Y[2 * o + 1];
                    double q = 1.0 / (1.0 + dx * dx + dy * dy);
                    z += q;
                    fx += q * q * dx;
                    fy += q * q * dy;
                }
            } else {
                for (int q = 3; q >= 0; q--) stack[top++] = nd->child + q;
            }
        }
        j->rep[2 * ii] = fx;
        j->rep[2 * ii + 1] = fy;
        j->zi[ii] = z;
    }
}

static void sc_bh_attract(void *raw, int64_t begin, int64_t end, int worker) {
    (void)worker;
    sc_bh_job *j = raw;
    const sc_sparse_p *P = j->P;
    const double inv_z = 1.0 / j->z;
    for (int64_t ii = begin; ii < end; ii++) {
        const double xi = j->Y[2 * ii], yi = j->Y[2 * ii + 1];
        double ax = 0.0, ay = 0.0, kl = 0.0;
        for (size_t e = P->row[ii]; e < P->row[ii + 1]; e++) {
            int32_t o = P->col[e];
            double dx = xi - j->Y[2 * o], dy = yi - j->Y[2 * o + 1];
            double q = 1.0 / (1.0 + dx * dx + dy * dy), p = P->val[e];
            ax += p * q * dx;
            ay += p * q * dy;
            if (j->want_kl && p > 0.0) kl += p * log(p / (q * inv_z));
        }
        j->grad[2 * ii] = 4.0 * (j->exaggeration * ax - j->rep[2 * ii] * inv_z);
        j->grad[2 * ii + 1] = 4.0 * (j->exaggeration * ay - j->rep[2 * ii + 1] * inv_z);
        j->zi[ii] = kl; /* Z is summed already: the slot now holds the point's KL term */
    }
}

int sc_tsne_bh_grad(sc_pool *pool, sc_quadtree *tree, const sc_sparse_p *P, const double *Y,
                    size_t n, double theta, double exaggeration, double *grad, double *scratch,
                    double *kl) {
    if (sc_quadtree_build(tree, Y) != 0) return -1;
    sc_bh_job j = {tree, P, Y, theta * theta, exaggeration, 0.0, scratch, scratch + 2 * n, grad, kl != NULL};
    sc_an_parallel(pool, (int64_t)n, 32, sc_bh_repulse, &j);
    double z = 0.0;
    for (size_t i = 0; i < n; i++) z += j.zi[i];
    j.z = z;
    sc_an_parallel(pool, (int64_t)n, 64, sc_bh_attract, &j);
    if (kl) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += j.zi[i];
        *kl = s;
    }
    return 0;
}
