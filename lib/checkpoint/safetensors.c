/* The safetensors object: entries and metadata in host memory, their accessors, names with
 * and without "module." components, and the bridge to tensors. Reading and writing files
 * are in st_parse.c and st_write.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "context_internal.h"
#include "error.h"
#include "tensor_internal.h"

const char *sc_st_dtype_name(supcon_dtype d) {
    switch (d) {
    case SUPCON_FLOAT32: return "F32";
    case SUPCON_INT32: return "I32";
    case SUPCON_INT64: return "I64";
    }
    return NULL;
}

size_t sc_st_dtype_size(supcon_dtype d) {
    switch (d) {
    case SUPCON_FLOAT32:
    case SUPCON_INT32: return 4;
    case SUPCON_INT64: return 8;
    }
    return 0;
}

int sc_utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (len - i <= need) return 0;
        for (size_t k = 1; k <= need; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += need + 1;
    }
    return 1;
}

void sc_st_canonical(const char *name, char *out) {
    size_t o = 0;
    int first = 1;
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!(n == 6 && memcmp(p, "module", 6) == 0)) {
            if (!first) out[o++] = '.';
            memcpy(out + o, p, n);
            o += n;
            first = 0;
        }
        if (!dot) break;
        p = dot + 1;
    }
    out[o] = '\0';
}

const char *sc_st_printable(const char *s, char *buf, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= len) {
            if (len >= 4) memcpy(buf + (o < len - 4 ? o : len - 4), "...", 4);
            return buf;
        }
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

supcon_status supcon_checkpoint_canonical_name(const char *name, char *out, size_t out_size) {
    if (!name || !out)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_checkpoint_canonical_name: %s is NULL",
                        name ? "out" : "name");
    size_t n = strlen(name);
    char small[256];
    char *tmp = n < sizeof small ? small : malloc(n + 1);
    if (!tmp)
        return sc_error(NULL, SUPCON_ERR_OUT_OF_MEMORY, "supcon_checkpoint_canonical_name: out of memory");
    sc_st_canonical(name, tmp);
    size_t m = strlen(tmp);
    supcon_status s = SUPCON_OK;
    if (m + 1 > out_size)
        s = sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT,
                     "supcon_checkpoint_canonical_name: out holds %zu bytes, %zu are needed", out_size, m + 1);
    else
        memcpy(out, tmp, m + 1);
    if (tmp != small) free(tmp);
    return s;
}

/* 1 when a and b are equal once "module" components are removed from both. */
static int sc_st_same_tensor(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return 1;
    size_t na = strlen(a), nb = strlen(b);
    char sa[256], sb[256];
    char *ca = na < sizeof sa ? sa : malloc(na + 1);
    char *cb = nb < sizeof sb ? sb : malloc(nb + 1);
    int same = 0;
    if (ca && cb) {
        sc_st_canonical(a, ca);
        sc_st_canonical(b, cb);
        same = strcmp(ca, cb) == 0;
    }
    if (ca != sa) free(ca);
    if (cb != sb) free(cb);
    return same;
}

/* ---- Lifetime and storage --------------------------------------------------------------- */

supcon_safetensors_config supcon_safetensors_config_default(void) {
    supcon_safetensors_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.max_header_bytes = 100000000u;
    c.max_data_bytes = 0;
    return c;
}

supcon_status supcon_safetensors_create(supcon_context *ctx, supcon_safetensors **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_safetensors_create: out is NULL");
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_safetensors_create: ctx is NULL");
    supcon_safetensors *st = calloc(1, sizeof *st);
    if (!st) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "supcon_safetensors_create: out of memory");
    st->ctx = ctx;
    *out = st;
    return SUPCON_OK;
}

void supcon_safetensors_free(supcon_safetensors *st) {
    if (!st) return;
    for (int64_t i = 0; i < st->count; i++) free(st->entries[i].name);
    for (int64_t i = 0; i < st->meta_count; i++) {
        free(st->meta_key[i]);
        free(st->meta_value[i]);
    }
    free(st->entries);
    free(st->meta_key);
    free(st->meta_value);
    free(st->data);
    free(st);
}

supcon_status sc_st_push_entry(supcon_safetensors *st, const sc_st_entry *e) {
    if (st->count == st->cap) {
        int64_t cap = st->cap ? st->cap * 2 : 16;
        sc_st_entry *n = realloc(st->entries, (size_t)cap * sizeof *n);
        if (!n) return SUPCON_ERR_OUT_OF_MEMORY;
        st->entries = n;
        st->cap = cap;
    }
    st->entries[st->count++] = *e;
    return SUPCON_OK;
}

supcon_status sc_st_push_metadata(supcon_safetensors *st, char *key, char *value) {
    if (st->meta_count == st->meta_cap) {
        int64_t cap = st->meta_cap ? st->meta_cap * 2 : 8;
        char **k = realloc(st->meta_key, (size_t)cap * sizeof *k);
        if (!k) return SUPCON_ERR_OUT_OF_MEMORY;
        st->meta_key = k;
        char **v = realloc(st->meta_value, (size_t)cap * sizeof *v);
        if (!v) return SUPCON_ERR_OUT_OF_MEMORY;
        st->meta_value = v;
        st->meta_cap = cap;
    }
    st->meta_key[st->meta_count] = key;
    st->meta_value[st->meta_count] = value;
    st->meta_count++;
    return SUPCON_OK;
}

static char *sc_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- Entries ------------------------------------------------------------------------------ */

supcon_status supcon_safetensors_add(supcon_safetensors *st, const char *name, supcon_dtype dtype, int ndim,
                                     const int64_t *shape, const void *data, size_t bytes) {
    static const char fn[] = "supcon_safetensors_add";
    if (!st) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: st is NULL", fn);
    supcon_context *ctx = st->ctx;
    char pn[160];
    if (!name || !*name) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: name is NULL or empty", fn);
    if (!sc_utf8_valid((const unsigned char *)name, strlen(name)))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: name '%s' is not UTF-8", fn,
                        sc_st_printable(name, pn, sizeof pn));
    if (strcmp(name, "__metadata__") == 0)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '__metadata__' is reserved for the metadata", fn);
    size_t esize = sc_st_dtype_size(dtype);
    if (!esize)
        return sc_error(ctx, SUPCON_ERR_DTYPE, "%s: entry '%s': dtype %d is not F32, I32 or I64", fn,
                        sc_st_printable(name, pn, sizeof pn), (int)dtype);
    if (ndim < 0 || ndim > SUPCON_MAX_DIMS || (ndim > 0 && !shape))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: entry '%s': ndim %d (shape %s) is not valid", fn,
                        sc_st_printable(name, pn, sizeof pn), ndim, shape ? "given" : "NULL");
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: entry '%s': shape[%d] = %lld is negative", fn,
                            sc_st_printable(name, pn, sizeof pn), d, (long long)shape[d]);
        if (shape[d] && numel > (int64_t)(SIZE_MAX / 16) / shape[d])
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: entry '%s': shape overflows", fn,
                            sc_st_printable(name, pn, sizeof pn));
        numel *= shape[d];
    }
    size_t want = (size_t)numel * esize;
    if (bytes != want || (!data && bytes))
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: entry '%s': %zu bytes given%s, its shape holds %zu",
                        fn, sc_st_printable(name, pn, sizeof pn), bytes, data ? "" : " (data NULL)", want);
    for (int64_t i = 0; i < st->count; i++)
        if (sc_st_same_tensor(st->entries[i].name, name)) {
            char po[160];
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: entry '%s' is already present%s%s%s", fn,
                            sc_st_printable(name, pn, sizeof pn),
                            strcmp(st->entries[i].name, name) ? " as '" : "",
                            strcmp(st->entries[i].name, name) ? sc_st_printable(st->entries[i].name, po, sizeof po)
                                                              : "",
                            strcmp(st->entries[i].name, name) ? "' (names equal without \"module.\")" : "");
        }

    /* Each entry starts 8-byte aligned in memory; the file layout is the writer's. */
    size_t off = (st->data_size + 7) & ~(size_t)7;
    if (off < st->data_size || want > SIZE_MAX - off)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: data too large", fn);
    size_t need = off + want;
    if (need > st->data_cap) {
        size_t cap = st->data_cap ? st->data_cap : 4096;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        unsigned char *nd = realloc(st->data, cap);
        if (!nd) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: no memory for %zu bytes", fn, cap);
        st->data = nd;
        st->data_cap = cap;
    }
    sc_st_entry e;
    memset(&e, 0, sizeof e);
    e.name = sc_strdup(name);
    if (!e.name) return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    e.dtype = dtype;
    e.ndim = ndim;
    for (int d = 0; d < ndim; d++) e.shape[d] = shape[d];
    e.numel = numel;
    e.bytes = want;
    e.offset = off;
    if (sc_st_push_entry(st, &e) != SUPCON_OK) {
        free(e.name);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (want) memcpy(st->data + off, data, want);
    st->data_size = need;
    return SUPCON_OK;
}

supcon_status supcon_safetensors_add_tensor(supcon_safetensors *st, const char *name, const supcon_tensor *t) {
    static const char fn[] = "supcon_safetensors_add_tensor";
    if (!st) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: st is NULL", fn);
    if (!t) return sc_error(st->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", fn);
    void *host = malloc(t->bytes ? t->bytes : 1);
    if (!host) return sc_error(st->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: no memory for %zu bytes", fn, t->bytes);
    supcon_status s = supcon_tensor_download(t, host, t->bytes);
    if (s == SUPCON_OK) s = supcon_safetensors_add(st, name, t->dtype, t->ndim, t->shape, host, t->bytes);
    else if (st->ctx != t->ctx) sc_error(st->ctx, s, "%s: %s", fn, supcon_context_last_error(t->ctx));
    free(host);
    return s;
}

int64_t supcon_safetensors_count(const supcon_safetensors *st) { return st ? st->count : 0; }

int64_t supcon_safetensors_find(const supcon_safetensors *st, const char *name) {
    if (!st || !name) return -1;
    for (int64_t i = 0; i < st->count; i++)
        if (strcmp(st->entries[i].name, name) == 0) return i;
    for (int64_t i = 0; i < st->count; i++)
        if (sc_st_same_tensor(st->entries[i].name, name)) return i;
    return -1;
}

static const sc_st_entry *sc_st_at(const supcon_safetensors *st, int64_t i) {
    return (st && i >= 0 && i < st->count) ? &st->entries[i] : NULL;
}

const char *supcon_safetensors_name(const supcon_safetensors *st, int64_t i) {
    const sc_st_entry *e = sc_st_at(st, i);
    return e ? e->name : NULL;
}

supcon_dtype supcon_safetensors_dtype(const supcon_safetensors *st, int64_t i) {
    const sc_st_entry *e = sc_st_at(st, i);
    return e ? e->dtype : (supcon_dtype)-1;
}

int supcon_safetensors_ndim(const supcon_safetensors *st, int64_t i) {
    const sc_st_entry *e = sc_st_at(st, i);
    return e ? e->ndim : -1;
}

int64_t supcon_safetensors_dim(const supcon_safetensors *st, int64_t i, int d) {
    const sc_st_entry *e = sc_st_at(st, i);
    return (e && d >= 0 && d < e->ndim) ? e->shape[d] : -1;
}

int64_t supcon_safetensors_numel(const supcon_safetensors *st, int64_t i) {
    const sc_st_entry *e = sc_st_at(st, i);
    return e ? e->numel : -1;
}

size_t supcon_safetensors_bytes(const supcon_safetensors *st, int64_t i) {
    const sc_st_entry *e = sc_st_at(st, i);
    return e ? e->bytes : 0;
}

const void *supcon_safetensors_data(const supcon_safetensors *st, int64_t i) {
    static const uint64_t empty = 0;
    const sc_st_entry *e = sc_st_at(st, i);
    if (!e) return NULL;
    return st->data ? (const void *)(st->data + e->offset) : (const void *)&empty;
}

static void sc_shape_text(const int64_t *shape, int ndim, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int d = 0; d < ndim && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

supcon_status supcon_safetensors_read_tensor(const supcon_safetensors *st, int64_t i, supcon_tensor *t) {
    static const char fn[] = "supcon_safetensors_read_tensor";
    if (!st) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: st is NULL", fn);
    const sc_st_entry *e = sc_st_at(st, i);
    if (!e)
        return sc_error(st->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: index %lld is not in 0..%lld", fn,
                        (long long)i, (long long)st->count - 1);
    if (!t) return sc_error(st->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", fn);
    supcon_context *ctx = t->ctx;
    char pn[160];
    if (e->dtype != t->dtype)
        return sc_error(ctx, SUPCON_ERR_DTYPE, "%s: entry '%s' is %s, the tensor is %s", fn,
                        sc_st_printable(e->name, pn, sizeof pn), sc_st_dtype_name(e->dtype),
                        sc_st_dtype_name(t->dtype) ? sc_st_dtype_name(t->dtype) : "?");
    int same = e->ndim == t->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == t->shape[d];
    if (!same) {
        char a[200], b[200];
        sc_shape_text(e->shape, e->ndim, a, sizeof a);
        sc_shape_text(t->shape, t->ndim, b, sizeof b);
        return sc_error(ctx, SUPCON_ERR_SHAPE, "%s: entry '%s' has shape %s, the tensor %s", fn,
                        sc_st_printable(e->name, pn, sizeof pn), a, b);
    }
    return supcon_tensor_upload(t, supcon_safetensors_data(st, i), e->bytes);
}

/* ---- Metadata ----------------------------------------------------------------------------- */

supcon_status supcon_safetensors_set_metadata(supcon_safetensors *st, const char *key, const char *value) {
    static const char fn[] = "supcon_safetensors_set_metadata";
    if (!st) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: st is NULL", fn);
    if (!key || !*key || !value)
        return sc_error(st->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s", fn,
                        !key || !*key ? "key is NULL or empty" : "value is NULL");
    char pk[160];
    if (!sc_utf8_valid((const unsigned char *)key, strlen(key)) ||
        !sc_utf8_valid((const unsigned char *)value, strlen(value)))
        return sc_error(st->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: key '%s' or its value is not UTF-8", fn,
                        sc_st_printable(key, pk, sizeof pk));
    char *v = sc_strdup(value);
    if (!v) return sc_error(st->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    for (int64_t i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_key[i], key) == 0) {
            free(st->meta_value[i]);
            st->meta_value[i] = v;
            return SUPCON_OK;
        }
    char *k = sc_strdup(key);
    if (!k || sc_st_push_metadata(st, k, v) != SUPCON_OK) {
        free(k);
        free(v);
        return sc_error(st->ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    return SUPCON_OK;
}

const char *supcon_safetensors_metadata(const supcon_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int64_t i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta_key[i], key) == 0) return st->meta_value[i];
    return NULL;
}

int64_t supcon_safetensors_metadata_count(const supcon_safetensors *st) { return st ? st->meta_count : 0; }

const char *supcon_safetensors_metadata_key(const supcon_safetensors *st, int64_t i) {
    return (st && i >= 0 && i < st->meta_count) ? st->meta_key[i] : NULL;
}

const char *supcon_safetensors_metadata_value(const supcon_safetensors *st, int64_t i) {
    return (st && i >= 0 && i < st->meta_count) ? st->meta_value[i] : NULL;
}

/* ---- Files -------------------------------------------------------------------------------- */

static supcon_status sc_st_check_cfg(supcon_context *ctx, const char *fn, const supcon_safetensors_config *cfg,
                                     supcon_safetensors **out) {
    if (!out) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!ctx) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    if (cfg && cfg->struct_size != sizeof *cfg)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg->struct_size is %zu, expected %zu", fn,
                        cfg->struct_size, sizeof *cfg);
    return SUPCON_OK;
}

supcon_status supcon_safetensors_load(supcon_context *ctx, const char *path, const supcon_safetensors_config *cfg,
                                      supcon_safetensors **out) {
    supcon_status s = sc_st_check_cfg(ctx, "supcon_safetensors_load", cfg, out);
    if (s != SUPCON_OK) return s;
    if (!path) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_safetensors_load: path is NULL");
    supcon_safetensors_config d = supcon_safetensors_config_default();
    return sc_st_load_file(ctx, path, cfg ? cfg : &d, out);
}

supcon_status supcon_safetensors_parse(supcon_context *ctx, const void *data, size_t size,
                                       const supcon_safetensors_config *cfg, supcon_safetensors **out) {
    supcon_status s = sc_st_check_cfg(ctx, "supcon_safetensors_parse", cfg, out);
    if (s != SUPCON_OK) return s;
    if (!data && size) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_safetensors_parse: data is NULL");
    supcon_safetensors_config d = supcon_safetensors_config_default();
    return sc_st_parse_memory(ctx, "<memory>", data, size, cfg ? cfg : &d, out);
}
