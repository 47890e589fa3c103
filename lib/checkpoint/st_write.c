/* Writing safetensors files: the JSON header (entries in insertion order, their bytes laid
 * out widest element first so that every tensor is aligned, the header padded with spaces
 * to a multiple of 8 as Python's safetensors does), and the atomic replacement of the file:
 * temporary file in the same folder, write, fsync, rename, fsync of the folder. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "error.h"

typedef struct sc_out {
    char *d;
    size_t n, cap;
    int failed;
} sc_out;

static void out_put(sc_out *o, const char *s, size_t n) {
    if (o->failed) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->n + n + 1) cap *= 2;
        char *d = realloc(o->d, cap);
        if (!d) {
            o->failed = 1;
            return;
        }
        o->d = d;
        o->cap = cap;
    }
    memcpy(o->d + o->n, s, n);
    o->n += n;
    o->d[o->n] = '\0';
}

static void out_str(sc_out *o, const char *s) { out_put(o, s, strlen(s)); }

static void out_fmt_u64(sc_out *o, unsigned long long v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%llu", v);
    out_put(o, b, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped, UTF-8 kept as is. */
static void out_json(sc_out *o, const char *s) {
    static const char hex[] = "0123456789abcdef";
    out_put(o, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out_put(o, run, (size_t)(s - run));
        run = s + 1;
        char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
            k = 6;
        }
        out_put(o, e, k);
    }
    out_put(o, run, (size_t)(s - run));
    out_put(o, "\"", 1);
}

/* The header (padded) and the order in which the entries' bytes follow it. order holds
 * st->count indices. Returns 0 when out of memory. */
static int sc_st_header(const supcon_safetensors *st, sc_out *o, int64_t *order) {
    int64_t k = 0;
    for (int64_t i = 0; i < st->count; i++)
        if (sc_st_dtype_size(st->entries[i].dtype) == 8) order[k++] = i;
    for (int64_t i = 0; i < st->count; i++)
        if (sc_st_dtype_size(st->entries[i].dtype) != 8) order[k++] = i;
    /* file offset of each entry, by entry index */
    uint64_t *begin = malloc((size_t)(st->count ? st->count : 1) * sizeof *begin);
    if (!begin) return 0;
    uint64_t at = 0;
    for (int64_t j = 0; j < st->count; j++) {
        begin[order[j]] = at;
        at += st->entries[order[j]].bytes;
    }

    out_put(o, "{", 1);
    int first = 1;
    if (st->meta_count) {
        out_str(o, "\"__metadata__\":{");
        for (int64_t i = 0; i < st->meta_count; i++) {
            if (i) out_put(o, ",", 1);
            out_json(o, st->meta_key[i]);
            out_put(o, ":", 1);
            out_json(o, st->meta_value[i]);
        }
        out_put(o, "}", 1);
        first = 0;
    }
    for (int64_t i = 0; i < st->count; i++) {
        const sc_st_entry *e = &st->entries[i];
        if (!first) out_put(o, ",", 1);
        first = 0;
        out_json(o, e->name);
        out_str(o, ":{\"dtype\":\"");
        out_str(o, sc_st_dtype_name(e->dtype));
        out_str(o, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) out_put(o, ",", 1);
            out_fmt_u64(o, (unsigned long long)e->shape[d]);
        }
        out_str(o, "],\"data_offsets\":[");
        out_fmt_u64(o, (unsigned long long)begin[i]);
        out_put(o, ",", 1);
        out_fmt_u64(o, (unsigned long long)(begin[i] + e->bytes));
        out_str(o, "]}");
    }
    out_put(o, "}", 1);
    while (!o->failed && o->n % 8) out_put(o, " ", 1);
    free(begin);
    return !o->failed;
}

static void sc_le64(unsigned char b[8], uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}

supcon_status sc_st_serialize(const supcon_safetensors *st, unsigned char **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    sc_out o = {NULL, 0, 0, 0};
    int64_t *order = malloc((size_t)(st->count ? st->count : 1) * sizeof *order);
    if (!order || !sc_st_header(st, &o, order)) {
        free(order);
        free(o.d);
        return sc_error(st->ctx, SUPCON_ERR_OUT_OF_MEMORY, "safetensors: out of memory for the header");
    }
    size_t total = 8 + o.n;
    for (int64_t i = 0; i < st->count; i++) total += st->entries[i].bytes;
    unsigned char *b = malloc(total);
    if (!b) {
        free(order);
        free(o.d);
        return sc_error(st->ctx, SUPCON_ERR_OUT_OF_MEMORY, "safetensors: no memory for %zu bytes", total);
    }
    sc_le64(b, (uint64_t)o.n);
    memcpy(b + 8, o.d, o.n);
    size_t at = 8 + o.n;
    for (int64_t j = 0; j < st->count; j++) {
        const sc_st_entry *e = &st->entries[order[j]];
        if (e->bytes) memcpy(b + at, st->data + e->offset, e->bytes);
        at += e->bytes;
    }
    free(order);
    free(o.d);
    *buf = b;
    *size = total;
    return SUPCON_OK;
}

/* ---- Atomic replacement -------------------------------------------------------------------- */

static const char *sc_errno_text(int e, char *buf, size_t len) {
    if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
    return buf;
}

/* 0 on success, else errno. */
static int sc_write_all(int fd, const void *src, size_t n, uint64_t *written) {
    const char *p = src;
    while (n) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = write(fd, p, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno;
        if (r == 0) return ENOSPC;
        p += r;
        n -= (size_t)r;
        *written += (uint64_t)r;
    }
    return 0;
}

supcon_status supcon_safetensors_save(const supcon_safetensors *st, const char *path) {
    static const char fn[] = "supcon_safetensors_save";
    if (!st) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: st is NULL", fn);
    supcon_context *ctx = st->ctx;
    if (!path || !*path) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: path is NULL or empty", fn);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: '%s' names a folder, not a file", fn, path);
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dir_len + 2);
    char *tmp = malloc(strlen(path) + 64);
    sc_out o = {NULL, 0, 0, 0};
    int64_t *order = malloc((size_t)(st->count ? st->count : 1) * sizeof *order);
    if (!dir || !tmp || !order || !sc_st_header(st, &o, order)) {
        free(dir), free(tmp), free(order), free(o.d);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    if (slash) {
        memcpy(dir, path, dir_len);
        dir[dir_len] = '\0';
        if (dir_len == 0) strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }

    char why[128];
    supcon_status s = SUPCON_OK;
    int fd = -1, e = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long salt = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 30) ^
                              (unsigned long long)(uintptr_t)st;
    for (int attempt = 0; attempt < 32 && fd < 0; attempt++) {
        snprintf(tmp, strlen(path) + 64, "%.*s%s.%s.tmp-%ld-%llx", (int)dir_len, path, slash ? "/" : "", base,
                 (long)getpid(), (salt + (unsigned long long)attempt * 0x9E3779B97F4A7C15ull) & 0xFFFFFFFFFFull);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        e = fd < 0 ? errno : 0;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd < 0) {
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: cannot create a temporary file in '%s' for '%s': %s", fn, dir, path,
                     sc_errno_text(e, why, sizeof why));
        goto done;
    }

    unsigned char len8[8];
    sc_le64(len8, (uint64_t)o.n);
    uint64_t written = 0;
    e = sc_write_all(fd, len8, 8, &written);
    if (!e) e = sc_write_all(fd, o.d, o.n, &written);
    for (int64_t j = 0; j < st->count && !e; j++) {
        const sc_st_entry *en = &st->entries[order[j]];
        if (en->bytes) e = sc_write_all(fd, st->data + en->offset, en->bytes, &written);
    }
    if (e) {
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: writing '%s' failed at byte %llu: %s ('%s' is unchanged)", fn, tmp,
                     (unsigned long long)written, sc_errno_text(e, why, sizeof why), path);
        goto cleanup;
    }
    if (fsync(fd) != 0) {
        e = errno;
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: fsync of '%s' failed: %s ('%s' is unchanged)", fn, tmp,
                     sc_errno_text(e, why, sizeof why), path);
        goto cleanup;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        e = errno;
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: closing '%s' failed: %s ('%s' is unchanged)", fn, tmp,
                     sc_errno_text(e, why, sizeof why), path);
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: cannot rename '%s' to '%s': %s ('%s' is unchanged)", fn, tmp, path,
                     sc_errno_text(e, why, sizeof why), path);
        goto cleanup;
    }
    /* The rename is durable only once the folder's entry is on disk. Some file systems do
     * not sync folders (EINVAL): the file itself is complete either way. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP)) {
        e = errno;
        s = sc_error(ctx, SUPCON_ERR_IO, "%s: '%s' is written, but syncing its folder '%s' failed: %s", fn, path, dir,
                     sc_errno_text(e, why, sizeof why));
    }
    if (dfd >= 0) close(dfd);
    goto done;

cleanup:
    if (fd >= 0) close(fd);
    unlink(tmp);
done:
    free(dir), free(tmp), free(order), free(o.d);
    return s;
}
