/* The training loop shared by pretrain, ce and linear: learning-rate schedule per iteration,
 * progress lines, epoch summaries, log.csv, validation, checkpoints (every --save_freq epochs,
 * last.safetensors after every epoch and on a stop) and --resume. The programs supply the
 * step. Random state is counter-based (seed, epoch, sample), so a checkpoint's epoch and
 * iteration are all it takes to continue exactly where a run stopped. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

supcon_status cli_ensure(supcon_context *ctx, supcon_tensor **t, supcon_dtype dt, int ndim, const int64_t *shape) {
    if (*t && supcon_tensor_ndim(*t) == ndim && supcon_tensor_dtype(*t) == dt) {
        int same = 1;
        for (int i = 0; i < ndim; i++) same &= supcon_tensor_dim(*t, i) == shape[i];
        if (same) return SUPCON_OK;
    }
    supcon_tensor_free(*t);
    *t = NULL;
    return supcon_tensor_create(ctx, dt, ndim, shape, t);
}

int cli_lr_setup(cli_trainer *t) {
    const cli_options *o = t->o;
    supcon_lr_config c = supcon_lr_config_for_program(o->program);
    c.learning_rate = o->learning_rate;
    c.epochs = o->epochs;
    c.cosine = o->cosine;
    c.decay_rate = o->lr_decay_rate;
    c.num_decay_epochs = 0;
    for (const char *p = o->lr_decay_epochs; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || (*end && *end != ',') || c.num_decay_epochs == SUPCON_LR_MAX_DECAY_EPOCHS) {
            fprintf(stderr, "supcon %s: --lr_decay_epochs: cannot read '%s' (e.g. 700,800,900; at most %d)\n",
                    o->command, o->lr_decay_epochs, SUPCON_LR_MAX_DECAY_EPOCHS);
            cli_usage(stderr, o->command);
            return CLI_EXIT_USAGE;
        }
        c.decay_epochs[c.num_decay_epochs++] = (int)v;
        p = *end ? end + 1 : end;
    }
    c.warm = supcon_lr_should_warm(o->program, o->batch_size, o->warm);
    double probe;
    if (supcon_lr_epoch(&c, 1, &probe) != SUPCON_OK) {
        fprintf(stderr, "supcon %s: learning-rate schedule: %s\n", o->command, supcon_context_last_error(NULL));
        return CLI_EXIT_USAGE;
    }
    t->lr = c;
    return 0;
}

/* ---- checkpoints ---- */

static int save_checkpoint(cli_trainer *t, const char *file, int epoch, int64_t iter) {
    const cli_options *o = t->o;
    char path[CLI_PATH + 64], num[64];
    snprintf(path, sizeof path, "%s/%s", o->save_folder, file);
    supcon_safetensors *st = NULL;
    supcon_status s = supcon_safetensors_create(t->ctx, &st);
    if (s == SUPCON_OK) s = supcon_checkpoint_add_model(st, t->model);
    if (s == SUPCON_OK) s = supcon_sgd_save_state(t->sgd, st);
    const supcon_model_config mc = supcon_model_get_config(t->model);
#define META(k, v) \
    if (s == SUPCON_OK) s = supcon_safetensors_set_metadata(st, k, v)
#define META_NUM(k, fmt, v)                 \
    snprintf(num, sizeof num, fmt, v);      \
    META(k, num)
    META_NUM("epoch", "%d", epoch);
    META_NUM("iteration", "%lld", (long long)iter);
    META_NUM("seed", "%llu", (unsigned long long)o->seed);
    META("program", o->command);
    META("model", supcon_arch_name(mc.arch));
    META_NUM("width", "%d", mc.width);
    META_NUM("in_channels", "%d", mc.in_channels);
    META_NUM("num_classes", "%d", mc.num_classes);
    META("dataset", o->dataset);
    if (o->program == SUPCON_PROGRAM_CONTRASTIVE) META("method", o->method);
    META_NUM("best_acc", "%.17g", t->best_acc);
    char *json = cli_options_json(o);
    META("opt", json ? json : "{}");
    free(json);
#undef META
#undef META_NUM
    if (s == SUPCON_OK) s = supcon_safetensors_save(st, path);
    supcon_safetensors_free(st);
    if (s != SUPCON_OK) return cli_fail(t->ctx, s, "saving a checkpoint");
    return 0;
}

int cli_resume(cli_trainer *t) {
    t->start_epoch = 1, t->start_iter = 0, t->best_acc = 0;
    if (!t->o->resume[0]) return 0;
    supcon_safetensors *st = NULL;
    supcon_status s = supcon_safetensors_load(t->ctx, t->o->resume, NULL, &st);
    if (s != SUPCON_OK) return cli_fail(t->ctx, s, "--resume");
    const char *prog = supcon_safetensors_metadata(st, "program");
    const char *ep = supcon_safetensors_metadata(st, "epoch");
    const char *it = supcon_safetensors_metadata(st, "iteration");
    if (!prog || !ep || !it || strcmp(prog, t->o->command) != 0) {
        fprintf(stderr, "supcon: --resume: '%s' is not a checkpoint of 'supcon %s' (metadata program=%s)\n",
                t->o->resume, t->o->command, prog ? prog : "none");
        supcon_safetensors_free(st);
        return CLI_EXIT_ERROR;
    }
    s = supcon_checkpoint_load_model(st, t->model, NULL);
    if (s == SUPCON_OK) s = supcon_sgd_load_state(t->sgd, st);
    if (s != SUPCON_OK) {
        supcon_safetensors_free(st);
        return cli_fail(t->ctx, s, "--resume");
    }
    t->start_epoch = atoi(ep);
    t->start_iter = atoll(it);
    const char *best = supcon_safetensors_metadata(st, "best_acc");
    if (best) t->best_acc = strtod(best, NULL);
    supcon_safetensors_free(st);
    printf("resuming '%s' at epoch %d, iteration %lld (step %lld)\n", t->o->resume, t->start_epoch,
           (long long)t->start_iter, (long long)supcon_sgd_steps(t->sgd));
    return 0;
}

/* ---- validation ---- */

supcon_status cli_validate(cli_trainer *t, double *top1, double *top5, double *loss) {
    supcon_status s = supcon_model_set_training(t->model, 0);
    int64_t n = 0, c1 = 0, c5 = 0;
    double lsum = 0;
    if (s == SUPCON_OK) s = supcon_loader_start_epoch(t->val, 1);
    while (s == SUPCON_OK) {
        supcon_batch b = {.struct_size = sizeof b};
        s = supcon_loader_next(t->val, &b);
        if (s != SUPCON_OK || b.size == 0) break;
        const supcon_tensor *x = NULL, *labels = NULL;
        s = cli_push_batch(t, &b, b.images, b.size, &x, &labels);
        if (s == SUPCON_OK) s = supcon_model_forward(t->model, x);
        float l = 0;
        int64_t a1 = 0, a5 = 0;
        if (s == SUPCON_OK) s = supcon_model_cross_entropy(t->model, labels, &l, &a1, &a5, NULL);
        n += b.size, c1 += a1, c5 += a5, lsum += (double)l * (double)b.size;
    }
    supcon_status s2 = supcon_model_set_training(t->model, 1);
    if (s == SUPCON_OK) s = s2;
    *top1 = n ? 100.0 * (double)c1 / (double)n : 0;
    *top5 = n ? 100.0 * (double)c5 / (double)n : 0;
    *loss = n ? lsum / (double)n : 0;
    return s;
}

/* ---- the loop ---- */

static void fmt_time(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) s = 0;
    long v = (long)(s + 0.5);
    snprintf(out, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
}

static FILE *open_log(const cli_options *o) {
    char path[CLI_PATH + 16];
    snprintf(path, sizeof path, "%s/log.csv", o->save_folder);
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "supcon: cannot open '%s' for writing\n", path);
        return NULL;
    }
    if (ftell(f) == 0)
        fprintf(f, "epoch,steps,lr,loss,train_acc,val_acc,val_acc5,val_loss,epoch_seconds,images_per_second\n");
    return f;
}

int cli_train(cli_trainer *t) {
    cli_options *o = t->o;
    const int64_t nb = supcon_loader_num_batches(t->train);
    FILE *log = open_log(o);
    if (!log) return CLI_EXIT_ERROR;
    const int64_t done_steps = (int64_t)(t->start_epoch - 1) * nb + t->start_iter;
    int64_t planned = (int64_t)o->epochs * nb - done_steps;
    if (o->max_steps > 0 && o->max_steps - supcon_sgd_steps(t->sgd) < planned)
        planned = o->max_steps - supcon_sgd_steps(t->sgd);
    if (planned < 0) planned = 0;
    printf("%s: %lld batches of %lld per epoch, epochs %d..%d, %lld steps to go; checkpoints in %s\n", o->command,
           (long long)nb, (long long)o->batch_size, t->start_epoch, o->epochs, (long long)planned, o->save_folder);
    fflush(stdout);

    double run_time = 0;
    int64_t run_steps = 0;
    int rc = CLI_EXIT_OK, stop = 0;
    supcon_status s = SUPCON_OK;
    for (int epoch = t->start_epoch; epoch <= o->epochs && !stop && planned > 0; epoch++) {
        s = supcon_loader_start_epoch(t->train, epoch);
        int64_t it = 0;
        const int64_t skip = epoch == t->start_epoch ? t->start_iter : 0;
        supcon_batch b = {.struct_size = sizeof b};
        for (; s == SUPCON_OK && it < skip; it++) s = supcon_loader_next(t->train, &b); /* same batches again */
        double bt_sum = 0, dt_sum = 0, loss_sum = 0, t_epoch = now(), lr = 0;
        int64_t seen = 0, correct = 0, images = 0, nsteps = 0;
        int have_acc = 0;
        while (s == SUPCON_OK) {
            const double t0 = now();
            s = supcon_loader_next(t->train, &b);
            if (s != SUPCON_OK || b.size == 0) break;
            const double dt = now() - t0;
            s = supcon_lr_iteration(&t->lr, epoch, it, nb, &lr);
            if (s == SUPCON_OK) s = supcon_sgd_set_learning_rate(t->sgd, lr);
            float loss = 0;
            int64_t corr = -1;
            if (s == SUPCON_OK) s = t->step(t, &b, &loss, &corr);
            if (s != SUPCON_OK) break;
            if (!isfinite(loss)) {
                fprintf(stderr, "supcon: the loss is %f at epoch %d, iteration %lld: stopping (lower --learning_rate?)\n",
                        loss, epoch, (long long)it);
                rc = CLI_EXIT_ERROR;
                stop = 1;
                break;
            }
            const double bt = now() - t0;
            it++, nsteps++, run_steps++;
            bt_sum += bt, dt_sum += dt, run_time += bt;
            loss_sum += (double)loss * (double)b.size;
            seen += b.size;
            images += b.size * t->images_per_sample;
            if (corr >= 0) correct += corr, have_acc = 1;
            if (it % o->print_freq == 0 || it == nb) {
                char eta[32];
                fmt_time(eta, sizeof eta, (double)(planned - run_steps) * run_time / (double)run_steps);
                printf("Train: [%d][%lld/%lld]\tBT %.3f (%.3f)\tDT %.3f (%.3f)\tloss %.4f (%.4f)", epoch,
                       (long long)it, (long long)nb, bt, bt_sum / (double)nsteps, dt, dt_sum / (double)nsteps, loss,
                       loss_sum / (double)seen);
                if (corr >= 0)
                    printf("\tacc %.2f (%.2f)", 100.0 * (double)corr / (double)b.size,
                           100.0 * (double)correct / (double)seen);
                printf("\tlr %.5g\t%.0f img/s\tETA %s\n", lr, (double)images / bt_sum, eta);
                fflush(stdout);
            }
            if (cli_interrupted || (o->max_steps > 0 && supcon_sgd_steps(t->sgd) >= o->max_steps)) {
                stop = 1;
                break;
            }
        }
        if (s != SUPCON_OK) {
            rc = cli_fail(t->ctx, s, "training");
            break;
        }
        if (rc != CLI_EXIT_OK) break;
        if (stop && it < nb) { /* stopped inside the epoch: resumable from here */
            if (save_checkpoint(t, "last.safetensors", epoch, it)) rc = CLI_EXIT_ERROR;
            printf("%s at epoch %d, iteration %lld/%lld (step %lld): saved %s/last.safetensors\n",
                   cli_interrupted ? "interrupted" : "stopped (--max_steps)", epoch, (long long)it, (long long)nb,
                   (long long)supcon_sgd_steps(t->sgd), o->save_folder);
            break;
        }
        const double et = now() - t_epoch;
        double v1 = NAN, v5 = NAN, vl = NAN;
        if (t->val) {
            s = cli_validate(t, &v1, &v5, &vl);
            if (s != SUPCON_OK) {
                rc = cli_fail(t->ctx, s, "validation");
                break;
            }
            if (v1 > t->best_acc) t->best_acc = v1;
        }
        const double train_acc = have_acc ? 100.0 * (double)correct / (double)seen : NAN;
        printf("epoch %d, total time %.2f, loss %.4f, lr %.5g, %.0f img/s", epoch, et,
               seen ? loss_sum / (double)seen : NAN, lr, et > 0 ? (double)images / et : 0.0);
        if (have_acc) printf(", train acc %.2f", train_acc);
        printf("\n");
        if (t->val) printf("Val: * Acc@1 %.3f Acc@5 %.3f loss %.4f (best %.2f)\n", v1, v5, vl, t->best_acc);
        fflush(stdout);
        fprintf(log, "%d,%lld,%.8g,%.6f,%.4f,%.4f,%.4f,%.6f,%.3f,%.1f\n", epoch, (long long)supcon_sgd_steps(t->sgd),
                lr, seen ? loss_sum / (double)seen : NAN, train_acc, v1, v5, vl, et,
                et > 0 ? (double)images / et : 0.0);
        fflush(log);
        if (epoch % o->save_freq == 0) {
            char name[64];
            snprintf(name, sizeof name, "ckpt_epoch_%d.safetensors", epoch);
            if (save_checkpoint(t, name, epoch + 1, 0)) {
                rc = CLI_EXIT_ERROR;
                break;
            }
        }
        if (save_checkpoint(t, "last.safetensors", epoch + 1, 0)) {
            rc = CLI_EXIT_ERROR;
            break;
        }
        if (stop) printf("%s after epoch %d (step %lld): saved %s/last.safetensors\n",
                         cli_interrupted ? "interrupted" : "stopped (--max_steps)", epoch,
                         (long long)supcon_sgd_steps(t->sgd), o->save_folder);
    }
    fclose(log);
    if (rc == CLI_EXIT_OK && cli_interrupted) rc = CLI_EXIT_INTERRUPTED;
    if (run_steps > 0)
        printf("%lld steps in %.1f s\n", (long long)run_steps, run_time);
    fflush(stdout);
    return rc;
}

supcon_status cli_push_batch(cli_trainer *t, const supcon_batch *b, const float *images, int64_t rows,
                             const supcon_tensor **x, const supcon_tensor **labels) {
    supcon_status s = SUPCON_OK;
    if (!t->up_x) s = supcon_uploader_create(t->ctx, &t->up_x);
    if (s == SUPCON_OK && !t->up_labels) s = supcon_uploader_create(t->ctx, &t->up_labels);
    const int64_t xs[4] = {rows, b->channels, b->height, b->width}, ls[1] = {b->size};
    const size_t xbytes = sizeof(float) * (size_t)(rows * b->channels * b->height * b->width);
    if (s == SUPCON_OK) s = supcon_uploader_push(t->up_x, SUPCON_FLOAT32, 4, xs, images, xbytes, x);
    if (s == SUPCON_OK)
        s = supcon_uploader_push(t->up_labels, SUPCON_INT64, 1, ls, b->labels, sizeof(int64_t) * (size_t)b->size,
                                 labels);
    return s;
}

void cli_trainer_release(cli_trainer *t) {
    supcon_uploader_free(t->up_x);
    supcon_uploader_free(t->up_labels);
    supcon_tensor_free(t->grad);
    supcon_tensor_free(t->grad_logits);
    free(t->host);
    supcon_loader_free(t->train);
    supcon_loader_free(t->val);
    supcon_sgd_free(t->sgd);
    supcon_model_free(t->model);
}
