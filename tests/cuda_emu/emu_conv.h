/* The arithmetic of the emulated cuDNN's convolutions, on dense NCHW (filters KCRS) arrays of
 * float: im2col of one image, then one float GEMM (OpenBLAS), summing in float32 as cuDNN's
 * kernels do (in another order), so that ResNet-sized problems take seconds. The caller
 * (emu_cudnn_run.cpp) gathers the operands from cuDNN's layouts and rounds them first.
 * Internal to the emulation: emu_cudnn_internal.h (for Shape) and emu_cudnn_run.cpp. */
#ifndef SUPCON_CUDA_EMU_CONV_H
#define SUPCON_CUDA_EMU_CONV_H

#include <cblas.h>

#include <stddef.h>
#include <algorithm>
#include <vector>

namespace sc_emu_conv {

typedef float real;

struct Shape {
    int n, c, h, w;     /* input */
    int k, r, s;        /* output channels, filter height and width */
    int oh, ow;         /* output height and width */
    int ph, pw, u, v;   /* padding and strides */
    int dh, dw;         /* dilation */
};

/* col[(c r s) x (oh ow)] of image x (c x h x w): the input each filter tap sees, 0 in the
 * padding. The innermost loop runs along one output row (contiguous in col). */
inline void im2col(const Shape &d, const real *x, real *col)
{
    const size_t p = (size_t)d.oh * d.ow;
    for (int c = 0; c < d.c; c++)
        for (int r = 0; r < d.r; r++)
            for (int s = 0; s < d.s; s++) {
                real *row = col + (((size_t)c * d.r + r) * d.s + s) * p;
                const int dy = r * d.dh - d.ph, dx = s * d.dw - d.pw;
                for (int oy = 0; oy < d.oh; oy++) {
                    real *out = row + (size_t)oy * d.ow;
                    const int iy = oy * d.u + dy;
                    if (iy < 0 || iy >= d.h) {
                        std::fill(out, out + d.ow, 0.0f);
                        continue;
                    }
                    const real *in = x + ((size_t)c * d.h + iy) * d.w;
                    for (int ox = 0; ox < d.ow; ox++) {
                        const int ix = ox * d.v + dx;
                        out[ox] = ix >= 0 && ix < d.w ? in[ix] : 0.0f;
                    }
                }
            }
}

/* The adjoint of im2col: every tap's column added back into image dx (zeroed here). */
inline void col2im(const Shape &d, const real *col, real *dx)
{
    std::fill(dx, dx + (size_t)d.c * d.h * d.w, 0.0f);
    const size_t p = (size_t)d.oh * d.ow;
    for (int c = 0; c < d.c; c++)
        for (int r = 0; r < d.r; r++)
            for (int s = 0; s < d.s; s++) {
                const real *row = col + (((size_t)c * d.r + r) * d.s + s) * p;
                const int dy = r * d.dh - d.ph, dx0 = s * d.dw - d.pw;
                for (int oy = 0; oy < d.oh; oy++) {
                    const int iy = oy * d.u + dy;
                    if (iy < 0 || iy >= d.h)
                        continue;
                    const real *in = row + (size_t)oy * d.ow;
                    real *out = dx + ((size_t)c * d.h + iy) * d.w;
                    for (int ox = 0; ox < d.ow; ox++) {
                        const int ix = ox * d.v + dx0;
                        if (ix >= 0 && ix < d.w)
                            out[ix] += in[ox];
                    }
                }
            }
}

inline size_t taps(const Shape &d)
{
    return (size_t)d.c * d.r * d.s;
}

/* y[n][k][p] = sum over (c r s) of w[k][c r s] col_n[c r s][p] */
inline void forward(const Shape &d, const real *x, const real *w, real *y)
{
    const size_t p = (size_t)d.oh * d.ow, t = taps(d);
    std::vector<real> col(t * p);
    for (int i = 0; i < d.n; i++) {
        im2col(d, x + (size_t)i * d.c * d.h * d.w, col.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d.k, (int)p, (int)t, 1.0f, w, (int)t, col.data(),
                    (int)p, 0.0f, y + (size_t)i * d.k * p, (int)p);
    }
}

/* dx_n = col2im(w^T dy_n) */
inline void backward_data(const Shape &d, const real *w, const real *dy, real *dx)
{
    const size_t p = (size_t)d.oh * d.ow, t = taps(d);
    std::vector<real> col(t * p);
    for (int i = 0; i < d.n; i++) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t, (int)p, d.k, 1.0f, w, (int)t,
                    dy + (size_t)i * d.k * p, (int)p, 0.0f, col.data(), (int)p);
        col2im(d, col.data(), dx + (size_t)i * d.c * d.h * d.w);
    }
}

/* dw = sum over images of dy_n col_n^T */
inline void backward_filter(const Shape &d, const real *x, const real *dy, real *dw)
{
    const size_t p = (size_t)d.oh * d.ow, t = taps(d);
    std::vector<real> col(t * p);
    std::fill(dw, dw + (size_t)d.k * t, 0.0f);
    for (int i = 0; i < d.n; i++) {
        im2col(d, x + (size_t)i * d.c * d.h * d.w, col.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d.k, (int)t, (int)p, 1.0f, dy + (size_t)i * d.k * p,
                    (int)p, col.data(), (int)p, 1.0f, dw, (int)t);
    }
}

} // namespace sc_emu_conv

#endif /* SUPCON_CUDA_EMU_CONV_H */
