/* Helpers shared by the data tests: a scratch folder that is removed afterwards, writing
 * files, and a context with defaults. Header-only so each test stays one translation unit.
 * Include after defining _XOPEN_SOURCE 700 (mkdtemp, nftw, symlink). */
#ifndef SUPCON_TEST_DATA_UTIL_H
#define SUPCON_TEST_DATA_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supcon/supcon.h"

static inline supcon_context *td_context(void) {
    supcon_context_config cfg = supcon_context_config_default();
    cfg.backend = SUPCON_BACKEND_CPU;
    cfg.num_threads = 1;
    supcon_context *ctx = NULL;
    if (supcon_context_create(&cfg, &ctx) != SUPCON_OK) {
        fprintf(stderr, "cannot create a context: %s\n", supcon_context_last_error(NULL));
        exit(1);
    }
    return ctx;
}

/* A fresh folder under $TMPDIR (or /tmp); the caller frees the string. */
static inline char *td_mkdtemp(const char *tag) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *p = malloc(strlen(base) + strlen(tag) + 32);
    sprintf(p, "%s/supcon-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        exit(1);
    }
    return p;
}

static int td_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf dir (links are removed, not followed) */
static inline void td_rm_rf(const char *dir) { nftw(dir, td_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* dir/name as a new string (static ring of buffers: fine for a few at a time) */
static inline const char *td_path(const char *dir, const char *name) {
    static char ring[8][4096];
    static int k = 0;
    char *b = ring[k++ & 7];
    snprintf(b, sizeof ring[0], "%.3000s/%.1000s", dir, name);
    return b;
}

static inline void td_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0) {
        perror(path);
        exit(1);
    }
}

static inline void td_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Whole file into memory (exits on failure); *n receives the size. */
static inline unsigned char *td_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) exit(1);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Does the last error of ctx mention `what`? */
static inline int td_error_mentions(supcon_context *ctx, const char *what) {
    const char *m = supcon_context_last_error(ctx);
    if (!strstr(m, what)) {
        fprintf(stderr, "error message \"%s\" does not mention \"%s\"\n", m, what);
        return 0;
    }
    return 1;
}

#endif
