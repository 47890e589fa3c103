/* `supcon plot LOG.csv`: a run's log.csv drawn as training curves (loss, learning rate,
 * accuracy per epoch) in a PNG beside it. The drawing is in plot/; this file is the flags. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot/plot.h"

static void plot_usage(FILE *f) {
    fprintf(f,
            "usage: supcon plot LOG.csv [-o OUT.png] [--title T] [--width W] [--height H]\n"
            "draws a run's log.csv as training curves: loss, learning rate and accuracy per epoch\n\n"
            "options:\n"
            "  %-22s %s\n  %-22s %s\n  %-22s %s\n  %-22s %s\n  %-22s %s\n",
            "-o, --output OUT.png", "where the picture goes (LOG.csv with .csv replaced by .png)",
            "--title T", "title on top (default: FOLDER/log.csv)", "--width W", "width in pixels (1000)",
            "--height H", "height in pixels (800)", "-h, --help", "this help");
}

static int plot_usage_error(const char *fmt, const char *a) {
    fprintf(stderr, "supcon plot: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    plot_usage(stderr);
    return CLI_EXIT_USAGE;
}

static int parse_side(const char *flag, const char *v, int lo, int *out) {
    char *end = NULL;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > PLOT_MAX_SIDE) {
        fprintf(stderr, "supcon plot: %s: '%s' is not a whole number of pixels in %d..%d\n", flag, v, lo,
                PLOT_MAX_SIDE);
        plot_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    *out = (int)x;
    return 0;
}

int cli_plot(int argc, char **argv) {
    const char *log_path = NULL, *out_path = NULL, *title = NULL;
    int width = PLOT_DEFAULT_WIDTH, height = PLOT_DEFAULT_HEIGHT;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            plot_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (log_path) return plot_usage_error("more than one log given ('%s')", a);
            log_path = a;
            continue;
        }
        /* --flag value or --flag=value */
        char name[32];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL, *val = NULL;
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return plot_usage_error("unknown flag '%s'", a);
        memcpy(name, a, len);
        name[len] = 0;
        const int is_out = strcmp(name, "-o") == 0 || strcmp(name, "--output") == 0;
        if (!is_out && strcmp(name, "--title") && strcmp(name, "--width") && strcmp(name, "--height"))
            return plot_usage_error("unknown flag '%s'", name);
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return plot_usage_error("%s needs a value", name);
        int rc = 0;
        if (is_out) out_path = val;
        else if (strcmp(name, "--title") == 0) title = val;
        else if (strcmp(name, "--width") == 0) rc = parse_side(name, val, PLOT_MIN_WIDTH, &width);
        else rc = parse_side(name, val, PLOT_CURVES_MIN_HEIGHT, &height);
        if (rc) return rc;
    }
    if (!log_path) return plot_usage_error("no log given%s", "");
    char def[CLI_PATH + 8];
    if (!out_path) {
        const size_t n = strlen(log_path);
        if (n >= CLI_PATH) return plot_usage_error("log path too long: '%s'", log_path);
        memcpy(def, log_path, n + 1);
        if (n > 4 && strcmp(def + n - 4, ".csv") == 0) def[n - 4] = 0;
        strcat(def, ".png");
        out_path = def;
    }
    char err[1024];
    plot_log log;
    if (plot_log_read(log_path, &log, err, sizeof err) != 0) {
        fprintf(stderr, "supcon plot: %s\n", err);
        return CLI_EXIT_ERROR;
    }
    /* default title: the log and the folder it is in (the run's name), not the whole path */
    const char *tail = log_path + strlen(log_path);
    for (int slashes = 0; tail > log_path; tail--)
        if (tail[-1] == '/' && ++slashes == 2) break;
    const int rc = plot_curves_png(out_path, &log, title ? title : tail, width, height, err, sizeof err);
    plot_log_free(&log);
    if (rc != 0) {
        fprintf(stderr, "supcon plot: %s\n", err);
        return CLI_EXIT_ERROR;
    }
    printf("wrote %s (%dx%d, training curves of %s)\n", out_path, width, height, log_path);
    return CLI_EXIT_OK;
}
