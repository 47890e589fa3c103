/* Pictures for the `supcon` tool: a PNG scatter plot of 2-D points coloured by class (t-SNE of
 * embeddings) and the training curves of a run's log.csv. Program code, not library API; the
 * drawing primitives under it are in plot_canvas.h. Nothing here keeps global state. */
#ifndef SUPCON_PLOT_H
#define SUPCON_PLOT_H

#include <stddef.h>
#include <stdint.h>

/* Writes a PNG scatter plot of n 2-D points coloured by label (0..num_classes-1), with a title
 * on top and a legend of class names; points are scaled to fill the plot area with a margin.
 * class_names may be NULL (legend shows "class 0".."class K-1"). Returns 0, or -1 with a
 * message in err. */
int plot_scatter_png(const char *path, const float *xy, const int32_t *labels, size_t n,
                     int num_classes, const char *const *class_names, const char *title,
                     int width, int height, char *err, size_t err_size);

/* The columns of log.csv, in file order (docs/programs.md). */
enum {
    PLOT_LOG_EPOCH, PLOT_LOG_STEPS, PLOT_LOG_LR, PLOT_LOG_LOSS, PLOT_LOG_TRAIN_ACC, PLOT_LOG_VAL_ACC,
    PLOT_LOG_VAL_ACC5, PLOT_LOG_VAL_LOSS, PLOT_LOG_EPOCH_SECONDS, PLOT_LOG_IMAGES_PER_SECOND,
    PLOT_LOG_COLUMNS
};

/* A parsed log.csv: rows values per column (NAN where the file says nan). */
typedef struct plot_log {
    size_t rows;
    double *col[PLOT_LOG_COLUMNS];
} plot_log;

/* Reads log.csv strictly: the exact header, then rows of exactly PLOT_LOG_COLUMNS numbers
 * (or nan), each ending with a newline. A log with a header and no rows is valid (rows 0).
 * Returns 0, or -1 with a message naming the file and line in err (out is then empty). */
int plot_log_read(const char *path, plot_log *out, char *err, size_t err_size);
/* Frees the columns; a zeroed or already freed log is fine. */
void plot_log_free(plot_log *log);

/* Writes a PNG of three stacked panels against the epoch: loss (and validation loss when
 * present), learning rate, accuracy (train_acc and val_acc; a note when the log has none).
 * nan values are left out; a series with one point is drawn as a marker. title may be NULL.
 * Returns 0, or -1 with a message in err (a log without rows is an error). */
int plot_curves_png(const char *path, const plot_log *log, const char *title, int width, int height,
                    char *err, size_t err_size);

/* Sizes the plot functions accept (the curves' three panels need more height), and the tool's
 * default. */
enum { PLOT_MIN_WIDTH = 200, PLOT_MIN_HEIGHT = 150, PLOT_CURVES_MIN_HEIGHT = 240, PLOT_MAX_SIDE = 16384,
       PLOT_DEFAULT_WIDTH = 1000, PLOT_DEFAULT_HEIGHT = 800 };

#endif
