/* The `supcon` command-line tool: options, shared set-up (context, data, model, checkpoints)
 * and the training loop that the three programs (pretrain, ce, linear) plug their step into.
 * Not part of the library's API; the programs show how the public API fits together. */
#ifndef SUPCON_CLI_H
#define SUPCON_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <supcon/supcon.h>

#define CLI_PATH 1024

/* Exit codes of the tool. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_ERROR = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_INTERRUPTED = 130 };

typedef struct cli_options {
    const char *command;     /* "pretrain", "ce", "linear", "tsne" */
    supcon_program program;
    /* the reference's flags */
    int print_freq, save_freq, num_workers, epochs, size, cosine, warm, sync_bn;
    int64_t batch_size;
    double learning_rate, lr_decay_rate, weight_decay, momentum, temp;
    char lr_decay_epochs[128], model[32], dataset[32], data_folder[CLI_PATH];
    char mean[96], std[96], method[16], trial[32], ckpt[CLI_PATH];
    /* additions */
    char device[8], precision[8], resume[CLI_PATH], save_folder[CLI_PATH];
    uint64_t seed;
    int width, threads;
    int64_t max_steps, subset;
    /* tsne */
    char split[8], tsne_method[16], knn_bank[8], out[CLI_PATH], title[256], save_features[CLI_PATH];
    int64_t n;
    int max_iter, knn_k;
    double perplexity, theta;
    /* which of these were given on the command line */
    int given_model, given_width, given_data_folder, given_save_folder, given_size;
} cli_options;

/** Parse argv (after the subcommand name) into o for `command`. Prints the usage and
 *  returns CLI_EXIT_OK for --help (with *done = 1), prints a one-line error and the usage
 *  and returns CLI_EXIT_USAGE for a wrong flag or value. */
int cli_parse(const char *command, int argc, char **argv, cli_options *o, int *done);
void cli_usage(FILE *f, const char *command);
/** The options as a JSON object (checkpoint metadata "opt"). Caller frees. */
char *cli_options_json(const cli_options *o);

/* ---- set-up helpers (common.c); each prints its own error message ---- */

/** 1 after SIGINT or SIGTERM (the handler is installed by cli_install_signals). */
extern volatile int cli_interrupted;
void cli_install_signals(void);

supcon_context *cli_context(const cli_options *o);
/** Open the training or test split of o->dataset (its first --subset images when set). */
supcon_dataset *cli_dataset(supcon_context *ctx, const cli_options *o, supcon_split split);
supcon_transform *cli_transform(supcon_context *ctx, const cli_options *o, supcon_transform_preset p,
                                int channels);
supcon_loader *cli_loader(supcon_context *ctx, const cli_options *o, const supcon_dataset *ds,
                          const supcon_transform *t, int shuffle);
/** The folder checkpoints and the log go to (made if missing), in o->save_folder. */
int cli_make_save_folder(cli_options *o);
int cli_fail(supcon_context *ctx, supcon_status st, const char *what);

/* ---- the training loop (train.c) ---- */

typedef struct cli_trainer cli_trainer;
/** One optimisation step on a batch: *loss, and *correct (rows right, or -1 for none). */
typedef supcon_status (*cli_step_fn)(cli_trainer *t, const supcon_batch *b, float *loss, int64_t *correct);

struct cli_trainer {
    cli_options *o;
    supcon_context *ctx;
    supcon_model *model;
    supcon_sgd *sgd;
    supcon_loader *train, *val; /* val NULL: no validation */
    cli_step_fn step;
    int64_t images_per_sample; /* network rows per sample: 2 for contrastive pre-training */
    /* each batch's images and labels go up through these (made on first use): on CUDA the
     * copy runs while the previous step's work is still on the device */
    supcon_uploader *up_x, *up_labels;
    /* device tensors of the current batch shape, remade when it changes */
    supcon_tensor *grad, *grad_logits;
    float *host; /* reorder buffer */
    size_t host_floats;
    supcon_lr_config lr;
    int start_epoch;
    int64_t start_iter;
    double best_acc;
    void *user; /* the program's own state for its step */
};

/** Make *t a tensor of this shape unless it already is one. */
supcon_status cli_ensure(supcon_context *ctx, supcon_tensor **t, supcon_dtype dt, int ndim, const int64_t *shape);
/** Push rows images [rows, C, H, W] (laid out as b's) and b's labels through the trainer's
 *  uploaders; *x and *labels may be read until the next push. */
supcon_status cli_push_batch(cli_trainer *t, const supcon_batch *b, const float *images, int64_t rows,
                             const supcon_tensor **x, const supcon_tensor **labels);
/** Set up the learning-rate schedule from the options. Returns 0 or CLI_EXIT_USAGE. */
int cli_lr_setup(cli_trainer *t);
/** Load --resume into the model and optimiser; sets start epoch, iteration, best accuracy. */
int cli_resume(cli_trainer *t);
/** Run every epoch; returns an exit code. */
int cli_train(cli_trainer *t);
/** Top-1 / top-5 accuracy (percent) of the model's classifier on t->val. */
supcon_status cli_validate(cli_trainer *t, double *top1, double *top5, double *loss);
void cli_trainer_release(cli_trainer *t);

/* The subcommands. */
int cli_pretrain(int argc, char **argv);
int cli_ce(int argc, char **argv);
int cli_linear(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_plot(int argc, char **argv);
int cli_tsne(int argc, char **argv);

#endif
