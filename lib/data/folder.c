/* Image folders, as torchvision's ImageFolder: classes are the sub-folders of the root
 * sorted by name (index = rank); each class folder is walked recursively, following links,
 * taking files whose names end in an image extension (case-insensitive), ordered as
 * sorted(os.walk()) then sorted(file names). Other files are ignored, as torchvision does.
 * Every image is decoded at open; see docs/data.md. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"
#include "error.h"

#define MAX_DEPTH 32

typedef struct entry {
    char *dir;  /* folder holding the file */
    char *name; /* file name */
} entry;

typedef struct entry_list {
    entry *v;
    size_t n, cap;
} entry_list;

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (s) {
        memcpy(s, a, la);
        s[la] = '/';
        memcpy(s + la + 1, b, lb + 1);
    }
    return s;
}

static char *dup(const char *a)
{
    size_t n = strlen(a) + 1;
    char *s = malloc(n);
    if (s)
        memcpy(s, a, n);
    return s;
}

static int names_push(name_list *l, char *s)
{
    if (!s)
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            free(s);
            return 0;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return 1;
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void entries_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].dir);
        free(l->v[i].name);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

/* torchvision's IMG_EXTENSIONS */
static int has_image_extension(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                      ".pgm", ".tif",  ".tiff", ".webp"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++) {
        size_t m = strlen(ext[k]);
        if (n < m)
            continue;
        size_t i = 0;
        while (i < m) {
            char c = name[n - m + i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != ext[k][i])
                break;
            i++;
        }
        if (i == m)
            return 1;
    }
    return 0;
}

/* Names in dir (not . and ..), sorted; dirs_only keeps those that are (or link to) folders. */
static supcon_status list_dir(supcon_context *ctx, const char *dir, name_list *dirs,
                              name_list *files)
{
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        char why[128];
        if (strerror_r(e, why, sizeof why) != 0)
            snprintf(why, sizeof why, "error %d", e);
        return sc_error(ctx, SUPCON_ERR_IO, "cannot open folder '%s': %s", dir, why);
    }
    supcon_status st = SUPCON_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = join(dir, de->d_name);
        if (!full) {
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'", dir);
            break;
        }
        struct stat sb;
        int is_dir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode); /* follows links */
        free(full);
        name_list *to = is_dir ? dirs : files;
        if (to && !names_push(to, dup(de->d_name))) {
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'", dir);
            break;
        }
    }
    closedir(d);
    if (dirs && dirs->n)
        qsort(dirs->v, dirs->n, sizeof *dirs->v, cmp_str);
    if (files && files->n)
        qsort(files->v, files->n, sizeof *files->v, cmp_str);
    return st;
}

static supcon_status walk(supcon_context *ctx, const char *dir, int depth, entry_list *out)
{
    if (depth > MAX_DEPTH)
        return sc_error(ctx, SUPCON_ERR_FORMAT,
                        "folder '%s' is nested more than %d levels deep (a link loop?)", dir,
                        MAX_DEPTH);
    name_list dirs = {0}, files = {0};
    supcon_status st = list_dir(ctx, dir, &dirs, &files);
    for (size_t i = 0; st == SUPCON_OK && i < files.n; i++) {
        if (!has_image_extension(files.v[i]))
            continue;
        if (out->n == out->cap) {
            size_t nc = out->cap ? 2 * out->cap : 64;
            entry *nv = realloc(out->v, nc * sizeof *nv);
            if (!nv) {
                st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'", dir);
                break;
            }
            out->v = nv;
            out->cap = nc;
        }
        entry e = {dup(dir), files.v[i]};
        files.v[i] = NULL;
        if (!e.dir) {
            free(e.name);
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'", dir);
            break;
        }
        out->v[out->n++] = e;
    }
    for (size_t i = 0; st == SUPCON_OK && i < dirs.n; i++) {
        char *sub = join(dir, dirs.v[i]);
        if (!sub) {
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'", dir);
            break;
        }
        st = walk(ctx, sub, depth + 1, out);
        free(sub);
    }
    names_free(&dirs);
    names_free(&files);
    return st;
}

/* Read and decode one file, appending it to ds. */
static supcon_status load_one(supcon_context *ctx, const char *path, int64_t label,
                              int64_t max_pixels, supcon_dataset *ds)
{
    uint8_t *data = NULL;
    size_t size = 0;
    supcon_status st = sc_read_file(ctx, path, &data, &size);
    if (st != SUPCON_OK)
        return st;
    sc_picture pic;
    st = sc_image_decode(ctx, path, data, size, max_pixels, &pic);
    free(data);
    if (st != SUPCON_OK)
        return st;
    st = sc_images_push(ctx, &ds->im, pic.pixels, SUPCON_LAYOUT_HWC, pic.channels, pic.height,
                        pic.width, label);
    free(pic.pixels);
    return st;
}

supcon_status sc_folder_open(supcon_context *ctx, const supcon_dataset_config *cfg,
                             supcon_dataset *ds)
{
    ds->im.channels = cfg->channels ? cfg->channels : 3;
    name_list classes = {0};
    supcon_status st = list_dir(ctx, cfg->path, &classes, NULL);
    if (st != SUPCON_OK) {
        names_free(&classes);
        return st;
    }
    if (classes.n == 0) {
        names_free(&classes);
        return sc_error(ctx, SUPCON_ERR_FORMAT, "image folder '%s' has no class sub-folders",
                        cfg->path);
    }
    if (classes.n > 1000000) {
        names_free(&classes);
        return sc_error(ctx, SUPCON_ERR_FORMAT, "image folder '%s' has too many classes",
                        cfg->path);
    }
    st = sc_set_class_names(ctx, ds, (int)classes.n, (const char *const *)classes.v);
    for (size_t c = 0; st == SUPCON_OK && c < classes.n; c++) {
        char *cdir = join(cfg->path, classes.v[c]);
        if (!cdir) {
            st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'",
                          cfg->path);
            break;
        }
        entry_list files = {0};
        st = walk(ctx, cdir, 0, &files);
        if (st == SUPCON_OK && files.n == 0)
            st = sc_error(ctx, SUPCON_ERR_FORMAT,
                          "image folder: class folder '%s' holds no image file (.png, .jpg, "
                          ".jpeg; as torchvision, other names are ignored)",
                          cdir);
        if (st == SUPCON_OK)
            qsort(files.v, files.n, sizeof *files.v, cmp_entry);
        for (size_t i = 0; st == SUPCON_OK && i < files.n; i++) {
            char *path = join(files.v[i].dir, files.v[i].name);
            if (!path) {
                st = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory while listing '%s'",
                              cdir);
                break;
            }
            st = load_one(ctx, path, (int64_t)c, cfg->max_pixels, ds);
            if (st != SUPCON_OK && st != SUPCON_ERR_OUT_OF_MEMORY && cfg->skip_bad_images) {
                sc_log(ctx, SUPCON_LOG_WARNING, "skipped %s", supcon_context_last_error(ctx));
                ds->skipped++;
                st = SUPCON_OK;
            }
            free(path);
        }
        entries_free(&files);
        free(cdir);
    }
    names_free(&classes);
    return st;
}
