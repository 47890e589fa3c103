/* Models in checkpoints: the model's table (model.h) to entries and back, with PyTorch's
 * strict load_state_dict semantics over the whole model or a part of it (a name prefix).
 * Only the public model API is used, so any backend's model works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "error.h"
#include "supcon/model.h"

supcon_status supcon_checkpoint_add_model(supcon_safetensors *file, const supcon_model *m) {
    static const char fn[] = "supcon_checkpoint_add_model";
    if (!file || !m)
        return sc_error(file ? file->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        file ? "model" : "file");
    const int64_t n = supcon_model_param_count(m);
    for (int64_t i = 0; i < n; i++) {
        const supcon_param_info *p = supcon_model_param(m, i);
        if (supcon_safetensors_find(file, p->name) >= 0)
            return sc_error(file->ctx, SUPCON_ERR_INVALID_ARGUMENT, "%s: the file already holds '%s'", fn, p->name);
    }
    for (int64_t i = 0; i < n; i++) {
        const supcon_param_info *p = supcon_model_param(m, i);
        supcon_status s = supcon_safetensors_add_tensor(file, p->name, p->value);
        if (s != SUPCON_OK) return s;
    }
    return SUPCON_OK;
}

/* A bounded list of names for a message: "a, b, c (and 7 more)". */
typedef struct sc_names {
    char text[600];
    size_t len;
    int64_t count, shown;
} sc_names;

static void names_add(sc_names *l, const char *name) {
    l->count++;
    size_t n = strlen(name);
    if (l->len + n + 3 >= sizeof l->text - 40) return;
    l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s%s", l->shown ? ", " : "", name);
    l->shown++;
}

static const char *names_text(sc_names *l) {
    if (l->count > l->shown)
        snprintf(l->text + l->len, sizeof l->text - l->len, " (and %lld more)", (long long)(l->count - l->shown));
    return l->text;
}

static int starts(const char *s, const char *prefix, size_t plen) { return !plen || strncmp(s, prefix, plen) == 0; }

supcon_status supcon_checkpoint_load_model(const supcon_safetensors *file, supcon_model *m, const char *prefix) {
    static const char fn[] = "supcon_checkpoint_load_model";
    if (!file || !m)
        return sc_error(file ? file->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        file ? "model" : "file");
    supcon_context *ctx = file->ctx;
    const size_t plen = prefix ? strlen(prefix) : 0;
    const int64_t n = supcon_model_param_count(m);
    int64_t *src = malloc((size_t)(n ? n : 1) * sizeof *src);
    sc_names *missing = calloc(1, sizeof *missing), *extra = calloc(1, sizeof *extra);
    char *canon = NULL;
    supcon_status s = SUPCON_OK;
    char pn[160];
    if (!src || !missing || !extra) {
        s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out;
    }
    for (int64_t i = 0; i < n && s == SUPCON_OK; i++) {
        const supcon_param_info *p = supcon_model_param(m, i);
        src[i] = -1;
        if (!starts(p->name, prefix, plen)) continue;
        const int64_t j = supcon_safetensors_find(file, p->name);
        if (j < 0) {
            names_add(missing, p->name);
            continue;
        }
        const sc_st_entry *e = &file->entries[j];
        if (e->dtype != p->dtype) {
            s = sc_error(ctx, SUPCON_ERR_DTYPE, "%s: entry '%s' is %s, the model's '%s' is %s", fn,
                         sc_st_printable(e->name, pn, sizeof pn), sc_st_dtype_name(e->dtype), p->name,
                         sc_st_dtype_name(p->dtype) ? sc_st_dtype_name(p->dtype) : "?");
            break;
        }
        int same = e->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
        if (!same) {
            char a[160] = "[", b[160] = "[";
            for (int d = 0; d < e->ndim; d++)
                snprintf(a + strlen(a), sizeof a - strlen(a), d ? ", %lld" : "%lld", (long long)e->shape[d]);
            for (int d = 0; d < p->ndim; d++)
                snprintf(b + strlen(b), sizeof b - strlen(b), d ? ", %lld" : "%lld", (long long)p->shape[d]);
            s = sc_error(ctx, SUPCON_ERR_SHAPE, "%s: entry '%s' has shape %s], the model's '%s' %s]", fn,
                         sc_st_printable(e->name, pn, sizeof pn), a, p->name, b);
            break;
        }
        src[i] = j;
    }
    if (s != SUPCON_OK) goto out;
    for (int64_t j = 0; j < file->count; j++) {
        const char *name = file->entries[j].name;
        free(canon);
        canon = malloc(strlen(name) + 1);
        if (!canon) {
            s = sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
            goto out;
        }
        sc_st_canonical(name, canon);
        if (strncmp(canon, "optimizer.", 10) == 0 || !starts(canon, prefix, plen)) continue;
        const int64_t k = supcon_model_param_find(m, name);
        if (k < 0 || !starts(supcon_model_param(m, k)->name, prefix, plen))
            names_add(extra, sc_st_printable(name, pn, sizeof pn));
    }
    if (missing->count || extra->count) {
        char msg[1400] = "";
        if (missing->count)
            snprintf(msg, sizeof msg, "%lld of the model's entries are not in the file: %s", (long long)missing->count,
                     names_text(missing));
        if (extra->count)
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s%lld entries of the file are not the model's: %s",
                     missing->count ? "; " : "", (long long)extra->count, names_text(extra));
        s = sc_error(ctx, SUPCON_ERR_FORMAT, "%s%s%s%s: %s", fn, plen ? " (prefix '" : "", plen ? prefix : "",
                     plen ? "')" : "", msg);
        goto out;
    }
    for (int64_t i = 0; i < n && s == SUPCON_OK; i++)
        if (src[i] >= 0) s = supcon_safetensors_read_tensor(file, src[i], supcon_model_param(m, i)->value);
out:
    free(src);
    free(missing);
    free(extra);
    free(canon);
    return s;
}
