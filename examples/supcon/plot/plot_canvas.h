/* Drawing under the plots: an RGB canvas with alpha-blended, anti-aliased lines and discs,
 * rectangles, a 5x7 bitmap font drawn at integer scale, the colour palette, "nice" axis ticks
 * and the PNG writer. Internal to examples/supcon/plot (and its test); no global state. */
#ifndef SUPCON_PLOT_CANVAS_H
#define SUPCON_PLOT_CANVAS_H

#include <stddef.h>
#include <stdint.h>

typedef struct plot_rgb {
    uint8_t r, g, b;
} plot_rgb;

/* width x height pixels, rgb[(y * width + x) * 3 + channel], y down. */
typedef struct plot_canvas {
    int width, height;
    uint8_t *rgb;
} plot_canvas;

/* ---- canvas (plot_canvas.c); every call clips to the canvas ---- */

/* Returns 0, or -1 when out of memory (c is then empty). */
int plot_canvas_init(plot_canvas *c, int width, int height, plot_rgb background);
void plot_canvas_free(plot_canvas *c);
/* Blends col over pixel (x, y) with opacity alpha in [0, 1]. */
void plot_blend(plot_canvas *c, int x, int y, plot_rgb col, float alpha);
/* Fills x0 <= x < x1, y0 <= y < y1. */
void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1, plot_rgb col, float alpha);
/* Outline of the same box, line_width pixels thick, drawn inside it. */
void plot_rect(plot_canvas *c, int x0, int y0, int x1, int y1, int line_width, plot_rgb col);
/* Anti-aliased segment with round ends; coordinates in pixels (pixel centres at +0.5). */
void plot_line(plot_canvas *c, double x0, double y0, double x1, double y1, double width, plot_rgb col,
               float alpha);
/* Anti-aliased filled disc. */
void plot_disc(plot_canvas *c, double cx, double cy, double radius, plot_rgb col, float alpha);

/* ---- font (plot_font.c): printable ASCII 32..126, other bytes drawn as '?' ---- */

/* A glyph is 5x9 pixels (capitals and digits in rows 0..6, descenders in rows 7..8) in a cell
 * of 6x10 that leaves a column and a row of space. */
enum { PLOT_GLYPH_W = 5, PLOT_GLYPH_H = 9, PLOT_CELL_W = 6, PLOT_CELL_H = 10, PLOT_CAP_H = 7 };

/* 1 where glyph ch has a pixel at column x, row y; 0 elsewhere and outside the glyph. */
int plot_glyph_pixel(int ch, int x, int y);
/* Width in pixels of s drawn at scale (no space after the last character). */
int plot_text_width(const char *s, int scale);
/* Draws s with the top-left corner of its first cell at (x, y). */
void plot_text(plot_canvas *c, int x, int y, const char *s, int scale, plot_rgb col);
/* Draws s turned 90 degrees anticlockwise (reading upwards) in the box whose top-left corner
 * is (x, y): PLOT_CELL_H * scale wide, plot_text_width(s, scale) high. */
void plot_text_up(plot_canvas *c, int x, int y, const char *s, int scale, plot_rgb col);
/* Copies s into out (size bytes), cut and ended with "..." if wider than max_width pixels. */
void plot_fit_text(char *out, size_t size, const char *s, int max_width, int scale);

/* ---- shared pieces (plot_canvas.c) ---- */

/* Colour of class k: 20 qualitative colours (matplotlib's tab10, then its lighter tab20
 * partners), then hues spread by the golden angle. */
plot_rgb plot_palette(int k);
/* Draws title centred across the canvas with its top at y, one scale larger than scale, or
 * at scale when that is too wide, cut with "..." when even that is; returns the height used. */
int plot_title(plot_canvas *c, const char *title, int y, int scale, plot_rgb col);
/* Integer text scale for a picture of this size: 1 up to about 450 pixels, 2 at 1000x800. */
int plot_scale_for(int width, int height);
/* snprintf into err (when err and err_size are non-zero); returns -1 for `return plot_error(...)`. */
int plot_error(char *err, size_t err_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Checks the picture size; 0, or -1 with a message. */
int plot_check_size(int width, int height, char *err, size_t err_size);

/* ---- axis ticks (plot_curves.c) ---- */

/* Ticks lo, lo + step, ..., hi (count of them) covering the data range, step a 1, 2, 2.5 or 5
 * times a power of ten; decimals is what a label needs to show step exactly. */
typedef struct plot_ticks {
    double lo, hi, step;
    int count, decimals;
} plot_ticks;
/* At most max_ticks ticks (>= 2) over [min, max]; integer: steps of whole numbers only. A range
 * of one value is widened around it. */
void plot_nice_ticks(double min, double max, int max_ticks, int integer, plot_ticks *t);
void plot_tick_label(const plot_ticks *t, double v, char *out, size_t size);

/* ---- PNG (plot_png.c) ---- */

/* Writes the canvas as an 8-bit RGB PNG to path.tmp-PID, then renames it over path, so path
 * is either the old file or the whole new one. Returns 0, or -1 with a message in err. */
int plot_png_write(const plot_canvas *c, const char *path, char *err, size_t err_size);

#endif
