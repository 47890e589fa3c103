/* `supcon pretrain`: SupCon / SimCLR pre-training (the reference's main_supcon.py). Both
 * views of every image go through the encoder as one batch of 2B, so BatchNorm sees 2B
 * images, as in the reference. Linear evaluation is `supcon linear`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct pre_state {
    supcon_loss *loss;
    int simclr;
} pre_state;


/* The loader's batch is view-major (row v*B + i is view v of sample i). It is copied
 * sample-major (row i*V + v) so that the head output [V*B, D] already is the loss's
 * [B, V, D]: no transpose of features or gradients is needed (docs/model.md). */
static supcon_status pretrain_step(cli_trainer *t, const supcon_batch *b, float *loss, int64_t *correct) {
    pre_state *ps = t->user;
    const int64_t B = b->size, V = b->views;
    const size_t img = (size_t)b->channels * (size_t)b->height * (size_t)b->width;
    const size_t need = img * (size_t)(B * V);
    if (t->host_floats < need) {
        free(t->host);
        t->host = malloc(sizeof(float) * need);
        t->host_floats = t->host ? need : 0;
        if (!t->host) return SUPCON_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < B; i++)
        for (int64_t v = 0; v < V; v++)
            memcpy(t->host + (size_t)(i * V + v) * img, b->images + (size_t)(v * B + i) * img, sizeof(float) * img);

    const int64_t fdim = supcon_model_get_config(t->model).feat_dim;
    const int64_t gs[3] = {B, V, fdim};
    const supcon_tensor *x = NULL, *labels = NULL;
    supcon_status s = cli_ensure(t->ctx, &t->grad, SUPCON_FLOAT32, 3, gs);
    if (s == SUPCON_OK) s = cli_push_batch(t, b, t->host, B * V, &x, &labels);
    if (s == SUPCON_OK) s = supcon_model_zero_grad(t->model);
    if (s == SUPCON_OK) s = supcon_model_forward(t->model, x);
    if (s != SUPCON_OK) return s;

    /* the head output [B*V, D], seen as [B, V, D] without a copy */
    supcon_tensor *head = (supcon_tensor *)supcon_model_head_output(t->model), *features = NULL;
    s = supcon_tensor_wrap(t->ctx, SUPCON_FLOAT32, 3, gs, supcon_tensor_data(head), supcon_tensor_memory(head),
                           &features);
    if (s == SUPCON_OK)
        s = supcon_loss_forward(ps->loss, features, ps->simclr ? NULL : labels, NULL, loss);
    if (s == SUPCON_OK) s = supcon_loss_backward(ps->loss, t->grad);
    supcon_tensor_free(features);
    if (s == SUPCON_OK) s = supcon_model_backward(t->model, t->grad, NULL, NULL);
    if (s == SUPCON_OK) s = supcon_sgd_step(t->sgd);
    *correct = -1;
    return s;
}

int cli_pretrain(int argc, char **argv) {
    cli_options o;
    int done;
    int rc = cli_parse("pretrain", argc, argv, &o, &done);
    if (rc || done) return rc;
    pre_state ps = {0};
    cli_trainer t = {.o = &o, .step = pretrain_step, .images_per_sample = 2, .user = &ps};
    if ((rc = cli_lr_setup(&t))) return rc;
    cli_install_signals();
    supcon_context *ctx = cli_context(&o);
    if (!ctx) return CLI_EXIT_ERROR;
    t.ctx = ctx;
    rc = CLI_EXIT_ERROR;
    supcon_dataset *ds = cli_dataset(ctx, &o, SUPCON_SPLIT_TRAIN);
    supcon_transform *tf = ds ? cli_transform(ctx, &o, SUPCON_PRESET_CONTRASTIVE, supcon_dataset_channels(ds)) : NULL;
    if (!tf) goto out;
    if (!(t.train = cli_loader(ctx, &o, ds, tf, 1))) goto out;

    supcon_model_config mc = supcon_model_config_default();
    supcon_arch_from_name(o.model, &mc.arch);
    mc.width = o.width;
    mc.in_channels = supcon_dataset_channels(ds);
    mc.head = SUPCON_HEAD_MLP;
    mc.feat_dim = 128;
    supcon_status s = supcon_model_create(ctx, &mc, &t.model);
    if (s == SUPCON_OK) s = supcon_model_reserve(t.model, 2 * o.batch_size, o.size, o.size);
    if (s != SUPCON_OK) {
        rc = cli_fail(ctx, s, "model");
        goto out;
    }
    supcon_sgd_config sc = supcon_sgd_config_for_program(o.program);
    sc.learning_rate = o.learning_rate, sc.momentum = o.momentum, sc.weight_decay = o.weight_decay;
    s = supcon_sgd_create(ctx, &sc, &t.sgd);
    if (s == SUPCON_OK) s = supcon_sgd_add_model(t.sgd, 0, t.model, NULL, 0);
    supcon_loss_config lc = supcon_loss_config_default();
    lc.temperature = (float)o.temp; /* base_temperature stays 0.07, as the reference leaves it */
    if (s == SUPCON_OK) s = supcon_loss_create(ctx, &lc, &ps.loss);
    ps.simclr = strcmp(o.method, "SimCLR") == 0;
    if (s != SUPCON_OK) {
        rc = cli_fail(ctx, s, "optimiser / loss");
        goto out;
    }
    if ((rc = cli_resume(&t)) != 0) goto out;
    if ((rc = cli_make_save_folder(&o)) != 0) goto out;
    printf("%s pre-training: %s width %d, %d channel(s), %lld images, batch %lld (x2 views), lr %g, temp %g, "
           "%s backend, %s\n",
           o.method, o.model, o.width, mc.in_channels, (long long)supcon_dataset_count(ds), (long long)o.batch_size,
           o.learning_rate, o.temp, supcon_context_backend_name(ctx), o.precision);
    rc = cli_train(&t);
out:
    supcon_loss_free(ps.loss);
    cli_trainer_release(&t);
    supcon_transform_free(tf);
    supcon_dataset_free(ds);
    supcon_context_free(ctx);
    return rc;
}
