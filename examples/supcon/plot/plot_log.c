/* plot_log_read: the log.csv a training run writes (docs/programs.md), read strictly so that a
 * damaged log is reported with its line rather than drawn wrong. Numbers only; "nan" marks a
 * value the program does not have. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "plot_canvas.h"

static const char HEADER[] =
    "epoch,steps,lr,loss,train_acc,val_acc,val_acc5,val_loss,epoch_seconds,images_per_second";
static const char *const NAMES[PLOT_LOG_COLUMNS] = {
    "epoch", "steps", "lr", "loss", "train_acc", "val_acc", "val_acc5", "val_loss", "epoch_seconds",
    "images_per_second",
};

void plot_log_free(plot_log *log) {
    if (!log) return;
    for (int j = 0; j < PLOT_LOG_COLUMNS; j++) free(log->col[j]);
    memset(log, 0, sizeof *log);
}

/* The whole file, NUL-terminated; NULL with errno set on failure. */
static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) free(buf);
        buf = bigger;
    }
    const int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        if (!errno) errno = bad ? EIO : ENOMEM;
        return NULL;
    }
    buf[n] = 0;
    *size = n;
    return buf;
}

/* Parses one row (without its newline) into v; 0, or -1 with a message. */
static int parse_row(char *row, double *v, const char *path, size_t line, char *err, size_t err_size) {
    char *p = row;
    for (int j = 0; j < PLOT_LOG_COLUMNS; j++) {
        char *end = strchr(p, ',');
        if (end) *end = 0;
        else if (j < PLOT_LOG_COLUMNS - 1)
            return plot_error(err, err_size, "'%s' line %zu: truncated row, %d of %d values", path, line, j + 1,
                              PLOT_LOG_COLUMNS);
        char *stop = NULL;
        errno = 0;
        v[j] = strtod(p, &stop);
        if (!*p || stop == p || *stop || (errno == ERANGE && isinf(v[j])))
            return plot_error(err, err_size, "'%s' line %zu: %s value '%.40s' is not a number", path, line,
                              NAMES[j], p);
        if (errno == ERANGE) v[j] = 0; /* underflow */
        if (end) p = end + 1;
        else p = NULL;
        if (j == PLOT_LOG_COLUMNS - 1 && end) {
            size_t extra = 1;
            for (; *p; p++) extra += *p == ',';
            return plot_error(err, err_size, "'%s' line %zu: %zu values, expected %d", path, line,
                              PLOT_LOG_COLUMNS + extra, PLOT_LOG_COLUMNS);
        }
    }
    return 0;
}

int plot_log_read(const char *path, plot_log *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    size_t size = 0;
    errno = 0;
    char *text = slurp(path, &size);
    if (!text) return plot_error(err, err_size, "cannot read '%s': %s", path, strerror(errno));
    if (memchr(text, 0, size)) {
        free(text);
        return plot_error(err, err_size, "'%s': not a text file (contains NUL bytes)", path);
    }
    size_t cap = 0, line = 0;
    char *p = text;
    int rc = 0;
    while (*p && rc == 0) {
        line++;
        char *nl = strchr(p, '\n');
        if (!nl) {
            rc = plot_error(err, err_size, "'%s' line %zu: truncated row (no end of line)", path, line);
            break;
        }
        *nl = 0;
        if (nl > p && nl[-1] == '\r') nl[-1] = 0;
        if (line == 1) {
            if (strcmp(p, HEADER) != 0)
                rc = plot_error(err, err_size, "'%s' line 1: not the header of a supcon log.csv (expected '%s')",
                                path, HEADER);
        } else if (!*p) {
            rc = plot_error(err, err_size, "'%s' line %zu: empty line", path, line);
        } else {
            if (out->rows == cap) {
                cap = cap ? 2 * cap : 64;
                for (int j = 0; j < PLOT_LOG_COLUMNS && rc == 0; j++) {
                    double *bigger = realloc(out->col[j], cap * sizeof(double));
                    if (!bigger) rc = plot_error(err, err_size, "'%s': out of memory", path);
                    else out->col[j] = bigger;
                }
                if (rc) break;
            }
            double v[PLOT_LOG_COLUMNS];
            rc = parse_row(p, v, path, line, err, err_size);
            for (int j = 0; j < PLOT_LOG_COLUMNS && rc == 0; j++) out->col[j][out->rows] = v[j];
            if (rc == 0) out->rows++;
        }
        p = nl + 1;
    }
    if (rc == 0 && line == 0) rc = plot_error(err, err_size, "'%s' line 1: empty file, expected the header", path);
    free(text);
    if (rc) plot_log_free(out);
    return rc;
}
