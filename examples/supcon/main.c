/* `supcon`: the reference's three training programs as one command-line tool, plus `info`
 * to look inside a checkpoint. This file only dispatches; each subcommand has its own file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: supcon <command> [options]   (supcon <command> --help for its options)\n"
            "commands:\n"
            "  pretrain   SupCon / SimCLR contrastive pre-training (main_supcon.py)\n"
            "  ce         cross-entropy baseline, validated every epoch (main_ce.py)\n"
            "  linear     linear evaluation of a pre-trained encoder (main_linear.py)\n"
            "  info       metadata and tensors of a checkpoint (.safetensors)\n"
            "  tsne       t-SNE picture and kNN accuracy of a checkpoint's encoder features\n"
            "  plot       training curves of a run's log.csv as a PNG picture\n"
            "libsupcon %s\n",
            supcon_version_string());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("supcon (libsupcon %s)\n", supcon_version_string());
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "pretrain") == 0) return cli_pretrain(argc - 2, argv + 2);
    if (strcmp(cmd, "ce") == 0) return cli_ce(argc - 2, argv + 2);
    if (strcmp(cmd, "linear") == 0) return cli_linear(argc - 2, argv + 2);
    if (strcmp(cmd, "info") == 0) return cli_info(argc - 2, argv + 2);
    if (strcmp(cmd, "tsne") == 0) return cli_tsne(argc - 2, argv + 2);
    if (strcmp(cmd, "plot") == 0) return cli_plot(argc - 2, argv + 2);
    fprintf(stderr, "supcon: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
