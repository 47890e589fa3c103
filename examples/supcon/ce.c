/* `supcon ce` (main_ce.py: encoder + classifier trained with cross-entropy) and
 * `supcon linear` (main_linear.py: a classifier trained on a frozen pre-trained encoder).
 * Both validate on the test split after every epoch and end with `best accuracy: NN.NN`.
 * They share one step: forward, cross-entropy, backward, SGD; in linear evaluation the
 * encoder is frozen (inference-mode BatchNorm, no gradient) and only fc.* is optimised. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static supcon_status ce_step(cli_trainer *t, const supcon_batch *b, float *loss, int64_t *correct) {
    const int64_t classes = supcon_model_get_config(t->model).num_classes;
    const int64_t gs[2] = {b->size, classes};
    const supcon_tensor *x = NULL, *labels = NULL;
    supcon_status s = cli_ensure(t->ctx, &t->grad_logits, SUPCON_FLOAT32, 2, gs);
    if (s == SUPCON_OK) s = cli_push_batch(t, b, b->images, b->size, &x, &labels);
    if (s == SUPCON_OK) s = supcon_model_zero_grad(t->model);
    if (s == SUPCON_OK) s = supcon_model_forward(t->model, x);
    if (s == SUPCON_OK) s = supcon_model_cross_entropy(t->model, labels, loss, correct, NULL, t->grad_logits);
    if (s == SUPCON_OK) s = supcon_model_backward(t->model, NULL, t->grad_logits, NULL);
    if (s == SUPCON_OK) s = supcon_sgd_step(t->sgd);
    return s;
}

/* The encoder's description from a pre-training checkpoint, unless given on the command
 * line, so that `--ckpt` alone is enough. */
static void model_from_checkpoint(const supcon_safetensors *st, cli_options *o) {
    const char *m = supcon_safetensors_metadata(st, "model"), *w = supcon_safetensors_metadata(st, "width");
    if (m && !o->given_model && strlen(m) < sizeof o->model) strcpy(o->model, m);
    if (w && !o->given_width) o->width = atoi(w);
}

static int run(const char *command, int argc, char **argv) {
    cli_options o;
    int done;
    int rc = cli_parse(command, argc, argv, &o, &done);
    if (rc || done) return rc;
    const int linear = o.program == SUPCON_PROGRAM_LINEAR;
    cli_trainer t = {.o = &o, .step = ce_step, .images_per_sample = 1};
    if ((rc = cli_lr_setup(&t))) return rc;
    cli_install_signals();
    supcon_context *ctx = cli_context(&o);
    if (!ctx) return CLI_EXIT_ERROR;
    t.ctx = ctx;
    rc = CLI_EXIT_ERROR;
    supcon_safetensors *pre = NULL;
    supcon_dataset *train = NULL, *val = NULL;
    supcon_transform *tf_train = NULL, *tf_val = NULL;
    supcon_status s;
    const int random_encoder = linear && strcmp(o.ckpt, "random") == 0;
    if (linear && !o.resume[0] && !random_encoder) {
        s = supcon_safetensors_load(ctx, o.ckpt, NULL, &pre);
        if (s != SUPCON_OK) {
            rc = cli_fail(ctx, s, "--ckpt");
            goto out;
        }
        model_from_checkpoint(pre, &o);
    } else if (linear && o.resume[0]) {
        supcon_safetensors *st = NULL;
        if (supcon_safetensors_load(ctx, o.resume, NULL, &st) == SUPCON_OK) model_from_checkpoint(st, &o);
        supcon_safetensors_free(st); /* errors are reported by cli_resume */
    }
    if (!(train = cli_dataset(ctx, &o, SUPCON_SPLIT_TRAIN)) || !(val = cli_dataset(ctx, &o, SUPCON_SPLIT_TEST)))
        goto out;
    const int ch = supcon_dataset_channels(train);
    if (!(tf_train = cli_transform(ctx, &o, SUPCON_PRESET_SUPERVISED, ch))) goto out;
    if (!(tf_val = cli_transform(ctx, &o, SUPCON_PRESET_EVAL, ch))) goto out;
    if (!(t.train = cli_loader(ctx, &o, train, tf_train, 1)) || !(t.val = cli_loader(ctx, &o, val, tf_val, 0)))
        goto out;

    supcon_model_config mc = supcon_model_config_default();
    if (supcon_arch_from_name(o.model, &mc.arch) != SUPCON_OK) {
        fprintf(stderr, "supcon %s: unknown model '%s' in the checkpoint\n", command, o.model);
        goto out;
    }
    mc.width = o.width;
    mc.in_channels = ch;
    mc.head = SUPCON_HEAD_NONE;
    mc.num_classes = supcon_dataset_num_classes(train);
    mc.freeze_encoder = linear;
    s = supcon_model_create(ctx, &mc, &t.model);
    if (s == SUPCON_OK) s = supcon_model_reserve(t.model, o.batch_size, o.size, o.size);
    if (s != SUPCON_OK) {
        rc = cli_fail(ctx, s, "model");
        goto out;
    }
    if (pre) {
        s = supcon_checkpoint_load_model(pre, t.model, "encoder.");
        if (s != SUPCON_OK) {
            rc = cli_fail(ctx, s, "--ckpt: loading the encoder");
            goto out;
        }
    }
    supcon_sgd_config sc = supcon_sgd_config_for_program(o.program);
    sc.learning_rate = o.learning_rate, sc.momentum = o.momentum, sc.weight_decay = o.weight_decay;
    s = supcon_sgd_create(ctx, &sc, &t.sgd);
    if (s == SUPCON_OK) s = supcon_sgd_add_model(t.sgd, 0, t.model, linear ? "fc." : NULL, 0);
    if (s != SUPCON_OK) {
        rc = cli_fail(ctx, s, "optimiser");
        goto out;
    }
    if ((rc = cli_resume(&t)) != 0) goto out;
    if ((rc = cli_make_save_folder(&o)) != 0) goto out;
    rc = CLI_EXIT_ERROR;
    if (linear)
        printf("linear evaluation of %s: %s width %d, %d classes, %lld training / %lld test images, batch %lld, "
               "lr %g, %s backend, %s\n",
               o.resume[0] ? o.resume : random_encoder ? "a randomly initialised encoder" : o.ckpt, o.model, o.width,
               mc.num_classes, (long long)supcon_dataset_count(train), (long long)supcon_dataset_count(val),
               (long long)o.batch_size, o.learning_rate, supcon_context_backend_name(ctx), o.precision);
    else
        printf("cross-entropy training: %s width %d, %d classes, %lld training / %lld test images, batch %lld, "
               "lr %g, %s backend, %s\n",
               o.model, o.width, mc.num_classes, (long long)supcon_dataset_count(train),
               (long long)supcon_dataset_count(val), (long long)o.batch_size, o.learning_rate,
               supcon_context_backend_name(ctx), o.precision);
    rc = cli_train(&t);
    if (rc == CLI_EXIT_OK || rc == CLI_EXIT_INTERRUPTED) printf("best accuracy: %.2f\n", t.best_acc);
out:
    supcon_safetensors_free(pre);
    cli_trainer_release(&t);
    supcon_transform_free(tf_train);
    supcon_transform_free(tf_val);
    supcon_dataset_free(train);
    supcon_dataset_free(val);
    supcon_context_free(ctx);
    return rc;
}

int cli_ce(int argc, char **argv) { return run("ce", argc, argv); }
int cli_linear(int argc, char **argv) { return run("linear", argc, argv); }
