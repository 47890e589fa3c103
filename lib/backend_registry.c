/* Backend selection: AUTO -> $SUPCON_BACKEND -> CUDA if usable -> CPU. The CUDA module is
 * looked for at $SUPCON_CUDA_MODULE, then beside libsupcon itself, then on the loader's
 * search path. Any failure there is a status with the loader's or the driver's reason. */
#include "registry.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static supcon_status sc_open_ops(supcon_context *ctx, const supcon_backend_ops *ops) {
    if (!ops || ops->abi != SUPCON_BACKEND_ABI)
        return sc_error(ctx, SUPCON_ERR_BACKEND_UNAVAILABLE,
                        "backend '%s' was built for backend ABI %u, this libsupcon needs %u",
                        ops && ops->name ? ops->name : "?", ops ? ops->abi : 0u,
                        SUPCON_BACKEND_ABI);
    const int stages = !!ops->stage_create + !!ops->stage_destroy + !!ops->stage_release + !!ops->stage_upload;
    if (stages != 0 && stages != 4)
        return sc_error(ctx, SUPCON_ERR_BACKEND_UNAVAILABLE,
                        "backend '%s' fills %d of the 4 staged-upload slots (all or none)", ops->name, stages);
    supcon_backend_init init = {.device = ctx->device,
                                .num_threads = ctx->num_threads,
                                .precision = (int)ctx->precision};
    char msg[SUPCON_BACKEND_MSG_LEN] = "";
    supcon_status s = ops->init(&init, &ctx->state, msg, sizeof msg);
    if (s != SUPCON_OK) {
        ctx->state = NULL;
        return sc_error(ctx, s, "%s backend: %s", ops->name, msg[0] ? msg : supcon_status_string(s));
    }
    ctx->ops = ops;
    return SUPCON_OK;
}

/* Path of the folder holding libsupcon (or the program, when linked statically). */
static int sc_own_folder(char *buf, size_t len) {
    Dl_info info;
    if (!dladdr((void *)&sc_backend_open, &info) || !info.dli_fname) return 0;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash) return 0;
    size_t n = (size_t)(slash - info.dli_fname);
    if (n + 1 > len) return 0;
    memcpy(buf, info.dli_fname, n);
    buf[n] = '\0';
    return 1;
}

static void *sc_dlopen_cuda(char *why, size_t why_len) {
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE; /* CUDA must never be unloaded */
    const char *env = getenv("SUPCON_CUDA_MODULE");
    if (env && *env) {
        void *h = dlopen(env, flags);
        if (!h) snprintf(why, why_len, "%s", dlerror());
        return h;
    }
    char dir[4096], path[4200];
    if (sc_own_folder(dir, sizeof dir)) {
        snprintf(path, sizeof path, "%s/%s", dir, SUPCON_CUDA_MODULE_NAME);
        void *h = dlopen(path, flags);
        if (h) return h;
        snprintf(why, why_len, "%s", dlerror());
        /* A module that exists but fails to load (missing libcudart) is the real reason. */
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            return NULL;
        }
    }
    void *h = dlopen(SUPCON_CUDA_MODULE_NAME, flags);
    if (!h) snprintf(why, why_len, "%s", dlerror());
    return h;
}

static supcon_status sc_open_cuda(supcon_context *ctx) {
    char why[1024] = "";
    void *h = sc_dlopen_cuda(why, sizeof why);
    if (!h)
        return sc_error(ctx, SUPCON_ERR_BACKEND_UNAVAILABLE,
                        "CUDA backend module could not be loaded (%s)", why);
    supcon_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, SUPCON_CUDA_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(h);
        return sc_error(ctx, SUPCON_ERR_BACKEND_UNAVAILABLE,
                        "CUDA backend module has no symbol %s", SUPCON_CUDA_ENTRY_SYMBOL);
    }
    supcon_status s = sc_open_ops(ctx, entry());
    if (s != SUPCON_OK) {
        dlclose(h);
        return s;
    }
    ctx->module = h;
    ctx->kind = SUPCON_BACKEND_CUDA;
    return SUPCON_OK;
}

static supcon_status sc_open_cpu(supcon_context *ctx) {
    supcon_status s = sc_open_ops(ctx, sc_cpu_backend());
    if (s == SUPCON_OK) ctx->kind = SUPCON_BACKEND_CPU;
    return s;
}

supcon_status sc_backend_open(supcon_context *ctx, supcon_backend_kind kind) {
    if (kind == SUPCON_BACKEND_AUTO) {
        const char *env = getenv("SUPCON_BACKEND");
        if (env && *env && strcmp(env, "auto") != 0) {
            if (strcmp(env, "cpu") == 0) return sc_open_cpu(ctx);
            if (strcmp(env, "cuda") == 0) return sc_open_cuda(ctx);
            return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                            "SUPCON_BACKEND='%s' is not one of auto, cpu, cuda", env);
        }
        if (sc_open_cuda(ctx) == SUPCON_OK) return SUPCON_OK;
        sc_log(ctx, SUPCON_LOG_INFO, "using the CPU backend: %s", ctx->last_error);
        ctx->last_error[0] = '\0';
        return sc_open_cpu(ctx);
    }
    if (kind == SUPCON_BACKEND_CPU) return sc_open_cpu(ctx);
    if (kind == SUPCON_BACKEND_CUDA) return sc_open_cuda(ctx);
    return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "config.backend %d is not a supcon_backend_kind",
                    (int)kind);
}

void sc_backend_close(supcon_context *ctx) {
    if (ctx->ops && ctx->state) ctx->ops->shutdown(ctx->state);
    ctx->ops = NULL;
    ctx->state = NULL;
    if (ctx->module) dlclose(ctx->module);
    ctx->module = NULL;
}
