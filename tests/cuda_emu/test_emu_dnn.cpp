/* Self-test of the emulated cuDNN and cuBLAS (emu_cudnn_*.cpp, emu_cublas.cpp) against sums
 * written out naively here: a 3x3 stride-2 pad-1 convolution in NCHW and NHWC, float and
 * bfloat16, in all three directions and with every algorithm offered; alpha and beta; TF32
 * rounding where the math type allows it; refusals that are not recorded and misuse that is;
 * SGEMM with every transpose against a plain product. Operands are small multiples of 1/8,
 * so every sum is exact and the results can be compared for equality. Exit status 0 or 1. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "emu.h"
#include "emu_round.h"

static int g_failed;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            g_failed++;                                                                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                           \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

/* ---- the reference ---------------------------------------------------------------------- */

struct Conv {
    int n, c, h, w, k, r, s, ph, pw, u, v;
    int oh() const { return (h + 2 * ph - r) / u + 1; }
    int ow() const { return (w + 2 * pw - s) / v + 1; }
    size_t nx() const { return (size_t)n * c * h * w; }
    size_t nw() const { return (size_t)k * c * r * s; }
    size_t ny() const { return (size_t)n * k * oh() * ow(); }
};

/* Visits every (output, tap) pair the convolution sums over, with NCHW/KCRS indices. */
template <class F> static void each_term(const Conv &d, F f)
{
    for (int n = 0; n < d.n; n++)
        for (int k = 0; k < d.k; k++)
            for (int oy = 0; oy < d.oh(); oy++)
                for (int ox = 0; ox < d.ow(); ox++)
                    for (int c = 0; c < d.c; c++)
                        for (int r = 0; r < d.r; r++)
                            for (int s = 0; s < d.s; s++) {
                                const int iy = oy * d.u - d.ph + r, ix = ox * d.v - d.pw + s;
                                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w)
                                    continue;
                                f((((size_t)n * d.c + c) * d.h + iy) * d.w + ix,
                                  (((size_t)k * d.c + c) * d.r + r) * d.s + s,
                                  (((size_t)n * d.k + k) * d.oh() + oy) * d.ow() + ox);
                            }
}

static std::vector<double> ref_forward(const Conv &d, const std::vector<double> &x, const std::vector<double> &w)
{
    std::vector<double> y(d.ny(), 0.0);
    each_term(d, [&](size_t xi, size_t wi, size_t yi) { y[yi] += x[xi] * w[wi]; });
    return y;
}

static std::vector<double> ref_backward_data(const Conv &d, const std::vector<double> &w, const std::vector<double> &dy)
{
    std::vector<double> dx(d.nx(), 0.0);
    each_term(d, [&](size_t xi, size_t wi, size_t yi) { dx[xi] += w[wi] * dy[yi]; });
    return dx;
}

static std::vector<double> ref_backward_filter(const Conv &d, const std::vector<double> &x,
                                               const std::vector<double> &dy)
{
    std::vector<double> dw(d.nw(), 0.0);
    each_term(d, [&](size_t xi, size_t wi, size_t yi) { dw[wi] += x[xi] * dy[yi]; });
    return dw;
}

/* Small multiples of 1/8: exact in bfloat16, and every sum of products exact in float. */
static std::vector<double> values(size_t count, unsigned seed)
{
    std::vector<double> v(count);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (double)((int)((seed >> 16) % 33) - 16) / 8.0;
    }
    return v;
}

/* ---- device buffers in cuDNN's layouts --------------------------------------------------- */

/* NCHW (dims a b c d) -> NHWC (a c d b) when rows, as floats or bfloat16 bits. */
static std::vector<uint8_t> to_bytes(const std::vector<double> &v, const int dim[4], bool rows, bool bf16)
{
    const size_t es = bf16 ? 2 : 4;
    std::vector<uint8_t> out(v.size() * es);
    for (int a = 0; a < dim[0]; a++)
        for (int b = 0; b < dim[1]; b++)
            for (int c = 0; c < dim[2]; c++)
                for (int d = 0; d < dim[3]; d++) {
                    const size_t src = (((size_t)a * dim[1] + b) * dim[2] + c) * dim[3] + d;
                    const size_t dst = rows ? (((size_t)a * dim[2] + c) * dim[3] + d) * dim[1] + b : src;
                    if (bf16) {
                        const uint16_t h = sc_emu_to_bf16((float)v[src]);
                        memcpy(&out[dst * es], &h, 2);
                    } else {
                        const float f = (float)v[src];
                        memcpy(&out[dst * es], &f, 4);
                    }
                }
    return out;
}

static std::vector<double> from_bytes(const void *p, const int dim[4], bool rows, bool bf16)
{
    std::vector<double> out((size_t)dim[0] * dim[1] * dim[2] * dim[3]);
    for (int a = 0; a < dim[0]; a++)
        for (int b = 0; b < dim[1]; b++)
            for (int c = 0; c < dim[2]; c++)
                for (int d = 0; d < dim[3]; d++) {
                    const size_t dst = (((size_t)a * dim[1] + b) * dim[2] + c) * dim[3] + d;
                    const size_t src = rows ? (((size_t)a * dim[2] + c) * dim[3] + d) * dim[1] + b : dst;
                    out[dst] = bf16 ? sc_emu_from_bf16(((const uint16_t *)p)[src]) : ((const float *)p)[src];
                }
    return out;
}

/* The reference's result as the emulation stores it: rounded to float, then to bfloat16. */
static double stored(double v, bool bf16)
{
    return bf16 ? sc_emu_from_bf16(sc_emu_to_bf16((float)v)) : (double)(float)v;
}

static void *dev(size_t bytes)
{
    void *p = nullptr;
    CHECK(cudaMalloc(&p, bytes) == cudaSuccess, "cudaMalloc %zu", bytes);
    return p;
}

static void fill_nan(void *p, size_t bytes)
{
    memset(p, 0xff, bytes); /* NaN in float and in bfloat16 */
}

static int mismatches(const std::vector<double> &got, const std::vector<double> &want, bool bf16)
{
    int bad = 0;
    for (size_t i = 0; i < got.size(); i++)
        if (!(got[i] == stored(want[i], bf16)))
            bad++;
    return bad;
}

/* ---- convolutions ------------------------------------------------------------------------- */

struct Descs {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
};

static Descs make_descs(const Conv &d, bool rows, bool bf16, cudnnMathType_t math)
{
    Descs s{};
    const cudnnTensorFormat_t f = rows ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    const cudnnDataType_t t = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    CHECK(cudnnCreateTensorDescriptor(&s.x) == CUDNN_STATUS_SUCCESS, "create x");
    CHECK(cudnnCreateTensorDescriptor(&s.y) == CUDNN_STATUS_SUCCESS, "create y");
    CHECK(cudnnCreateFilterDescriptor(&s.w) == CUDNN_STATUS_SUCCESS, "create w");
    CHECK(cudnnCreateConvolutionDescriptor(&s.conv) == CUDNN_STATUS_SUCCESS, "create conv");
    CHECK(cudnnSetTensor4dDescriptor(s.x, f, t, d.n, d.c, d.h, d.w) == CUDNN_STATUS_SUCCESS, "set x");
    CHECK(cudnnSetFilter4dDescriptor(s.w, t, f, d.k, d.c, d.r, d.s) == CUDNN_STATUS_SUCCESS, "set w");
    CHECK(cudnnSetConvolution2dDescriptor(s.conv, d.ph, d.pw, d.u, d.v, 1, 1, CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS,
          "set conv");
    CHECK(cudnnSetConvolutionMathType(s.conv, math) == CUDNN_STATUS_SUCCESS, "math");
    int on = 0, oc = 0, oh = 0, ow = 0;
    CHECK(cudnnGetConvolution2dForwardOutputDim(s.conv, s.x, s.w, &on, &oc, &oh, &ow) == CUDNN_STATUS_SUCCESS &&
              on == d.n && oc == d.k && oh == d.oh() && ow == d.ow(),
          "output dim %dx%dx%dx%d", on, oc, oh, ow);
    CHECK(cudnnSetTensor4dDescriptor(s.y, f, t, d.n, d.k, d.oh(), d.ow()) == CUDNN_STATUS_SUCCESS, "set y");
    return s;
}

static void free_descs(Descs &s)
{
    cudnnDestroyTensorDescriptor(s.x);
    cudnnDestroyTensorDescriptor(s.y);
    cudnnDestroyFilterDescriptor(s.w);
    cudnnDestroyConvolutionDescriptor(s.conv);
}

/* Every algorithm the heuristics offer, run in each direction against the reference. */
static void test_conv(cudnnHandle_t h, const Conv &d, bool rows, bool bf16)
{
    const int xdim[4] = {d.n, d.c, d.h, d.w}, wdim[4] = {d.k, d.c, d.r, d.s}, ydim[4] = {d.n, d.k, d.oh(), d.ow()};
    const std::vector<double> x = values(d.nx(), 1), w = values(d.nw(), 2), dy = values(d.ny(), 3);
    const std::vector<double> y_ref = ref_forward(d, x, w), dx_ref = ref_backward_data(d, w, dy),
                              dw_ref = ref_backward_filter(d, x, dy);
    const size_t es = bf16 ? 2 : 4;
    void *xd = dev(d.nx() * es), *wd = dev(d.nw() * es), *yd = dev(d.ny() * es), *dyd = dev(d.ny() * es);
    void *dxd = dev(d.nx() * es), *dwd = dev(d.nw() * es), *ws = dev(1 << 20);
    const std::vector<uint8_t> xb = to_bytes(x, xdim, rows, bf16), wb = to_bytes(w, wdim, rows, bf16),
                               dyb = to_bytes(dy, ydim, rows, bf16);
    memcpy(xd, xb.data(), xb.size());
    memcpy(wd, wb.data(), wb.size());
    memcpy(dyd, dyb.data(), dyb.size());
    /* FMA for float (exact sums); bfloat16 operands are the same under any math type */
    Descs s = make_descs(d, rows, bf16, bf16 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
    const char *what = bf16 ? (rows ? "bf16 NHWC" : "bf16 NCHW") : (rows ? "float NHWC" : "float NCHW");
    const float one = 1.0f, zero = 0.0f;
    int got = 0, ran = 0;

    cudnnConvolutionFwdAlgoPerf_t fp[12];
    CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, s.x, s.w, s.conv, s.y, 12, &got, fp) == CUDNN_STATUS_SUCCESS,
          "fwd _v7");
    for (int i = 0; i < got; i++) {
        if (fp[i].status != CUDNN_STATUS_SUCCESS || fp[i].memory > (1u << 20))
            continue; /* FFT's workspace is beyond any cap */
        size_t bytes = 1;
        CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, s.x, s.w, s.conv, s.y, fp[i].algo, &bytes) ==
                      CUDNN_STATUS_SUCCESS &&
                  bytes == fp[i].memory,
              "%s fwd algo %d workspace %zu vs %zu", what, (int)fp[i].algo, bytes, fp[i].memory);
        fill_nan(yd, d.ny() * es);
        CHECK(cudnnConvolutionForward(h, &one, s.x, xd, s.w, wd, s.conv, fp[i].algo, ws, 1 << 20, &zero, s.y, yd) ==
                  CUDNN_STATUS_SUCCESS,
              "%s fwd algo %d", what, (int)fp[i].algo);
        const int bad = mismatches(from_bytes(yd, ydim, rows, bf16), y_ref, bf16);
        CHECK(bad == 0, "%s forward algo %d: %d of %zu differ", what, (int)fp[i].algo, bad, d.ny());
        ran++;
    }
    CHECK(ran >= 2, "%s: %d forward algorithms ran", what, ran);

    cudnnConvolutionBwdDataAlgoPerf_t dp[12];
    CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, s.w, s.y, s.conv, s.x, 12, &got, dp) == CUDNN_STATUS_SUCCESS,
          "bwd data _v7");
    CHECK(got > 0 && dp[0].determinism == CUDNN_NON_DETERMINISTIC, "bwd data: the first is not deterministic");
    ran = 0;
    for (int i = 0; i < got; i++) {
        if (dp[i].status != CUDNN_STATUS_SUCCESS)
            continue;
        fill_nan(dxd, d.nx() * es);
        CHECK(cudnnConvolutionBackwardData(h, &one, s.w, wd, s.y, dyd, s.conv, dp[i].algo, ws, 1 << 20, &zero, s.x,
                                           dxd) == CUDNN_STATUS_SUCCESS,
              "%s bwd data algo %d", what, (int)dp[i].algo);
        const int bad = mismatches(from_bytes(dxd, xdim, rows, bf16), dx_ref, bf16);
        CHECK(bad == 0, "%s backward data algo %d: %d of %zu differ", what, (int)dp[i].algo, bad, d.nx());
        ran++;
    }
    CHECK(ran >= 2, "%s: %d backward-data algorithms ran", what, ran);

    cudnnConvolutionBwdFilterAlgoPerf_t wp[12];
    CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, s.x, s.y, s.conv, s.w, 12, &got, wp) == CUDNN_STATUS_SUCCESS,
          "bwd filter _v7");
    ran = 0;
    for (int i = 0; i < got; i++) {
        if (wp[i].status != CUDNN_STATUS_SUCCESS)
            continue;
        fill_nan(dwd, d.nw() * es);
        CHECK(cudnnConvolutionBackwardFilter(h, &one, s.x, xd, s.y, dyd, s.conv, wp[i].algo, ws, 1 << 20, &zero, s.w,
                                             dwd) == CUDNN_STATUS_SUCCESS,
              "%s bwd filter algo %d", what, (int)wp[i].algo);
        const int bad = mismatches(from_bytes(dwd, wdim, rows, bf16), dw_ref, bf16);
        CHECK(bad == 0, "%s backward filter algo %d: %d of %zu differ", what, (int)wp[i].algo, bad, d.nw());
        ran++;
    }
    CHECK(ran >= 2, "%s: %d backward-filter algorithms ran", what, ran);

    /* beta: y = 2 conv + 0.5 y and dw = conv + dw (what the module's weight gradient does) */
    const std::vector<double> old = values(d.ny(), 4), oldw = values(d.nw(), 5);
    const std::vector<uint8_t> oldb = to_bytes(old, ydim, rows, bf16), oldwb = to_bytes(oldw, wdim, rows, bf16);
    memcpy(yd, oldb.data(), oldb.size());
    memcpy(dwd, oldwb.data(), oldwb.size());
    const float two = 2.0f, half = 0.5f;
    CHECK(cudnnConvolutionForward(h, &two, s.x, xd, s.w, wd, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
                                  0, &half, s.y, yd) == CUDNN_STATUS_SUCCESS,
          "%s fwd beta", what);
    CHECK(cudnnConvolutionBackwardFilter(h, &one, s.x, xd, s.y, dyd, s.conv, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                         nullptr, 0, &one, s.w, dwd) == CUDNN_STATUS_SUCCESS,
          "%s bwd filter beta", what);
    std::vector<double> want(d.ny()), wantw(d.nw());
    for (size_t i = 0; i < want.size(); i++)
        want[i] = 2.0 * y_ref[i] + 0.5 * old[i];
    for (size_t i = 0; i < wantw.size(); i++)
        wantw[i] = dw_ref[i] + oldw[i];
    CHECK(mismatches(from_bytes(yd, ydim, rows, bf16), want, bf16) == 0, "%s forward with beta 0.5", what);
    CHECK(mismatches(from_bytes(dwd, wdim, rows, bf16), wantw, bf16) == 0, "%s backward filter with beta 1", what);

    free_descs(s);
    for (void *p : {xd, wd, yd, dyd, dxd, dwd, ws})
        cudaFree(p);
}

/* CUDNN_CONVOLUTION: the cross-correlation with the filter's taps reversed. */
static void test_flip(cudnnHandle_t h)
{
    const Conv d{2, 3, 6, 5, 2, 3, 2, 1, 1, 1, 2};
    const int xdim[4] = {d.n, d.c, d.h, d.w}, wdim[4] = {d.k, d.c, d.r, d.s}, ydim[4] = {d.n, d.k, d.oh(), d.ow()};
    const std::vector<double> x = values(d.nx(), 6), w = values(d.nw(), 7), dy = values(d.ny(), 8);
    std::vector<double> wf(d.nw());
    for (int k = 0; k < d.k; k++)
        for (int c = 0; c < d.c; c++)
            for (int r = 0; r < d.r; r++)
                for (int s = 0; s < d.s; s++)
                    wf[(((size_t)k * d.c + c) * d.r + r) * d.s + s] =
                        w[(((size_t)k * d.c + c) * d.r + (d.r - 1 - r)) * d.s + (d.s - 1 - s)];
    const std::vector<double> y_ref = ref_forward(d, x, wf), dwf = ref_backward_filter(d, x, dy);
    std::vector<double> dw_ref(d.nw());
    for (int k = 0; k < d.k; k++)
        for (int c = 0; c < d.c; c++)
            for (int r = 0; r < d.r; r++)
                for (int s = 0; s < d.s; s++)
                    dw_ref[(((size_t)k * d.c + c) * d.r + r) * d.s + s] =
                        dwf[(((size_t)k * d.c + c) * d.r + (d.r - 1 - r)) * d.s + (d.s - 1 - s)];
    Descs s = make_descs(d, true, false, CUDNN_FMA_MATH);
    CHECK(cudnnSetConvolution2dDescriptor(s.conv, d.ph, d.pw, d.u, d.v, 1, 1, CUDNN_CONVOLUTION, CUDNN_DATA_FLOAT) ==
              CUDNN_STATUS_SUCCESS,
          "set CUDNN_CONVOLUTION");
    void *xd = dev(d.nx() * 4), *wd = dev(d.nw() * 4), *yd = dev(d.ny() * 4), *dyd = dev(d.ny() * 4),
         *dwd = dev(d.nw() * 4);
    const std::vector<uint8_t> xb = to_bytes(x, xdim, true, false), wb = to_bytes(w, wdim, true, false),
                               dyb = to_bytes(dy, ydim, true, false);
    memcpy(xd, xb.data(), xb.size());
    memcpy(wd, wb.data(), wb.size());
    memcpy(dyd, dyb.data(), dyb.size());
    const float one = 1.0f, zero = 0.0f;
    CHECK(cudnnConvolutionForward(h, &one, s.x, xd, s.w, wd, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
                                  0, &zero, s.y, yd) == CUDNN_STATUS_SUCCESS,
          "flip forward");
    CHECK(cudnnConvolutionBackwardFilter(h, &one, s.x, xd, s.y, dyd, s.conv, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                         nullptr, 0, &zero, s.w, dwd) == CUDNN_STATUS_SUCCESS,
          "flip backward filter");
    CHECK(mismatches(from_bytes(yd, ydim, true, false), y_ref, false) == 0, "CUDNN_CONVOLUTION forward");
    CHECK(mismatches(from_bytes(dwd, wdim, true, false), dw_ref, false) == 0, "CUDNN_CONVOLUTION backward filter");
    for (void *p : {xd, wd, yd, dyd, dwd})
        cudaFree(p);
    free_descs(s);
}

/* 1x1 convolution of one pixel: y = x w, where x has bits TF32 drops. */
static float tf32_probe(cudnnHandle_t h, cudnnMathType_t math, float xv)
{
    const Conv d{1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
    Descs s = make_descs(d, false, false, math);
    float *p = (float *)dev(3 * sizeof(float));
    p[0] = xv, p[1] = 1.0f, p[2] = NAN;
    const float one = 1.0f, zero = 0.0f;
    CHECK(cudnnConvolutionForward(h, &one, s.x, p, s.w, p + 1, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                  nullptr, 0, &zero, s.y, p + 2) == CUDNN_STATUS_SUCCESS,
          "tf32 probe");
    const float y = p[2];
    cudaFree(p);
    free_descs(s);
    return y;
}

static void test_tf32(cudnnHandle_t h)
{
    const float below = 1.0f + ldexpf(1.0f, -12), tie = 1.0f + ldexpf(1.0f, -11);
    CHECK(sc_emu_tf32(below) == 1.0f, "tf32 rounds 1 + 2^-12 down");
    CHECK(sc_emu_tf32(tie) == 1.0f + ldexpf(1.0f, -10), "tf32 rounds a tie away from zero");
    CHECK(sc_emu_tf32(-tie) == -(1.0f + ldexpf(1.0f, -10)), "tf32 rounds a negative tie away from zero");
    CHECK(sc_emu_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80, "bf16 ties to even (down)");
    CHECK(sc_emu_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82, "bf16 ties to even (up)");
    CHECK(tf32_probe(h, CUDNN_DEFAULT_MATH, below) == 1.0f, "DEFAULT_MATH: TF32 not visible");
    CHECK(tf32_probe(h, CUDNN_TENSOR_OP_MATH, tie) == 1.0f + ldexpf(1.0f, -10), "TENSOR_OP_MATH: TF32 not visible");
    CHECK(tf32_probe(h, CUDNN_FMA_MATH, below) == below, "FMA_MATH rounded the operands");
    setenv("NVIDIA_TF32_OVERRIDE", "0", 1);
    CHECK(tf32_probe(h, CUDNN_DEFAULT_MATH, below) == below, "NVIDIA_TF32_OVERRIDE=0 did not turn TF32 off");
    unsetenv("NVIDIA_TF32_OVERRIDE");
}

/* What cuDNN refuses is refused without being recorded; misuse is recorded as well. */
static void test_refusals(cudnnHandle_t h)
{
    const Conv d{2, 3, 7, 6, 4, 3, 3, 1, 1, 2, 2};
    Descs s = make_descs(d, false, false, CUDNN_FMA_MATH);
    float *x = (float *)dev(d.nx() * 4), *w = (float *)dev(d.nw() * 4), *y = (float *)dev(d.ny() * 4);
    memset(x, 0, d.nx() * 4);
    memset(w, 0, d.nw() * 4);
    const float one = 1.0f, zero = 0.0f;
    const int before = sc_emu_failures();
    size_t bytes = 0;

    cudnnFilterDescriptor_t wb, wr;
    cudnnCreateFilterDescriptor(&wb);
    cudnnCreateFilterDescriptor(&wr);
    cudnnSetFilter4dDescriptor(wb, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW, d.k, d.c, d.r, d.s);
    cudnnSetFilter4dDescriptor(wr, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, d.k, d.c, d.r, d.s);
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, wb, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, s.y, y) == CUDNN_STATUS_BAD_PARAM,
          "float x with a bfloat16 filter");
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, wr, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, s.y, y) == CUDNN_STATUS_NOT_SUPPORTED,
          "a KRSC filter with NCHW tensors");
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, nullptr, 0, &zero,
                                  s.y, y) == CUDNN_STATUS_NOT_SUPPORTED,
          "an algorithm not offered");
    CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, s.w, s.y, s.conv, s.x,
                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
                                                       &bytes) == CUDNN_STATUS_NOT_SUPPORTED,
          "Winograd with stride 2");
    cudnnTensorDescriptor_t yw;
    cudnnCreateTensorDescriptor(&yw);
    cudnnSetTensor4dDescriptor(yw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d.n, d.k, d.oh() + 1, d.ow());
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, yw, y) == CUDNN_STATUS_NOT_SUPPORTED,
          "y of the wrong height");
    CHECK(sc_emu_failures() == before, "a documented refusal was recorded as misuse");
    char msg[256] = "";
    cudnnGetLastErrorString(msg, sizeof msg);
    CHECK(strstr(msg, "cudnnConvolutionForward") != nullptr, "last error string: '%s'", msg);

    /* misuse: each is refused and recorded once */
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                  nullptr, 0, &zero, s.y, y) == CUDNN_STATUS_BAD_PARAM,
          "no workspace for an algorithm that needs one");
    CHECK(sc_emu_failures() == before + 1, "a missing workspace was not recorded");
    CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, s.x, s.w, s.conv, s.y,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &bytes) ==
                  CUDNN_STATUS_SUCCESS &&
              bytes > 0,
          "precomp workspace %zu", bytes);
    void *small = dev(bytes - 1);
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                  small, bytes - 1, &zero, s.y, y) == CUDNN_STATUS_BAD_PARAM,
          "a workspace one byte short");
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                  small, bytes, &zero, s.y, y) == CUDNN_STATUS_BAD_PARAM,
          "a workspace said to be larger than its allocation");
    CHECK(sc_emu_failures() == before + 3, "short workspaces recorded %d times", sc_emu_failures() - before);
    float *y_short = (float *)dev(d.ny() * 4 - 4);
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, s.y, y_short) != CUDNN_STATUS_SUCCESS,
          "y one element outside its allocation");
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, s.y, x) != CUDNN_STATUS_SUCCESS,
          "y over x (in place)");
    cudnnDestroyTensorDescriptor(yw);
    CHECK(cudnnConvolutionForward(h, &one, s.x, x, s.w, w, s.conv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0,
                                  &zero, yw, y) == CUDNN_STATUS_BAD_PARAM,
          "a destroyed descriptor");
    CHECK(sc_emu_failures() == before + 6, "misuse recorded %d times, 6 expected", sc_emu_failures() - before);
    sc_emu_forget_failures();

    cudnnDestroyFilterDescriptor(wb);
    cudnnDestroyFilterDescriptor(wr);
    for (void *p : {(void *)x, (void *)w, (void *)y, small, (void *)y_short})
        cudaFree(p);
    free_descs(s);
}

/* The rankings: tensor-op pairs first under DEFAULT_MATH, FMA only under FMA_MATH; Find's
 * times ascending; what does not run listed last as NOT_SUPPORTED. */
static void test_rankings(cudnnHandle_t h)
{
    const Conv d{2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1};
    for (int m = 0; m < 2; m++) {
        const cudnnMathType_t math = m ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        Descs s = make_descs(d, false, false, math);
        cudnnConvolutionFwdAlgoPerf_t heur[12], found[12];
        int nh = 0, nf = 0;
        CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, s.x, s.w, s.conv, s.y, 12, &nh, heur) == CUDNN_STATUS_SUCCESS,
              "_v7");
        CHECK(cudnnFindConvolutionForwardAlgorithm(h, s.x, s.w, s.conv, s.y, 12, &nf, found) == CUDNN_STATUS_SUCCESS,
              "Find");
        CHECK(nh == nf && nh > 3, "%d heuristic and %d found", nh, nf);
        CHECK(heur[0].mathType == (m ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH), "first math type %d",
              (int)heur[0].mathType);
        bool tail = false;
        for (int i = 0; i < nh; i++) {
            CHECK(heur[i].time == -1.0f, "heuristic time %g", (double)heur[i].time);
            if (m)
                CHECK(heur[i].mathType == CUDNN_FMA_MATH, "FMA_MATH listed math type %d", (int)heur[i].mathType);
            tail = tail || heur[i].status != CUDNN_STATUS_SUCCESS;
            CHECK(!tail || heur[i].status == CUDNN_STATUS_NOT_SUPPORTED, "a runnable algorithm after NOT_SUPPORTED");
        }
        for (int i = 1; i < nf; i++)
            if (found[i].status == CUDNN_STATUS_SUCCESS)
                CHECK(found[i].time >= found[i - 1].time && found[i - 1].status == CUDNN_STATUS_SUCCESS,
                      "Find's times not ascending");
        int small = 0;
        CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, s.x, s.w, s.conv, s.y, 2, &small, heur) ==
                      CUDNN_STATUS_SUCCESS &&
                  small == 2,
              "requested 2, got %d", small);
        free_descs(s);
    }
}

/* ---- SGEMM -------------------------------------------------------------------------------- */

static void test_sgemm(void)
{
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST) == CUBLAS_STATUS_SUCCESS, "pointer mode");
    const int m = 5, n = 4, k = 3;
    for (int t = 0; t < 4; t++) {
        const cublasOperation_t ta = t & 1 ? CUBLAS_OP_T : CUBLAS_OP_N, tb = t & 2 ? CUBLAS_OP_T : CUBLAS_OP_N;
        const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
        const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
        const int lda = ar + 2, ldb = br + 1, ldc = m + 3;
        float *A = (float *)dev((size_t)lda * ac * 4), *B = (float *)dev((size_t)ldb * bc * 4),
              *C = (float *)dev((size_t)ldc * n * 4);
        const std::vector<double> av = values((size_t)lda * ac, 10 + t), bv = values((size_t)ldb * bc, 20 + t),
                                  cv = values((size_t)ldc * n, 30 + t);
        for (size_t i = 0; i < av.size(); i++)
            A[i] = (float)av[i];
        for (size_t i = 0; i < bv.size(); i++)
            B[i] = (float)bv[i];
        for (int beta_case = 0; beta_case < 2; beta_case++) {
            for (size_t i = 0; i < cv.size(); i++)
                C[i] = beta_case ? (float)cv[i] : NAN; /* beta 0: NaN must not come through */
            const float alpha = 1.5f, beta = beta_case ? 0.5f : 0.0f;
            CHECK(cublasSgemm(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc) == CUBLAS_STATUS_SUCCESS,
                  "sgemm %d", t);
            int bad = 0;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    double sum = 0.0;
                    for (int p = 0; p < k; p++) {
                        const double a = ta == CUBLAS_OP_N ? av[(size_t)p * lda + i] : av[(size_t)i * lda + p];
                        const double b = tb == CUBLAS_OP_N ? bv[(size_t)j * ldb + p] : bv[(size_t)p * ldb + j];
                        sum += a * b;
                    }
                    const double want = 1.5 * sum + (beta_case ? 0.5 * cv[(size_t)j * ldc + i] : 0.0);
                    bad += C[(size_t)j * ldc + i] != (float)want;
                }
            CHECK(bad == 0, "sgemm transa %d transb %d beta %g: %d differ", (int)ta, (int)tb, (double)beta, bad);
        }
        cudaFree(A);
        cudaFree(B);
        cudaFree(C);
    }

    /* TF32 under CUBLAS_TF32_TENSOR_OP_MATH only */
    float *p = (float *)dev(3 * 4);
    const float one = 1.0f, zero = 0.0f, below = 1.0f + ldexpf(1.0f, -12);
    p[0] = below, p[1] = 1.0f;
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, p, 1, p + 1, 1, &zero, p + 2, 1) ==
                  CUBLAS_STATUS_SUCCESS &&
              p[2] == below,
          "DEFAULT_MATH sgemm rounded: %.9g", (double)p[2]);
    CHECK(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS, "math mode");
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, p, 1, p + 1, 1, &zero, p + 2, 1) ==
                  CUBLAS_STATUS_SUCCESS &&
              p[2] == 1.0f,
          "TF32 sgemm not rounded: %.9g", (double)p[2]);

    /* refused (lda too small, k < 0) without a record; a matrix past its allocation recorded */
    const int before = sc_emu_failures();
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 1, &one, p, 1, p, 1, &zero, p + 2, 2) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "lda < m");
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, -1, &one, p, 1, p, 1, &zero, p + 2, 1) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "k < 0");
    CHECK(sc_emu_failures() == before, "an invalid value was recorded as misuse");
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 2, 1, &one, p, 1, p + 1, 1, &zero, p + 2, 1) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "C past its allocation");
    CHECK(sc_emu_failures() == before + 1, "C past its allocation was not recorded");
    sc_emu_forget_failures();
    cudaFree(p);
    CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
    CHECK(strcmp(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE") == 0, "status name");
}

int main(void)
{
    cudnnHandle_t h;
    if (cudnnCreate(&h) != CUDNN_STATUS_SUCCESS || cudnnSetStream(h, 0) != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "FAIL: cudnnCreate\n");
        return 1;
    }
    unsetenv("NVIDIA_TF32_OVERRIDE"); /* the tests of TF32 need it allowed */
    /* the 3x3 stride-2 pad-1 case, and one where every height/width pair differs, so that
     * a swapped pair shows */
    const Conv shapes[] = {{2, 3, 7, 6, 4, 3, 3, 1, 1, 2, 2}, {3, 2, 6, 9, 5, 3, 2, 1, 0, 2, 1}};
    for (const Conv &d : shapes)
        for (int bf16 = 0; bf16 < 2; bf16++)
            for (int rows = 0; rows < 2; rows++)
                test_conv(h, d, rows != 0, bf16 != 0);
    test_flip(h);
    test_tf32(h);
    test_rankings(h);
    test_refusals(h);
    test_sgemm();
    CHECK(strcmp(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED), "CUDNN_STATUS_NOT_SUPPORTED") == 0, "error string");
    cudnnDestroy(h);
    CHECK(sc_emu_failures() == 0, "%d failures recorded", sc_emu_failures());
    if (g_failed) {
        fprintf(stderr, "test_emu_dnn: %d checks failed\n", g_failed);
        return 1;
    }
    printf("test_emu_dnn: all checks passed\n");
    return 0;
}
