/* The reference convolution of the conv2d tests: the definition, loop by loop, in double;
 * and the random operands the tests feed it. Header-only. */
#ifndef SUPCON_TEST_CONV_REF_H
#define SUPCON_TEST_CONV_REF_H

#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "test_ops_util.h"

static inline int64_t x_size(const supcon_conv_desc *d) { return d->n * d->c_in * d->h * d->w; }
static inline int64_t w_size(const supcon_conv_desc *d) { return d->c_out * d->c_in * d->kh * d->kw; }
static inline int64_t y_size(const supcon_conv_desc *d) {
    return d->n * d->c_out * supcon_conv_out_h(d) * supcon_conv_out_w(d);
}

/* Calls f(yi, xi, wi) for every (output, input, weight) index triple that meets. */
#define REF_CONV_FOR_EACH(d, BODY)                                                                 \
    do {                                                                                           \
        const int64_t oh_ = supcon_conv_out_h(d), ow_ = supcon_conv_out_w(d);                      \
        for (int64_t b = 0; b < (d)->n; b++)                                                       \
            for (int64_t o = 0; o < (d)->c_out; o++)                                               \
                for (int64_t oy = 0; oy < oh_; oy++)                                               \
                    for (int64_t ox = 0; ox < ow_; ox++)                                           \
                        for (int64_t c = 0; c < (d)->c_in; c++)                                    \
                            for (int64_t ki = 0; ki < (d)->kh; ki++)                               \
                                for (int64_t kj = 0; kj < (d)->kw; kj++) {                         \
                                    const int64_t iy = oy * (d)->stride_h - (d)->pad_h + ki;       \
                                    const int64_t ix = ox * (d)->stride_w - (d)->pad_w + kj;       \
                                    if (iy < 0 || iy >= (d)->h || ix < 0 || ix >= (d)->w) continue; \
                                    const int64_t yi = ((b * (d)->c_out + o) * oh_ + oy) * ow_ + ox; \
                                    const int64_t xi = ((b * (d)->c_in + c) * (d)->h + iy) * (d)->w + ix; \
                                    const int64_t wi = ((o * (d)->c_in + c) * (d)->kh + ki) * (d)->kw + kj; \
                                    BODY;                                                          \
                                }                                                                  \
    } while (0)

static inline void ref_forward(const supcon_conv_desc *d, double *y, const double *x, const double *w) {
    memset(y, 0, sizeof(double) * (size_t)y_size(d));
    REF_CONV_FOR_EACH(d, y[yi] += x[xi] * w[wi]);
}

/* dx and dw overwritten. */
static inline void ref_backward(const supcon_conv_desc *d, double *dx, double *dw, const double *dy, const double *x,
                                const double *w) {
    memset(dx, 0, sizeof(double) * (size_t)x_size(d));
    memset(dw, 0, sizeof(double) * (size_t)w_size(d));
    REF_CONV_FOR_EACH(d, {
        dx[xi] += dy[yi] * w[wi];
        dw[wi] += dy[yi] * x[xi];
    });
}

/* Random operands of one convolution and room for its results: x, w and dy from N(0, 1),
 * N(0, 0.25) and N(0, 1); dx0 and dw0, the gradients' starting values for +=, from N(0, 1). */
typedef struct conv_io {
    int64_t nx, nw, ny;
    float *x, *w, *dy, *dx0, *dw0; /* operands */
    float *y, *dx, *dw;            /* results */
} conv_io;

static inline conv_io conv_io_make(const supcon_conv_desc *d, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    conv_io io = {x_size(d), w_size(d), y_size(d), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    io.x = to_floats(io.nx), io.w = to_floats(io.nw), io.dy = to_floats(io.ny);
    io.dx0 = to_floats(io.nx), io.dw0 = to_floats(io.nw);
    io.y = to_floats(io.ny), io.dx = to_floats(io.nx), io.dw = to_floats(io.nw);
    to_fill(&r, io.x, io.nx, 1.0);
    to_fill(&r, io.w, io.nw, 0.5);
    to_fill(&r, io.dy, io.ny, 1.0);
    to_fill(&r, io.dx0, io.nx, 1.0);
    to_fill(&r, io.dw0, io.nw, 1.0);
    return io;
}

static inline void conv_io_free(conv_io *io) {
    free(io->x), free(io->w), free(io->dy), free(io->dx0), free(io->dw0), free(io->y), free(io->dx), free(io->dw);
}

#endif
