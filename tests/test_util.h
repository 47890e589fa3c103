/* Small helpers shared by the tests: a seeded RNG (uniform, normal, unit vectors), error
 * norms, and a reader for the text fixtures written by tests/fixtures/gen_*.py.
 * Header-only (static inline) so that each test binary stays a single translation unit. */
#ifndef SUPCON_TEST_UTIL_H
#define SUPCON_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

/* ---- Random numbers (splitmix64: deterministic, seeded, no global state) ---------------- */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;

static inline tu_rng tu_rng_seed(uint64_t seed) {
    tu_rng r;
    r.s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    return r;
}

static inline uint64_t tu_next(tu_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n). */
static inline int64_t tu_randint(tu_rng *r, int64_t n) {
    return (int64_t)(tu_next(r) % (uint64_t)n);
}

/* Standard normal (Box-Muller). */
static inline double tu_normal(tu_rng *r) {
    double u1 = tu_uniform(r), u2 = tu_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* n rows of d float32 values from N(0, 1); rows scaled to unit L2 norm when normalise. */
static inline void tu_fill_rows(tu_rng *r, float *x, int64_t n, int64_t d, int normalise) {
    for (int64_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++) {
            x[i * d + j] = (float)tu_normal(r);
            ss += (double)x[i * d + j] * x[i * d + j];
        }
        if (normalise) {
            float inv = (float)(1.0 / sqrt(ss > 0 ? ss : 1.0));
            for (int64_t j = 0; j < d; j++) x[i * d + j] *= inv;
        }
    }
}

/* ---- Error measures ---------------------------------------------------------------------- */
/* |got - want| / max(|want|, floor). */
static inline double tu_rel_err(double got, double want, double floor_) {
    double den = fabs(want) > floor_ ? fabs(want) : floor_;
    return fabs(got - want) / den;
}

/* ||got - want||_2 / max(||want||_2, floor); got is float32, want double. */
static inline double tu_rel_norm_err_fd(const float *got, const double *want, int64_t n,
                                        double floor_) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num += e * e;
        den += want[i] * want[i];
    }
    num = sqrt(num);
    den = sqrt(den);
    return num / (den > floor_ ? den : floor_);
}

static inline double tu_rel_norm_err_dd(const double *got, const double *want, int64_t n,
                                        double floor_) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = got[i] - want[i];
        num += e * e;
        den += want[i] * want[i];
    }
    num = sqrt(num);
    den = sqrt(den);
    return num / (den > floor_ ? den : floor_);
}

/* 1 when needle occurs in hay, ignoring case (error messages are checked this way). */
static inline int tu_contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static inline int tu_all_finite_f(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- Text fixtures ------------------------------------------------------------------------
 * One key per line, then its whitespace-separated values: "B 8", "features 0.1 0.2 ...".
 * The reader keeps the file's text and points into it; values are parsed on request. */
#define TU_FX_MAX_KEYS 64

typedef struct tu_fixture {
    char *text; /* whole file, NUL-separated tokens after parsing */
    int nkeys;
    char *key[TU_FX_MAX_KEYS];
    char **tok[TU_FX_MAX_KEYS]; /* value tokens of each key */
    int64_t ntok[TU_FX_MAX_KEYS];
} tu_fixture;

static inline void tu_fixture_free(tu_fixture *f) {
    if (!f) return;
    for (int i = 0; i < f->nkeys; i++) free(f->tok[i]);
    free(f->text);
    memset(f, 0, sizeof *f);
}

/* Returns 0 on success, -1 when the file cannot be read or has too many keys. */
static inline int tu_fixture_load(tu_fixture *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return -1;
    }
    long len = ftell(fp);
    if (len < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return -1;
    }
    f->text = (char *)malloc((size_t)len + 1);
    if (!f->text || fread(f->text, 1, (size_t)len, fp) != (size_t)len) {
        fclose(fp);
        tu_fixture_free(f);
        return -1;
    }
    fclose(fp);
    f->text[len] = '\0';

    char *line = f->text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        /* count tokens */
        int64_t count = 0;
        for (char *p = line; *p;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            count++;
            while (*p && *p != ' ' && *p != '\t' && *p != '\r') p++;
        }
        if (count > 0) {
            if (f->nkeys == TU_FX_MAX_KEYS) {
                tu_fixture_free(f);
                return -1;
            }
            int k = f->nkeys++;
            f->tok[k] = (char **)malloc(sizeof(char *) * (size_t)count);
            if (!f->tok[k]) {
                tu_fixture_free(f);
                return -1;
            }
            int64_t t = 0;
            for (char *p = line; *p;) {
                while (*p == ' ' || *p == '\t' || *p == '\r') *p++ = '\0';
                if (!*p) break;
                if (t == 0)
                    f->key[k] = p;
                else
                    f->tok[k][t - 1] = p;
                t++;
                while (*p && *p != ' ' && *p != '\t' && *p != '\r') p++;
            }
            f->ntok[k] = count - 1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static inline int tu_fixture_find(const tu_fixture *f, const char *key) {
    for (int i = 0; i < f->nkeys; i++)
        if (strcmp(f->key[i], key) == 0) return i;
    return -1;
}

static inline int tu_fixture_has(const tu_fixture *f, const char *key) {
    return tu_fixture_find(f, key) >= 0;
}

/* First value of key as a string, or NULL. */
static inline const char *tu_fixture_str(const tu_fixture *f, const char *key) {
    int k = tu_fixture_find(f, key);
    return (k >= 0 && f->ntok[k] > 0) ? f->tok[k][0] : NULL;
}

/* Number of values of key, -1 when absent. */
static inline int64_t tu_fixture_count(const tu_fixture *f, const char *key) {
    int k = tu_fixture_find(f, key);
    return k >= 0 ? f->ntok[k] : -1;
}

static inline int64_t tu_fixture_int(const tu_fixture *f, const char *key, int64_t dflt) {
    const char *s = tu_fixture_str(f, key);
    return s ? strtoll(s, NULL, 10) : dflt;
}

static inline double tu_fixture_double(const tu_fixture *f, const char *key, double dflt) {
    const char *s = tu_fixture_str(f, key);
    return s ? strtod(s, NULL) : dflt;
}

/* Copy up to n values of key into out (as double). Returns the number copied, -1 if the
 * key is absent or holds a token that is not a number. */
static inline int64_t tu_fixture_doubles(const tu_fixture *f, const char *key, double *out,
                                         int64_t n) {
    int k = tu_fixture_find(f, key);
    if (k < 0) return -1;
    int64_t m = f->ntok[k] < n ? f->ntok[k] : n;
    for (int64_t i = 0; i < m; i++) {
        char *end = NULL;
        out[i] = strtod(f->tok[k][i], &end);
        if (end == f->tok[k][i] || *end) return -1;
    }
    return m;
}

static inline int64_t tu_fixture_floats(const tu_fixture *f, const char *key, float *out,
                                        int64_t n) {
    int k = tu_fixture_find(f, key);
    if (k < 0) return -1;
    int64_t m = f->ntok[k] < n ? f->ntok[k] : n;
    for (int64_t i = 0; i < m; i++) {
        char *end = NULL;
        out[i] = strtof(f->tok[k][i], &end);
        if (end == f->tok[k][i] || *end) return -1;
    }
    return m;
}

static inline int64_t tu_fixture_ints(const tu_fixture *f, const char *key, int64_t *out,
                                      int64_t n) {
    int k = tu_fixture_find(f, key);
    if (k < 0) return -1;
    int64_t m = f->ntok[k] < n ? f->ntok[k] : n;
    for (int64_t i = 0; i < m; i++) {
        char *end = NULL;
        out[i] = strtoll(f->tok[k][i], &end, 10);
        if (end == f->tok[k][i] || *end) return -1;
    }
    return m;
}

#endif /* SUPCON_TEST_UTIL_H */
