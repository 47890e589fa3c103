/* Reading safetensors files as untrusted input: a strict JSON reader of our own for the
 * header's fixed schema (no JSON library), then checks of every size and offset with
 * overflow-safe arithmetic before any tensor byte is touched. Every message names the
 * source, the entry and the byte offset. Nothing is recursive: the schema is three deep. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "error.h"

/* ---- The JSON cursor ------------------------------------------------------------------- */

typedef struct sc_jp {
    const unsigned char *s; /* the header's bytes */
    size_t n, i;
    supcon_context *ctx;
    const char *label;
} sc_jp;

static supcon_status jp_fail(sc_jp *p, supcon_status status, const char *fmt, ...) SC_PRINTF(3, 4);
static supcon_status jp_fail(sc_jp *p, supcon_status status, const char *fmt, ...) {
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sc_error(p->ctx, status, "'%s': header byte %zu (file offset %zu): %s", p->label, p->i, p->i + 8,
                    msg);
}

static void jp_ws(sc_jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static const char *jp_seen(const sc_jp *p, char *buf, size_t len) {
    if (p->i >= p->n) return "the end of the header";
    unsigned c = p->s[p->i];
    if (c >= 0x20 && c < 0x7F)
        snprintf(buf, len, "'%c'", (char)c);
    else
        snprintf(buf, len, "byte 0x%02x", c);
    return buf;
}

static supcon_status jp_expect(sc_jp *p, char c) {
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
        p->i++;
        return SUPCON_OK;
    }
    char b[32];
    return jp_fail(p, SUPCON_ERR_FORMAT, "expected '%c', found %s", c, jp_seen(p, b, sizeof b));
}

/* After a member or element: 1 for ',', 0 for `close`, else an error. */
static supcon_status jp_next(sc_jp *p, char close, int *more) {
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == ',') {
        p->i++;
        *more = 1;
        return SUPCON_OK;
    }
    if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
        p->i++;
        *more = 0;
        return SUPCON_OK;
    }
    char b[32];
    return jp_fail(p, SUPCON_ERR_FORMAT, "expected ',' or '%c', found %s", close, jp_seen(p, b, sizeof b));
}

typedef struct sc_buf {
    char *d;
    size_t n, cap;
} sc_buf;

static int buf_put(sc_buf *b, const void *src, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1) cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) return 0;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, src, n);
    b->n += n;
    b->d[b->n] = '\0';
    return 1;
}

static int jp_hex4(const sc_jp *p, size_t at, uint32_t *v) {
    if (at > p->n || p->n - at < 4) return 0;
    uint32_t x = 0;
    for (size_t k = 0; k < 4; k++) {
        unsigned c = p->s[at + k];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= c - '0';
        else if (c >= 'a' && c <= 'f') x |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') x |= c - 'A' + 10;
        else return 0;
    }
    *v = x;
    return 1;
}

/* A JSON string into a fresh NUL-terminated UTF-8 buffer. Strings may not hold U+0000
 * (names are C strings). */
static supcon_status jp_string(sc_jp *p, char **out) {
    *out = NULL;
    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] != '"') {
        char b[32];
        return jp_fail(p, SUPCON_ERR_FORMAT, "expected a string, found %s", jp_seen(p, b, sizeof b));
    }
    const size_t start = p->i;
    p->i++;
    sc_buf b = {NULL, 0, 0};
    supcon_status s = SUPCON_OK;
    for (;;) {
        if (p->i >= p->n) {
            p->i = start;
            s = jp_fail(p, SUPCON_ERR_FORMAT, "string is not terminated before the end of the header");
            break;
        }
        unsigned c = p->s[p->i];
        if (c == '"') {
            p->i++;
            if (!b.d && !buf_put(&b, "", 0)) s = jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        if (c < 0x20) {
            s = jp_fail(p, SUPCON_ERR_FORMAT, "control character 0x%02x inside a string", c);
            break;
        }
        if (c == '\\') {
            if (p->i + 1 >= p->n) {
                s = jp_fail(p, SUPCON_ERR_FORMAT, "escape at the end of the header");
                break;
            }
            unsigned e = p->s[p->i + 1];
            char one = 0;
            switch (e) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': break;
            default: s = jp_fail(p, SUPCON_ERR_FORMAT, "invalid escape '\\%c'", e >= 0x20 && e < 0x7F ? (char)e : '?');
            }
            if (s != SUPCON_OK) break;
            if (one) {
                if (!buf_put(&b, &one, 1)) {
                    s = jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                p->i += 2;
                continue;
            }
            uint32_t cp, lo;
            if (!jp_hex4(p, p->i + 2, &cp)) {
                s = jp_fail(p, SUPCON_ERR_FORMAT, "\\u needs four hexadecimal digits");
                break;
            }
            size_t used = 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                s = jp_fail(p, SUPCON_ERR_FORMAT, "lone low surrogate \\u%04X", (unsigned)cp);
                break;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->n - p->i < 12 || p->s[p->i + 6] != '\\' || p->s[p->i + 7] != 'u' ||
                    !jp_hex4(p, p->i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    s = jp_fail(p, SUPCON_ERR_FORMAT, "high surrogate \\u%04X is not followed by a low one",
                                (unsigned)cp);
                    break;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                used = 12;
            }
            if (cp == 0) {
                s = jp_fail(p, SUPCON_ERR_FORMAT, "\\u0000 (a NUL character) inside a string");
                break;
            }
            unsigned char u[4];
            size_t k;
            if (cp < 0x80) u[0] = (unsigned char)cp, k = 1;
            else if (cp < 0x800) u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3F)), k = 2;
            else if (cp < 0x10000)
                u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
                u[2] = (unsigned char)(0x80 | (cp & 0x3F)), k = 3;
            else
                u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)),
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (cp & 0x3F)), k = 4;
            if (!buf_put(&b, u, k)) {
                s = jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            p->i += used;
            continue;
        }
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (len > p->n - p->i || !sc_utf8_valid(p->s + p->i, len)) {
            s = jp_fail(p, SUPCON_ERR_FORMAT, "invalid UTF-8 inside a string");
            break;
        }
        if (!buf_put(&b, p->s + p->i, len)) {
            s = jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        p->i += len;
    }
    if (s != SUPCON_OK) {
        free(b.d);
        return s;
    }
    *out = b.d;
    return SUPCON_OK;
}

/* A non-negative integer without sign, fraction or exponent (JSON's grammar, our schema). */
static supcon_status jp_uint(sc_jp *p, const char *what, uint64_t *v) {
    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') {
        char b[32];
        return jp_fail(p, SUPCON_ERR_FORMAT, "%s: expected a non-negative integer, found %s", what,
                       jp_seen(p, b, sizeof b));
    }
    if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
        return jp_fail(p, SUPCON_ERR_FORMAT, "%s: a number with a leading zero is not JSON", what);
    uint64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        unsigned d = p->s[p->i] - '0';
        if (x > (UINT64_MAX - d) / 10) return jp_fail(p, SUPCON_ERR_FORMAT, "%s: number too large", what);
        x = x * 10 + d;
        p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == '.' || p->s[p->i] == 'e' || p->s[p->i] == 'E'))
        return jp_fail(p, SUPCON_ERR_FORMAT, "%s: expected an integer, found a fraction or an exponent", what);
    *v = x;
    return SUPCON_OK;
}

/* [u, u, ...] with at most max elements; more is `over` (with its message). */
static supcon_status jp_uint_array(sc_jp *p, const char *what, uint64_t *vals, int max, int *count) {
    *count = 0;
    supcon_status s = jp_expect(p, '[');
    if (s != SUPCON_OK) return s;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == ']') {
        p->i++;
        return SUPCON_OK;
    }
    for (int more = 1; more;) {
        uint64_t v = 0;
        if ((s = jp_uint(p, what, &v)) != SUPCON_OK) return s;
        if (*count == max)
            return jp_fail(p, max == SUPCON_MAX_DIMS ? SUPCON_ERR_UNSUPPORTED : SUPCON_ERR_FORMAT,
                           "%s has more than %d elements", what, max);
        vals[(*count)++] = v;
        if ((s = jp_next(p, ']', &more)) != SUPCON_OK) return s;
    }
    return SUPCON_OK;
}

/* Safetensors dtypes that exist but that libsupcon does not read. */
static const char *const sc_other_dtypes[] = {"F64", "F16", "BF16", "I16", "I8", "U8", "U16", "U32", "U64",
                                               "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3",
                                               "F6_E3M2", "C64"};

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} in any order, nothing else. */
static supcon_status jp_entry(sc_jp *p, sc_st_entry *e) {
    char pn[160];
    const char *nm = sc_st_printable(e->name, pn, sizeof pn);
    supcon_status s = jp_expect(p, '{');
    if (s != SUPCON_OK) return s;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    jp_ws(p);
    int more = 1;
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        more = 0;
    }
    while (more) {
        char *key;
        size_t at = p->i;
        if ((s = jp_string(p, &key)) != SUPCON_OK) return s;
        if ((s = jp_expect(p, ':')) != SUPCON_OK) {
            free(key);
            return s;
        }
        int *have = strcmp(key, "dtype") == 0          ? &have_dtype
                    : strcmp(key, "shape") == 0        ? &have_shape
                    : strcmp(key, "data_offsets") == 0 ? &have_offsets
                                                       : NULL;
        if (!have || *have) {
            char pk[80];
            p->i = at;
            s = jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': %s field \"%s\"", nm, have ? "duplicate" : "unknown",
                        sc_st_printable(key, pk, sizeof pk));
            free(key);
            return s;
        }
        *have = 1;
        if (have == &have_dtype) {
            free(key);
            char *dt;
            jp_ws(p);
            at = p->i;
            if ((s = jp_string(p, &dt)) != SUPCON_OK) return s;
            int found = 0;
            for (int d = SUPCON_FLOAT32; d <= SUPCON_INT64; d++)
                if (strcmp(dt, sc_st_dtype_name((supcon_dtype)d)) == 0) e->dtype = (supcon_dtype)d, found = 1;
            if (!found) {
                int known = 0;
                for (size_t k = 0; k < sizeof sc_other_dtypes / sizeof *sc_other_dtypes; k++)
                    known |= strcmp(dt, sc_other_dtypes[k]) == 0;
                char pd[40];
                p->i = at;
                s = jp_fail(p, known ? SUPCON_ERR_UNSUPPORTED : SUPCON_ERR_FORMAT,
                            known ? "entry '%s': dtype %s is not read by libsupcon (F32, I32, I64 only)"
                                  : "entry '%s': unknown dtype \"%s\"",
                            nm, sc_st_printable(dt, pd, sizeof pd));
                free(dt);
                return s;
            }
            free(dt);
        } else if (have == &have_shape) {
            free(key);
            uint64_t dims[SUPCON_MAX_DIMS];
            int nd;
            if ((s = jp_uint_array(p, "shape", dims, SUPCON_MAX_DIMS, &nd)) != SUPCON_OK) return s;
            e->ndim = nd;
            for (int d = 0; d < nd; d++) {
                if (dims[d] > (uint64_t)INT64_MAX)
                    return jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': shape[%d] = %llu is too large", nm, d,
                                   (unsigned long long)dims[d]);
                e->shape[d] = (int64_t)dims[d];
            }
        } else {
            free(key);
            uint64_t off[2];
            int no;
            if ((s = jp_uint_array(p, "data_offsets", off, 2, &no)) != SUPCON_OK) return s;
            if (no != 2) return jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': data_offsets needs 2 numbers, has %d", nm, no);
            e->offset = (size_t)off[0];
            e->end = off[1];
            if (off[0] > off[1])
                return jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': data_offsets [%llu, %llu] end before they begin",
                               nm, (unsigned long long)off[0], (unsigned long long)off[1]);
        }
        if ((s = jp_next(p, '}', &more)) != SUPCON_OK) return s;
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s' has no \"%s\"", nm,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return SUPCON_OK;
}

static supcon_status jp_metadata(sc_jp *p, supcon_safetensors *st) {
    supcon_status s = jp_expect(p, '{');
    if (s != SUPCON_OK) return s;
    jp_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        return SUPCON_OK;
    }
    for (int more = 1; more;) {
        char *key, *value;
        if ((s = jp_string(p, &key)) != SUPCON_OK) return s;
        if ((s = jp_expect(p, ':')) != SUPCON_OK) {
            free(key);
            return s;
        }
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] != '"') {
            char pk[80];
            s = jp_fail(p, SUPCON_ERR_FORMAT, "__metadata__ value of '%s' is not a string",
                        sc_st_printable(key, pk, sizeof pk));
            free(key);
            return s;
        }
        if ((s = jp_string(p, &value)) != SUPCON_OK) {
            free(key);
            return s;
        }
        if (sc_st_push_metadata(st, key, value) != SUPCON_OK) {
            free(key);
            free(value);
            return jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
        }
        if ((s = jp_next(p, '}', &more)) != SUPCON_OK) return s;
    }
    return SUPCON_OK;
}

static supcon_status jp_header(sc_jp *p, supcon_safetensors *st) {
    if (p->n == 0 || p->s[0] != '{') return jp_fail(p, SUPCON_ERR_FORMAT, "the header does not start with '{'");
    p->i = 1;
    int seen_meta = 0;
    jp_ws(p);
    int more = 1;
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        more = 0;
    }
    supcon_status s;
    while (more) {
        jp_ws(p);
        size_t at = p->i;
        char *name;
        if ((s = jp_string(p, &name)) != SUPCON_OK) return s;
        if ((s = jp_expect(p, ':')) != SUPCON_OK) {
            free(name);
            return s;
        }
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (seen_meta) {
                p->i = at;
                return jp_fail(p, SUPCON_ERR_FORMAT, "a second \"__metadata__\"");
            }
            seen_meta = 1;
            if ((s = jp_metadata(p, st)) != SUPCON_OK) return s;
        } else {
            if (!*name) {
                free(name);
                p->i = at;
                return jp_fail(p, SUPCON_ERR_FORMAT, "an entry with an empty name");
            }
            sc_st_entry e;
            memset(&e, 0, sizeof e);
            e.name = name;
            e.hdr_pos = at;
            s = jp_entry(p, &e);
            if (s == SUPCON_OK && sc_st_push_entry(st, &e) != SUPCON_OK)
                s = jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
            if (s != SUPCON_OK) {
                free(name);
                return s;
            }
        }
        if ((s = jp_next(p, '}', &more)) != SUPCON_OK) return s;
    }
    jp_ws(p);
    if (p->i != p->n) return jp_fail(p, SUPCON_ERR_FORMAT, "bytes after the header's closing '}'");
    return SUPCON_OK;
}

/* ---- Checks across entries --------------------------------------------------------------- */

typedef struct sc_span {
    uint64_t begin, end;
    int64_t idx;
} sc_span;

static int span_cmp(const void *a, const void *b) {
    const sc_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

typedef struct sc_named {
    const char *canon;
    int64_t idx;
} sc_named;

static int named_cmp(const void *a, const void *b) {
    const sc_named *x = a, *y = b;
    int c = strcmp(x->canon, y->canon);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static supcon_status sc_st_check(sc_jp *p, supcon_safetensors *st, uint64_t data_size, size_t data_at) {
    char pa[160], pb[160];
    /* metadata keys unique */
    supcon_status s = SUPCON_OK;
    if (st->meta_count > 1) {
        sc_named *mk = malloc((size_t)st->meta_count * sizeof *mk);
        if (!mk) return jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t k = 0; k < st->meta_count; k++) mk[k] = (sc_named){st->meta_key[k], k};
        qsort(mk, (size_t)st->meta_count, sizeof *mk, named_cmp);
        for (int64_t k = 1; k < st->meta_count && s == SUPCON_OK; k++)
            if (strcmp(mk[k - 1].canon, mk[k].canon) == 0) {
                p->i = 0;
                s = jp_fail(p, SUPCON_ERR_FORMAT, "duplicate __metadata__ key '%s'",
                            sc_st_printable(mk[k].canon, pa, sizeof pa));
            }
        free(mk);
    }
    if (s != SUPCON_OK) return s;
    /* sizes */
    for (int64_t k = 0; k < st->count; k++) {
        sc_st_entry *e = &st->entries[k];
        const uint64_t esize = sc_st_dtype_size(e->dtype);
        uint64_t numel = 1;
        int over = 0;
        for (int d = 0; d < e->ndim; d++) {
            uint64_t x = (uint64_t)e->shape[d];
            if (x && numel > UINT64_MAX / x) over = 1;
            else numel *= x;
        }
        if (!over && numel > (uint64_t)INT64_MAX / esize) over = 1;
        p->i = e->hdr_pos;
        if (over)
            return jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': its shape overflows 64-bit sizes",
                           sc_st_printable(e->name, pa, sizeof pa));
        uint64_t bytes = numel * esize;
        if (e->end - (uint64_t)e->offset != bytes)
            return jp_fail(p, SUPCON_ERR_FORMAT,
                           "entry '%s': %llu elements of %s are %llu bytes, but data_offsets [%llu, %llu] hold %llu",
                           sc_st_printable(e->name, pa, sizeof pa), (unsigned long long)numel,
                           sc_st_dtype_name(e->dtype), (unsigned long long)bytes, (unsigned long long)e->offset,
                           (unsigned long long)e->end, (unsigned long long)(e->end - e->offset));
        if (e->end > data_size)
            return jp_fail(p, SUPCON_ERR_FORMAT,
                           "entry '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes from "
                           "file offset %zu)",
                           sc_st_printable(e->name, pa, sizeof pa), (unsigned long long)e->offset,
                           (unsigned long long)e->end, (unsigned long long)data_size, data_at);
        e->numel = (int64_t)numel;
        e->bytes = (size_t)bytes;
    }
    if (st->count == 0) {
        p->i = 0;
        if (data_size)
            return jp_fail(p, SUPCON_ERR_FORMAT, "no entries, but %llu data bytes follow the header",
                           (unsigned long long)data_size);
        return SUPCON_OK;
    }
    /* contiguity */
    sc_span *sp = malloc((size_t)st->count * sizeof *sp);
    if (!sp) return jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t k = 0; k < st->count; k++)
        sp[k] = (sc_span){st->entries[k].offset, st->entries[k].end, k};
    qsort(sp, (size_t)st->count, sizeof *sp, span_cmp);
    uint64_t expect = 0;
    for (int64_t k = 0; k < st->count && s == SUPCON_OK; k++) {
        const sc_st_entry *e = &st->entries[sp[k].idx];
        p->i = e->hdr_pos;
        if (sp[k].begin < expect)
            s = jp_fail(p, SUPCON_ERR_FORMAT, "entry '%s': data_offsets [%llu, %llu] overlap entry '%s' (up to %llu)",
                        sc_st_printable(e->name, pa, sizeof pa), (unsigned long long)sp[k].begin,
                        (unsigned long long)sp[k].end,
                        sc_st_printable(st->entries[sp[k - 1].idx].name, pb, sizeof pb), (unsigned long long)expect);
        else if (sp[k].begin > expect)
            s = jp_fail(p, SUPCON_ERR_FORMAT,
                        "entry '%s': data_offsets [%llu, %llu] leave bytes [%llu, %llu) (file offset %llu) to no entry",
                        sc_st_printable(e->name, pa, sizeof pa), (unsigned long long)sp[k].begin,
                        (unsigned long long)sp[k].end, (unsigned long long)expect, (unsigned long long)sp[k].begin,
                        (unsigned long long)(data_at + expect));
        expect = sp[k].end;
    }
    free(sp);
    if (s != SUPCON_OK) return s;
    if (expect != data_size) {
        p->i = 0;
        return jp_fail(p, SUPCON_ERR_FORMAT,
                       "the entries cover %llu data bytes, the file has %llu (trailing bytes from file offset %llu)",
                       (unsigned long long)expect, (unsigned long long)data_size,
                       (unsigned long long)(data_at + expect));
    }
    /* names: unique, also without "module." components */
    size_t total = 0;
    for (int64_t k = 0; k < st->count; k++) total += strlen(st->entries[k].name) + 1;
    sc_named *nm = malloc((size_t)st->count * sizeof *nm);
    char *canon = malloc(total);
    if (!nm || !canon) {
        free(nm);
        free(canon);
        return jp_fail(p, SUPCON_ERR_OUT_OF_MEMORY, "out of memory");
    }
    char *w = canon;
    for (int64_t k = 0; k < st->count; k++) {
        sc_st_canonical(st->entries[k].name, w);
        nm[k] = (sc_named){w, k};
        w += strlen(w) + 1;
    }
    qsort(nm, (size_t)st->count, sizeof *nm, named_cmp);
    for (int64_t k = 1; k < st->count && s == SUPCON_OK; k++) {
        if (strcmp(nm[k - 1].canon, nm[k].canon)) continue;
        const sc_st_entry *a = &st->entries[nm[k - 1].idx], *b = &st->entries[nm[k].idx];
        p->i = b->hdr_pos;
        if (strcmp(a->name, b->name) == 0)
            s = jp_fail(p, SUPCON_ERR_FORMAT, "duplicate entry '%s'", sc_st_printable(b->name, pa, sizeof pa));
        else
            s = jp_fail(p, SUPCON_ERR_FORMAT, "entries '%s' and '%s' are the same tensor without \"module.\"",
                        sc_st_printable(a->name, pa, sizeof pa), sc_st_printable(b->name, pb, sizeof pb));
    }
    free(nm);
    free(canon);
    return s;
}

/* Entries whose bytes are not aligned to their element size in the file (legal, rare) are
 * moved, so that supcon_safetensors_data can promise aligned pointers. */
static supcon_status sc_st_align(supcon_safetensors *st) {
    int ok = 1;
    for (int64_t k = 0; k < st->count; k++) ok &= st->entries[k].offset % sc_st_dtype_size(st->entries[k].dtype) == 0;
    if (ok) return SUPCON_OK;
    size_t need = 0;
    for (int64_t k = 0; k < st->count; k++) need = ((need + 7) & ~(size_t)7) + st->entries[k].bytes;
    unsigned char *nd = malloc(need ? need : 1);
    if (!nd) return SUPCON_ERR_OUT_OF_MEMORY;
    size_t off = 0;
    for (int64_t k = 0; k < st->count; k++) {
        sc_st_entry *e = &st->entries[k];
        off = (off + 7) & ~(size_t)7;
        if (e->bytes) memcpy(nd + off, st->data + e->offset, e->bytes);
        e->offset = off;
        off += e->bytes;
    }
    free(st->data);
    st->data = nd;
    st->data_size = st->data_cap = need;
    return SUPCON_OK;
}

/* Header length, limits and the header itself; fills st's entries and metadata. */
static supcon_status sc_st_read_header(supcon_context *ctx, const char *label, const unsigned char len8[8],
                                       uint64_t file_size, const supcon_safetensors_config *cfg,
                                       uint64_t *header_len) {
    if (file_size < 8)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': %llu bytes, too short for the 8-byte header length", label,
                        (unsigned long long)file_size);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | len8[k];
    if (n > cfg->max_header_bytes)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': header length %llu (file offset 0) exceeds the limit of %llu",
                        label, (unsigned long long)n, (unsigned long long)cfg->max_header_bytes);
    if (n > file_size - 8)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "'%s': header length %llu (file offset 0) runs past the end of the file (%llu bytes follow)",
                        label, (unsigned long long)n, (unsigned long long)(file_size - 8));
    uint64_t data = file_size - 8 - n;
    if (cfg->max_data_bytes && data > cfg->max_data_bytes)
        return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': %llu data bytes exceed the limit of %llu", label,
                        (unsigned long long)data, (unsigned long long)cfg->max_data_bytes);
    if (data > SIZE_MAX - 64)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': %llu data bytes do not fit in memory", label,
                        (unsigned long long)data);
    *header_len = n;
    return SUPCON_OK;
}

supcon_status sc_st_parse_memory(supcon_context *ctx, const char *label, const unsigned char *data, size_t size,
                                 const supcon_safetensors_config *cfg, supcon_safetensors **out) {
    *out = NULL;
    uint64_t n = 0;
    unsigned char len8[8] = {0};
    if (size >= 8) memcpy(len8, data, 8);
    supcon_status s = sc_st_read_header(ctx, label, len8, size, cfg, &n);
    if (s != SUPCON_OK) return s;
    supcon_safetensors *st;
    if ((s = supcon_safetensors_create(ctx, &st)) != SUPCON_OK) return s;
    sc_jp p = {data + 8, (size_t)n, 0, ctx, label};
    const size_t data_at = 8 + (size_t)n, data_size = size - data_at;
    if ((s = jp_header(&p, st)) == SUPCON_OK) s = sc_st_check(&p, st, data_size, data_at);
    if (s == SUPCON_OK) {
        st->data = malloc(data_size ? data_size : 1);
        if (!st->data) s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': no memory for %zu bytes", label, data_size);
    }
    if (s == SUPCON_OK) {
        if (data_size) memcpy(st->data, data + data_at, data_size);
        st->data_size = st->data_cap = data_size;
        if (sc_st_align(st) != SUPCON_OK) s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': out of memory", label);
    }
    if (s != SUPCON_OK) {
        supcon_safetensors_free(st);
        return s;
    }
    *out = st;
    return SUPCON_OK;
}

/* ---- Files ----------------------------------------------------------------------------------- */

static const char *sc_errno_text(int e, char *buf, size_t len) {
    if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
    return buf;
}

/* Exactly n bytes at offset off, or a status naming what went wrong. */
static supcon_status sc_pread_all(supcon_context *ctx, int fd, const char *path, void *dst, size_t n, uint64_t off,
                                  const char *what) {
    size_t got = 0;
    char why[128];
    while (got < n) {
        size_t chunk = n - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - got;
        ssize_t r = pread(fd, (char *)dst + got, chunk, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            return sc_error(ctx, SUPCON_ERR_IO, "'%s': cannot read the %s at file offset %llu: %s", path, what,
                            (unsigned long long)(off + got), sc_errno_text(e, why, sizeof why));
        }
        if (r == 0)
            return sc_error(ctx, SUPCON_ERR_FORMAT, "'%s': the file ends at offset %llu, inside the %s", path,
                            (unsigned long long)(off + got), what);
        got += (size_t)r;
    }
    return SUPCON_OK;
}

supcon_status sc_st_load_file(supcon_context *ctx, const char *path, const supcon_safetensors_config *cfg,
                              supcon_safetensors **out) {
    *out = NULL;
    char why[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return sc_error(ctx, SUPCON_ERR_IO, "cannot open '%s': %s", path, sc_errno_text(e, why, sizeof why));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return sc_error(ctx, SUPCON_ERR_IO, "cannot stat '%s': %s", path, sc_errno_text(e, why, sizeof why));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return sc_error(ctx, SUPCON_ERR_IO, "'%s' is %s", path, S_ISDIR(sb.st_mode) ? "a folder" : "not a regular file");
    }
    const uint64_t size = (uint64_t)sb.st_size;
    unsigned char len8[8] = {0};
    supcon_status s = SUPCON_OK;
    if (size >= 8) s = sc_pread_all(ctx, fd, path, len8, 8, 0, "header length");
    uint64_t n = 0;
    if (s == SUPCON_OK) s = sc_st_read_header(ctx, path, len8, size, cfg, &n);
    supcon_safetensors *st = NULL;
    unsigned char *hdr = NULL;
    if (s == SUPCON_OK) s = supcon_safetensors_create(ctx, &st);
    if (s == SUPCON_OK) {
        hdr = malloc(n ? (size_t)n : 1);
        if (!hdr) s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': no memory for a %llu-byte header", path,
                               (unsigned long long)n);
    }
    if (s == SUPCON_OK) s = sc_pread_all(ctx, fd, path, hdr, (size_t)n, 8, "header");
    const uint64_t data_at = 8 + n, data_size = size - data_at;
    if (s == SUPCON_OK) {
        sc_jp p = {hdr, (size_t)n, 0, ctx, path};
        if ((s = jp_header(&p, st)) == SUPCON_OK) s = sc_st_check(&p, st, data_size, (size_t)data_at);
    }
    free(hdr);
    if (s == SUPCON_OK) {
        st->data = malloc(data_size ? (size_t)data_size : 1);
        if (!st->data)
            s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': no memory for %llu data bytes", path,
                         (unsigned long long)data_size);
    }
    if (s == SUPCON_OK) s = sc_pread_all(ctx, fd, path, st->data, (size_t)data_size, data_at, "tensor data");
    close(fd);
    if (s == SUPCON_OK) {
        st->data_size = st->data_cap = (size_t)data_size;
        if (sc_st_align(st) != SUPCON_OK) s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "'%s': out of memory", path);
    }
    if (s != SUPCON_OK) {
        supcon_safetensors_free(st);
        return s;
    }
    *out = st;
    return SUPCON_OK;
}
