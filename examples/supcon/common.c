/* Set-up shared by the subcommands: the context from --device/--seed, data sets and their
 * normalisation, transforms, loaders, the save folder named as the reference names it, and
 * the Ctrl-C flag. Each helper prints its own error and returns NULL / non-zero. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

volatile int cli_interrupted = 0;

static void on_signal(int sig) {
    (void)sig;
    cli_interrupted = 1;
    /* a second Ctrl-C ends the process at once */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_fail(supcon_context *ctx, supcon_status st, const char *what) {
    fprintf(stderr, "supcon: %s: %s: %s\n", what, supcon_status_string(st), supcon_context_last_error(ctx));
    return CLI_EXIT_ERROR;
}

supcon_context *cli_context(const cli_options *o) {
    supcon_context_config c = supcon_context_config_default();
    c.backend = strcmp(o->device, "cpu") == 0    ? SUPCON_BACKEND_CPU
                : strcmp(o->device, "cuda") == 0 ? SUPCON_BACKEND_CUDA
                                                  : SUPCON_BACKEND_AUTO;
    c.seed = o->seed;
    c.num_threads = o->threads;
    c.precision = strcmp(o->precision, "tf32") == 0   ? SUPCON_PRECISION_TF32
                  : strcmp(o->precision, "bf16") == 0 ? SUPCON_PRECISION_BF16
                                                      : SUPCON_PRECISION_FP32;
    supcon_context *ctx = NULL;
    supcon_status st = supcon_context_create(&c, &ctx);
    if (st != SUPCON_OK) {
        fprintf(stderr, "supcon: cannot start the %s backend: %s: %s\n", o->device, supcon_status_string(st),
                supcon_context_last_error(NULL));
        return NULL;
    }
    if (c.backend == SUPCON_BACKEND_AUTO && supcon_context_backend(ctx) != SUPCON_BACKEND_CPU) {
        /* A backend may offer the loss but not yet the network layers: auto then means CPU. */
        supcon_model_config mc = supcon_model_config_default();
        mc.arch = SUPCON_RESNET18;
        mc.width = 1;
        supcon_model *probe = NULL;
        const supcon_status ps = supcon_model_create(ctx, &mc, &probe);
        supcon_model_free(probe);
        if (ps == SUPCON_ERR_UNSUPPORTED) {
            fprintf(stderr, "supcon: the %s backend has no network layers; using the CPU\n",
                    supcon_context_backend_name(ctx));
            supcon_context_free(ctx);
            ctx = NULL;
            c.backend = SUPCON_BACKEND_CPU;
            st = supcon_context_create(&c, &ctx);
            if (st != SUPCON_OK) {
                fprintf(stderr, "supcon: cannot start the CPU backend: %s: %s\n", supcon_status_string(st),
                        supcon_context_last_error(NULL));
                return NULL;
            }
        }
    }
    return ctx;
}

static int is_idx(const cli_options *o) {
    return strcmp(o->dataset, "fashion-mnist") == 0 || strcmp(o->dataset, "mnist") == 0;
}

static const char *data_folder(const cli_options *o) {
    if (o->given_data_folder) return o->data_folder;
    if (strcmp(o->dataset, "fashion-mnist") == 0) return "/usr/share/datasets/fashion-mnist";
    return "./datasets/"; /* the reference's default */
}

supcon_dataset *cli_dataset(supcon_context *ctx, const cli_options *o, supcon_split split) {
    supcon_dataset_config c = supcon_dataset_config_default();
    c.format = strcmp(o->dataset, "cifar100") == 0 ? SUPCON_DATASET_CIFAR100
               : strcmp(o->dataset, "path") == 0   ? SUPCON_DATASET_IMAGE_FOLDER
               : is_idx(o)                         ? SUPCON_DATASET_IDX
                                                   : SUPCON_DATASET_CIFAR10;
    c.path = data_folder(o);
    /* An image folder has no test split: the reference's main_supcon only trains on it;
     * validation then runs on the same images. */
    c.split = c.format == SUPCON_DATASET_IMAGE_FOLDER ? SUPCON_SPLIT_TRAIN : split;
    supcon_dataset *ds = NULL;
    supcon_status st = supcon_dataset_open(ctx, &c, &ds);
    if (st != SUPCON_OK) {
        char what[CLI_PATH + 64];
        snprintf(what, sizeof what, "cannot open the %s data set in '%s'", o->dataset, c.path);
        cli_fail(ctx, st, what);
        return NULL;
    }
    if (o->subset > 0 && o->subset < supcon_dataset_count(ds)) {
        /* the first N images, copied into a data set of their own */
        int h, w;
        supcon_dataset_image_shape(ds, &h, &w);
        const int ch = supcon_dataset_channels(ds);
        if (h == 0) {
            fprintf(stderr, "supcon: --subset needs images of one size\n");
            supcon_dataset_free(ds);
            return NULL;
        }
        const size_t per = (size_t)ch * (size_t)h * (size_t)w;
        uint8_t *pix = malloc(per * (size_t)o->subset);
        int64_t *lab = malloc(sizeof(int64_t) * (size_t)o->subset);
        supcon_dataset *sub = NULL;
        st = pix && lab ? SUPCON_OK : SUPCON_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; st == SUPCON_OK && i < o->subset; i++)
            st = supcon_dataset_read_image(ds, i, SUPCON_LAYOUT_CHW, pix + per * (size_t)i, per, lab + i);
        if (st == SUPCON_OK)
            st = supcon_dataset_from_memory(ctx, o->subset, ch, h, w, SUPCON_LAYOUT_CHW, pix, lab,
                                            supcon_dataset_num_classes(ds), &sub);
        free(pix);
        free(lab);
        supcon_dataset_free(ds);
        if (st != SUPCON_OK) {
            cli_fail(ctx, st, "--subset");
            return NULL;
        }
        ds = sub;
    }
    return ds;
}

/* "(0.1, 0.2, 0.3)", "0.1,0.2,0.3" or one value for every channel. */
static int parse_triple(const char *s, float out[3]) {
    int n = 0;
    const char *p = s;
    while (*p && n < 3) {
        while (*p == '(' || *p == ' ' || *p == ',' || *p == '[') p++;
        if (!*p || *p == ')' || *p == ']') break;
        char *end;
        double v = strtod(p, &end);
        if (end == p) return -1;
        out[n++] = (float)v;
        p = end;
    }
    while (*p == ' ' || *p == ')' || *p == ']') p++;
    if (*p) return -1;
    if (n == 1) out[1] = out[2] = out[0];
    else if (n != 3) return -1;
    return 0;
}

supcon_transform *cli_transform(supcon_context *ctx, const cli_options *o, supcon_transform_preset p,
                                int channels) {
    supcon_transform_config c = supcon_transform_config_preset(p);
    c.size = o->size;
    float mean[3], std[3];
    if (strcmp(o->dataset, "cifar100") == 0) supcon_dataset_normalization(SUPCON_DATASET_CIFAR100, mean, std);
    else if (strcmp(o->dataset, "cifar10") == 0) supcon_dataset_normalization(SUPCON_DATASET_CIFAR10, mean, std);
    else if (strcmp(o->dataset, "fashion-mnist") == 0) mean[0] = mean[1] = mean[2] = 0.2860f, std[0] = std[1] = std[2] = 0.3530f;
    else if (strcmp(o->dataset, "mnist") == 0) mean[0] = mean[1] = mean[2] = 0.1307f, std[0] = std[1] = std[2] = 0.3081f;
    else supcon_dataset_normalization(SUPCON_DATASET_IMAGE_FOLDER, mean, std);
    if (o->mean[0] && parse_triple(o->mean, mean)) {
        fprintf(stderr, "supcon %s: --mean: cannot read '%s' (expected \"(r, g, b)\")\n", o->command, o->mean);
        return NULL;
    }
    if (o->std[0] && parse_triple(o->std, std)) {
        fprintf(stderr, "supcon %s: --std: cannot read '%s' (expected \"(r, g, b)\")\n", o->command, o->std);
        return NULL;
    }
    (void)channels; /* one-channel images use the first value */
    memcpy(c.mean, mean, sizeof mean);
    memcpy(c.std, std, sizeof std);
    supcon_transform *t = NULL;
    supcon_status st = supcon_transform_create(ctx, &c, &t);
    if (st != SUPCON_OK) {
        cli_fail(ctx, st, "transform");
        return NULL;
    }
    return t;
}

supcon_loader *cli_loader(supcon_context *ctx, const cli_options *o, const supcon_dataset *ds,
                          const supcon_transform *t, int shuffle) {
    supcon_loader_config c = supcon_loader_config_default();
    c.batch_size = o->batch_size;
    c.num_workers = o->num_workers;
    c.shuffle = shuffle;
    c.seed = o->seed;
    /* Keep a few batches ahead, not 2 x workers: with the reference's 16 workers that
     * would hold 32 batches in memory. */
    c.prefetch = o->num_workers > 2 ? 4 : 0;
    supcon_loader *l = NULL;
    supcon_status st = supcon_loader_create(ctx, ds, t, &c, &l);
    if (st != SUPCON_OK) {
        cli_fail(ctx, st, "loader");
        return NULL;
    }
    return l;
}

/* Python's str() of a float as the reference writes it into folder names ("0.05", "5.0"). */
static void py_float(char *out, size_t n, double v) {
    snprintf(out, n, "%.16g", v);
    double back = strtod(out, NULL);
    for (int p = 1; p <= 17; p++) { /* shortest representation that reads back */
        char t[64];
        snprintf(t, sizeof t, "%.*g", p, v);
        if (strtod(t, NULL) == back && strlen(t) < n) {
            memcpy(out, t, strlen(t) + 1);
            break;
        }
    }
    if (!strpbrk(out, ".en")) strncat(out, ".0", n - strlen(out) - 1);
}

static int mkdir_p(const char *path) {
    char buf[CLI_PATH];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    return 0;
}

int cli_make_save_folder(cli_options *o) {
    if (!o->given_save_folder) {
        char lr[32], wd[32], temp[32];
        py_float(lr, sizeof lr, o->learning_rate);
        py_float(wd, sizeof wd, o->weight_decay);
        py_float(temp, sizeof temp, o->temp);
        const int warm = supcon_lr_should_warm(o->program, o->batch_size, o->warm);
        int n;
        if (o->program == SUPCON_PROGRAM_CONTRASTIVE)
            n = snprintf(o->save_folder, sizeof o->save_folder,
                         "./save/SupCon/%s_models/%s_%s_%s_lr_%s_decay_%s_bsz_%lld_temp_%s_trial_%s%s%s", o->dataset,
                         o->method, o->dataset, o->model, lr, wd, (long long)o->batch_size, temp, o->trial,
                         o->cosine ? "_cosine" : "", warm ? "_warm" : "");
        else if (o->program == SUPCON_PROGRAM_CROSS_ENTROPY)
            n = snprintf(o->save_folder, sizeof o->save_folder,
                         "./save/SupCon/%s_models/SupCE_%s_%s_lr_%s_decay_%s_bsz_%lld_trial_%s%s%s", o->dataset,
                         o->dataset, o->model, lr, wd, (long long)o->batch_size, o->trial, o->cosine ? "_cosine" : "",
                         warm ? "_warm" : "");
        else /* the reference's main_linear saves nothing; we keep its last state for --resume */
            n = snprintf(o->save_folder, sizeof o->save_folder,
                         "./save/SupCon/%s_models/Linear_%s_%s_lr_%s_bsz_%lld_trial_%s%s", o->dataset, o->dataset,
                         o->model, lr, (long long)o->batch_size, o->trial, o->cosine ? "_cosine" : "");
        if (n < 0 || (size_t)n >= sizeof o->save_folder) {
            fprintf(stderr, "supcon: save folder name too long\n");
            return CLI_EXIT_ERROR;
        }
    }
    if (mkdir_p(o->save_folder)) {
        fprintf(stderr, "supcon: cannot make the save folder '%s': %s\n", o->save_folder, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    return 0;
}
