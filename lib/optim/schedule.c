/* The reference's learning-rate schedules (util.py: adjust_learning_rate and
 * warmup_learning_rate, the warm-up settings of main_supcon.py / main_ce.py), written in the
 * same operation order in double so that every value equals Python's bit for bit. Pure
 * functions: no context; errors go to the thread's last-error slot. */
#include <math.h>
#include <string.h>

#include "error.h"
#include "supcon/optim.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

supcon_lr_config supcon_lr_config_default(void) { return supcon_lr_config_for_program(SUPCON_PROGRAM_CONTRASTIVE); }

supcon_lr_config supcon_lr_config_for_program(supcon_program program) {
    supcon_lr_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.cosine = 0;
    c.num_decay_epochs = 3;
    c.warm = 0;
    c.warm_epochs = 10;
    c.warmup_from = 0.01;
    switch (program) {
    case SUPCON_PROGRAM_CROSS_ENTROPY:
        c.learning_rate = 0.2;
        c.epochs = 500;
        c.decay_rate = 0.1;
        c.decay_epochs[0] = 350, c.decay_epochs[1] = 400, c.decay_epochs[2] = 450;
        break;
    case SUPCON_PROGRAM_LINEAR:
        c.learning_rate = 0.1;
        c.epochs = 100;
        c.decay_rate = 0.2;
        c.decay_epochs[0] = 60, c.decay_epochs[1] = 75, c.decay_epochs[2] = 90;
        break;
    case SUPCON_PROGRAM_CONTRASTIVE:
    default:
        c.learning_rate = 0.05;
        c.epochs = 1000;
        c.decay_rate = 0.1;
        c.decay_epochs[0] = 700, c.decay_epochs[1] = 800, c.decay_epochs[2] = 900;
        break;
    }
    return c;
}

int supcon_lr_should_warm(supcon_program program, int64_t batch_size, int warm_flag) {
    if (warm_flag) return 1;
    return (program == SUPCON_PROGRAM_CONTRASTIVE || program == SUPCON_PROGRAM_CROSS_ENTROPY) && batch_size > 256;
}

static supcon_status sc_lr_check(const char *fn, const supcon_lr_config *c) {
    if (!c) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg is NULL", fn);
    if (c->struct_size != sizeof *c)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: cfg->struct_size is %zu, expected %zu", fn,
                        c->struct_size, sizeof *c);
    if (!isfinite(c->learning_rate) || c->learning_rate < 0)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: learning_rate %g must be finite and >= 0", fn,
                        c->learning_rate);
    if (c->epochs < 1) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: epochs %d must be >= 1", fn, c->epochs);
    if (!isfinite(c->decay_rate) || c->decay_rate < 0)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: decay_rate %g must be finite and >= 0", fn,
                        c->decay_rate);
    if (c->num_decay_epochs < 0 || c->num_decay_epochs > SUPCON_LR_MAX_DECAY_EPOCHS)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: num_decay_epochs %d is not in 0..%d", fn,
                        c->num_decay_epochs, SUPCON_LR_MAX_DECAY_EPOCHS);
    if (c->cosine != 0 && c->cosine != 1)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: cosine %d is not 0 or 1", fn, c->cosine);
    if (c->warm != 0 && c->warm != 1)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: warm %d is not 0 or 1", fn, c->warm);
    if (c->warm_epochs < 1)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: warm_epochs %d must be >= 1", fn, c->warm_epochs);
    if (!isfinite(c->warmup_from))
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: warmup_from %g is not finite", fn, c->warmup_from);
    return SUPCON_OK;
}

/* eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / args.epochs)) / 2 */
static double sc_lr_cosine(const supcon_lr_config *c, int epoch) {
    const double lr = c->learning_rate;
    const double eta_min = lr * pow(c->decay_rate, 3);
    const double angle = M_PI * (double)epoch / (double)c->epochs;
    const double half = (lr - eta_min) * (1 + cos(angle));
    return eta_min + half / 2;
}

static double sc_lr_step(const supcon_lr_config *c, int epoch) {
    int steps = 0;
    for (int k = 0; k < c->num_decay_epochs; k++) steps += epoch > c->decay_epochs[k];
    /* lr * (args.lr_decay_rate ** steps) when steps > 0 */
    return steps > 0 ? c->learning_rate * pow(c->decay_rate, (double)steps) : c->learning_rate;
}

supcon_status supcon_lr_epoch(const supcon_lr_config *cfg, int epoch, double *lr) {
    static const char fn[] = "supcon_lr_epoch";
    supcon_status s = sc_lr_check(fn, cfg);
    if (s != SUPCON_OK) return s;
    if (!lr) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: lr is NULL", fn);
    if (epoch < 0) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: epoch %d is negative", fn, epoch);
    *lr = cfg->cosine ? sc_lr_cosine(cfg, epoch) : sc_lr_step(cfg, epoch);
    return SUPCON_OK;
}

supcon_status supcon_lr_warmup_to(const supcon_lr_config *cfg, double *lr) {
    static const char fn[] = "supcon_lr_warmup_to";
    supcon_status s = sc_lr_check(fn, cfg);
    if (s != SUPCON_OK) return s;
    if (!lr) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: lr is NULL", fn);
    *lr = cfg->cosine ? sc_lr_cosine(cfg, cfg->warm_epochs) : cfg->learning_rate;
    return SUPCON_OK;
}

supcon_status supcon_lr_iteration(const supcon_lr_config *cfg, int epoch, int64_t iter, int64_t iters_per_epoch,
                                  double *lr) {
    static const char fn[] = "supcon_lr_iteration";
    supcon_status s = sc_lr_check(fn, cfg);
    if (s != SUPCON_OK) return s;
    if (!lr) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: lr is NULL", fn);
    if (epoch < 1) return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: epoch %d must be >= 1", fn, epoch);
    if (iters_per_epoch < 1 || iters_per_epoch > ((int64_t)1 << 31))
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: iters_per_epoch %lld is not in 1..2^31", fn,
                        (long long)iters_per_epoch);
    if (iter < 0 || iter >= iters_per_epoch)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: iter %lld is not in 0..%lld", fn, (long long)iter,
                        (long long)iters_per_epoch - 1);
    if (cfg->warm && epoch <= cfg->warm_epochs) {
        double to;
        supcon_lr_warmup_to(cfg, &to);
        const int64_t num = iter + (int64_t)(epoch - 1) * iters_per_epoch;
        const int64_t den = (int64_t)cfg->warm_epochs * iters_per_epoch;
        if (den > ((int64_t)1 << 53))
            return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "%s: warm_epochs x iters_per_epoch exceeds 2^53", fn);
        const double p = (double)num / (double)den; /* Python's int / int: correctly rounded */
        *lr = cfg->warmup_from + p * (to - cfg->warmup_from);
        return SUPCON_OK;
    }
    *lr = cfg->cosine ? sc_lr_cosine(cfg, epoch) : sc_lr_step(cfg, epoch);
    return SUPCON_OK;
}
