/* Command-line options of the `supcon` tool: the reference programs' flags with their names
 * and per-program defaults (SPEC §3), plus this tool's additions. One table drives parsing,
 * --help and the JSON copy stored in checkpoints. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum kind { K_INT, K_I64, K_U64, K_DOUBLE, K_STR, K_FLAG };
/* programs an option belongs to: P_ALL are the three training programs */
enum { P_PRE = 1, P_CE = 2, P_LIN = 4, P_ALL = 7, P_TSNE = 8, P_ANY = 15 };

typedef struct opt_desc {
    const char *name;
    enum kind kind;
    size_t offset, size;
    int programs;
    const char *help;
} opt_desc;

#define F(field) offsetof(cli_options, field), sizeof(((cli_options *)0)->field)
static const opt_desc OPTS[] = {
    {"print_freq", K_INT, F(print_freq), P_ALL, "print frequency in steps (10)"},
    {"save_freq", K_INT, F(save_freq), P_ALL, "save a checkpoint every N epochs (50)"},
    {"batch_size", K_I64, F(batch_size), P_ANY, "batch size (256)"},
    {"num_workers", K_INT, F(num_workers), P_ANY, "data loader threads (16)"},
    {"epochs", K_INT, F(epochs), P_ALL, "number of training epochs (1000 / 500 / 100)"},
    {"learning_rate", K_DOUBLE, F(learning_rate), P_ALL, "learning rate (0.05 / 0.2 / 0.1)"},
    {"lr_decay_epochs", K_STR, F(lr_decay_epochs), P_ALL, "where to decay lr, e.g. 700,800,900"},
    {"lr_decay_rate", K_DOUBLE, F(lr_decay_rate), P_ALL, "decay rate (0.1 / 0.1 / 0.2)"},
    {"weight_decay", K_DOUBLE, F(weight_decay), P_ALL, "weight decay (1e-4 / 1e-4 / 0)"},
    {"momentum", K_DOUBLE, F(momentum), P_ALL, "momentum (0.9)"},
    {"model", K_STR, F(model), P_ALL, "resnet18 | resnet34 | resnet50 | resnet101 (resnet50)"},
    {"dataset", K_STR, F(dataset), P_ANY, "cifar10 | cifar100 | path | fashion-mnist | mnist (cifar10)"},
    {"data_folder", K_STR, F(data_folder), P_ANY,
     "data folder (./datasets/; fashion-mnist: /usr/share/datasets/fashion-mnist)"},
    {"mean", K_STR, F(mean), P_ANY, "per-channel mean \"(r, g, b)\" (default: the data set's)"},
    {"std", K_STR, F(std), P_ANY, "per-channel std \"(r, g, b)\" (default: the data set's)"},
    {"size", K_INT, F(size), P_ANY, "image size after cropping (32)"},
    {"method", K_STR, F(method), P_PRE, "SupCon | SimCLR (SupCon)"},
    {"temp", K_DOUBLE, F(temp), P_PRE, "temperature of the loss (0.07)"},
    {"cosine", K_FLAG, F(cosine), P_ALL, "cosine annealing of the learning rate"},
    {"warm", K_FLAG, F(warm), P_ALL, "warm-up (automatic for batch_size > 256 in pretrain and ce)"},
    {"syncBN", K_FLAG, F(sync_bn), P_PRE | P_CE, "synchronised BatchNorm (no effect with one device)"},
    {"trial", K_STR, F(trial), P_ALL, "id of the run, part of the save folder's name (0)"},
    {"ckpt", K_STR, F(ckpt), P_LIN | P_TSNE, "checkpoint (linear: also 'random', an untrained encoder)"},
    {"device", K_STR, F(device), P_ANY, "auto | cpu | cuda (auto)"},
    {"precision", K_STR, F(precision), P_ANY,
     "fp32 | tf32 | bf16: tf32 lets a GPU round products; bf16 rounds convolutions to bfloat16 (fp32)"},
    {"seed", K_U64, F(seed), P_ANY, "seed of weights, shuffling and augmentation (0)"},
    {"resume", K_STR, F(resume), P_ALL, "continue a run from its checkpoint (last.safetensors)"},
    {"width", K_INT, F(width), P_ALL, "base planes of the ResNet (64, the reference)"},
    {"save_folder", K_STR, F(save_folder), P_ALL, "where checkpoints and log.csv go (./save/SupCon/...)"},
    {"max_steps", K_I64, F(max_steps), P_ALL, "stop after this many optimiser steps in all (0: no limit)"},
    {"subset", K_I64, F(subset), P_ANY, "use only the first N images of each split (0: all)"},
    {"threads", K_INT, F(threads), P_ANY, "compute threads (0: one per core)"},
    {"split", K_STR, F(split), P_TSNE, "test | train: the images to picture (test)"},
    {"n", K_I64, F(n), P_TSNE, "t-SNE of a random subset of N images of the split (10000; 0: all)"},
    {"perplexity", K_DOUBLE, F(perplexity), P_TSNE, "t-SNE perplexity (30)"},
    {"theta", K_DOUBLE, F(theta), P_TSNE, "Barnes-Hut accuracy, 0 < theta < 1 (0.5)"},
    {"max_iter", K_INT, F(max_iter), P_TSNE, "t-SNE iterations (1000)"},
    {"tsne_method", K_STR, F(tsne_method), P_TSNE, "auto | exact | barnes-hut (auto: exact up to 1000 points)"},
    {"knn_k", K_INT, F(knn_k), P_TSNE, "neighbours of the kNN accuracy, cosine similarity (20; 0: skip)"},
    {"knn_bank", K_STR, F(knn_bank), P_TSNE, "train | self: kNN votes from the training split, or leave-one-out (train)"},
    {"out", K_STR, F(out), P_TSNE, "output prefix: OUT.png, OUT.csv (beside --ckpt: tsne_<split>)"},
    {"save_features", K_STR, F(save_features), P_TSNE, "also write the pictured images' features: label,f0,f1,... rows"},
    {"title", K_STR, F(title), P_TSNE, "title of the picture (the checkpoint's program and data set)"},
};
#undef F
#define NOPTS (sizeof OPTS / sizeof OPTS[0])

static int program_bit(const char *command) {
    if (strcmp(command, "pretrain") == 0) return P_PRE;
    if (strcmp(command, "ce") == 0) return P_CE;
    if (strcmp(command, "tsne") == 0) return P_TSNE;
    return P_LIN;
}

static const char *SUMMARY[] = {
    "pretrain: SupCon / SimCLR contrastive pre-training (the reference's main_supcon.py)",
    "ce: cross-entropy baseline with validation every epoch (main_ce.py)",
    "linear: linear evaluation of a pre-trained encoder (main_linear.py)",
    "tsne: t-SNE picture (PNG + CSV) and kNN accuracy of a checkpoint's encoder features",
};

void cli_usage(FILE *f, const char *command) {
    const int bit = program_bit(command);
    fprintf(f, "usage: supcon %s [--flag value | --flag=value]...\n%s\n\noptions:\n", command,
            SUMMARY[bit == P_PRE ? 0 : bit == P_CE ? 1 : bit == P_LIN ? 2 : 3]);
    for (size_t i = 0; i < NOPTS; i++) {
        if (!(OPTS[i].programs & bit)) continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s", OPTS[i].name, OPTS[i].kind == K_FLAG ? "" : " V");
        fprintf(f, "  %-22s %s\n", left, OPTS[i].help);
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "this help");
}

static void defaults(const char *command, cli_options *o) {
    memset(o, 0, sizeof *o);
    o->command = command;
    const int bit = program_bit(command);
    o->program = bit == P_PRE ? SUPCON_PROGRAM_CONTRASTIVE : bit == P_CE ? SUPCON_PROGRAM_CROSS_ENTROPY
                                                                        : SUPCON_PROGRAM_LINEAR;
    supcon_lr_config lr = supcon_lr_config_for_program(o->program);
    supcon_sgd_config sg = supcon_sgd_config_for_program(o->program);
    o->print_freq = 10, o->save_freq = 50, o->batch_size = 256, o->num_workers = 16;
    o->epochs = lr.epochs;
    o->learning_rate = lr.learning_rate;
    o->lr_decay_rate = lr.decay_rate;
    size_t w = 0;
    for (int i = 0; i < lr.num_decay_epochs; i++)
        w += (size_t)snprintf(o->lr_decay_epochs + w, sizeof o->lr_decay_epochs - w, "%s%d", i ? "," : "",
                              lr.decay_epochs[i]);
    o->weight_decay = sg.weight_decay;
    o->momentum = sg.momentum;
    o->temp = 0.07;
    o->size = 32;
    o->width = 64;
    strcpy(o->model, "resnet50");
    strcpy(o->dataset, "cifar10");
    strcpy(o->method, "SupCon");
    strcpy(o->trial, "0");
    strcpy(o->device, "auto");
    strcpy(o->precision, "fp32");
    strcpy(o->split, "test");
    strcpy(o->tsne_method, "auto");
    strcpy(o->knn_bank, "train");
    o->n = 10000, o->perplexity = 30, o->theta = 0.5, o->max_iter = 1000, o->knn_k = 20;
}

static int usage_error(const char *command, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "supcon %s: ", command);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    cli_usage(stderr, command);
    return CLI_EXIT_USAGE;
}

static int set_value(const char *command, cli_options *o, const opt_desc *d, const char *v) {
    char *end = NULL;
    void *p = (char *)o + d->offset;
    errno = 0;
    switch (d->kind) {
    case K_INT: case K_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < 0 || (d->kind == K_INT && x > 1000000000))
            return usage_error(command, "--%s: '%s' is not a non-negative integer", d->name, v);
        if (d->kind == K_INT) *(int *)p = (int)x;
        else *(int64_t *)p = x;
        return 0;
    }
    case K_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            return usage_error(command, "--%s: '%s' is not a non-negative integer", d->name, v);
        *(uint64_t *)p = x;
        return 0;
    }
    case K_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || x < 0)
            return usage_error(command, "--%s: '%s' is not a non-negative number", d->name, v);
        *(double *)p = x;
        return 0;
    }
    case K_STR:
        if (strlen(v) >= d->size) return usage_error(command, "--%s: value too long: '%s'", d->name, v);
        strcpy((char *)p, v);
        return 0;
    case K_FLAG:
        *(int *)p = 1;
        return 0;
    }
    return 0;
}

/* Values the table cannot check by type. */
static int check(cli_options *o) {
    const char *c = o->command;
    supcon_arch arch;
    if (supcon_arch_from_name(o->model, &arch) != SUPCON_OK)
        return usage_error(c, "--model: unknown model '%s'%s", o->model,
                           " (resnet18, resnet34, resnet50, resnet101)");
    const char *sets[] = {"cifar10", "cifar100", "path", "fashion-mnist", "mnist"};
    int known = 0;
    for (size_t i = 0; i < 5; i++) known |= strcmp(o->dataset, sets[i]) == 0;
    if (!known) return usage_error(c, "--dataset: unknown data set '%s'%s", o->dataset,
                                   " (cifar10, cifar100, path, fashion-mnist, mnist)");
    if (strcmp(o->method, "SupCon") && strcmp(o->method, "SimCLR"))
        return usage_error(c, "--method: '%s' is not SupCon or SimCLR%s", o->method, "");
    if (strcmp(o->device, "auto") && strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        return usage_error(c, "--device: '%s' is not auto, cpu or cuda%s", o->device, "");
    if (strcmp(o->precision, "fp32") && strcmp(o->precision, "tf32") && strcmp(o->precision, "bf16"))
        return usage_error(c, "--precision: '%s' is not fp32, tf32 or bf16%s", o->precision, "");
    if (o->batch_size < 1) return usage_error(c, "--batch_size must be at least 1%s%s", "", "");
    if (o->epochs < 1) return usage_error(c, "--epochs must be at least 1%s%s", "", "");
    if (o->size < 8) return usage_error(c, "--size must be at least 8%s%s", "", "");
    if (o->width < 1) return usage_error(c, "--width must be at least 1%s%s", "", "");
    if (o->print_freq < 1) o->print_freq = 1;
    if (o->save_freq < 1) o->save_freq = 1;
    if (o->temp <= 0) return usage_error(c, "--temp must be positive%s%s", "", "");
    if (strcmp(o->dataset, "path") == 0 && !o->given_data_folder)
        return usage_error(c, "--dataset path needs --data_folder%s%s", "", "");
    if (strcmp(o->command, "tsne") == 0) {
        if (!o->ckpt[0]) return usage_error(c, "tsne needs --ckpt (a checkpoint of pretrain, ce or linear)%s%s", "", "");
        if (strcmp(o->ckpt, "random") == 0) return usage_error(c, "--ckpt: tsne needs a real checkpoint%s%s", "", "");
        if (strcmp(o->split, "test") && strcmp(o->split, "train"))
            return usage_error(c, "--split: '%s' is not test or train%s", o->split, "");
        if (strcmp(o->tsne_method, "auto") && strcmp(o->tsne_method, "exact") && strcmp(o->tsne_method, "barnes-hut"))
            return usage_error(c, "--tsne_method: '%s' is not auto, exact or barnes-hut%s", o->tsne_method, "");
        if (strcmp(o->knn_bank, "train") && strcmp(o->knn_bank, "self"))
            return usage_error(c, "--knn_bank: '%s' is not train or self%s", o->knn_bank, "");
        if (o->perplexity < 1) return usage_error(c, "--perplexity must be at least 1%s%s", "", "");
        if (!(o->theta > 0 && o->theta < 1) && strcmp(o->tsne_method, "exact"))
            return usage_error(c, "--theta must lie strictly between 0 and 1%s%s", "", "");
        if (o->max_iter < 1) return usage_error(c, "--max_iter must be at least 1%s%s", "", "");
        if (o->n == 1) return usage_error(c, "--n must be 0 (all) or at least 2%s%s", "", "");
    }
    if (o->program == SUPCON_PROGRAM_LINEAR && strcmp(o->command, "tsne") && !o->ckpt[0] && !o->resume[0])
        return usage_error(c, "linear evaluation needs --ckpt (a pre-training checkpoint, or 'random')%s%s", "",
                           "");
    return 0;
}

int cli_parse(const char *command, int argc, char **argv, cli_options *o, int *done) {
    defaults(command, o);
    *done = 0;
    const int bit = program_bit(command);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_usage(stdout, command);
            *done = 1;
            return CLI_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) return usage_error(command, "unexpected argument '%s'%s", a, "");
        char name[64];
        const char *eq = strchr(a + 2, '='), *val = NULL;
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) return usage_error(command, "unknown flag '%s'%s", a, "");
        memcpy(name, a + 2, len);
        name[len] = 0;
        const opt_desc *d = NULL;
        for (size_t k = 0; k < NOPTS; k++)
            if (strcmp(OPTS[k].name, name) == 0 && (OPTS[k].programs & bit)) d = &OPTS[k];
        if (!d) return usage_error(command, "unknown flag '--%s'%s", name, "");
        if (d->kind == K_FLAG) {
            if (eq) return usage_error(command, "--%s takes no value%s", name, "");
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return usage_error(command, "--%s needs a value%s", name, "");
            val = argv[++i];
        }
        int rc = set_value(command, o, d, val);
        if (rc) return rc;
        if (strcmp(name, "model") == 0) o->given_model = 1;
        if (strcmp(name, "width") == 0) o->given_width = 1;
        if (strcmp(name, "data_folder") == 0) o->given_data_folder = 1;
        if (strcmp(name, "save_folder") == 0) o->given_save_folder = 1;
        if (strcmp(name, "size") == 0) o->given_size = 1;
    }
    return check(o);
}

static void json_string(char **buf, size_t *len, size_t *cap, const char *s) {
    for (;;) {
        size_t need = *len + 2 * strlen(s) + 8;
        if (need <= *cap) break;
        *cap = need * 2;
        *buf = realloc(*buf, *cap);
    }
    char *w = *buf + *len;
    *w++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *w++ = '\\';
        if ((unsigned char)*s < 0x20) continue;
        *w++ = *s;
    }
    *w++ = '"';
    *w = 0;
    *len = (size_t)(w - *buf);
}

char *cli_options_json(const cli_options *o) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    len = (size_t)snprintf(buf, cap, "{\"command\": \"%s\"", o->command);
    const int bit = program_bit(o->command);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_desc *d = &OPTS[i];
        if (!(d->programs & bit)) continue;
        const void *p = (const char *)o + d->offset;
        char num[64];
        if (len + 256 > cap) buf = realloc(buf, cap *= 2);
        len += (size_t)snprintf(buf + len, cap - len, ", \"%s\": ", d->name);
        switch (d->kind) {
        case K_INT: case K_FLAG: snprintf(num, sizeof num, "%d", *(const int *)p); break;
        case K_I64: snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)p); break;
        case K_U64: snprintf(num, sizeof num, "%llu", (unsigned long long)*(const uint64_t *)p); break;
        case K_DOUBLE: snprintf(num, sizeof num, "%.17g", *(const double *)p); break;
        case K_STR: json_string(&buf, &len, &cap, (const char *)p); continue;
        }
        if (d->kind == K_FLAG) snprintf(num, sizeof num, "%s", *(const int *)p ? "true" : "false");
        len += (size_t)snprintf(buf + len, cap - len, "%s", num);
    }
    if (len + 4 > cap) buf = realloc(buf, cap + 4);
    strcat(buf, "}");
    return buf;
}
