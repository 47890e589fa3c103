/* The emulated cuDNN's three convolutions (emu_cudnn_internal.h): the checks of the call,
 * then the operands gathered into dense arrays, computed (emu_conv.h) and scattered back,
 * on the handle's stream. */
#include <string.h>

#include <string>
#include <vector>

#include <cudnn.h>

#include "emu.h"
#include "emu_queue.h"
#include "emu_conv.h"
#include "emu_round.h"
#include "emu_cudnn_internal.h"

using namespace sc_emu_dnn;

/* ---- running one ---------------------------------------------------------------------- */

namespace {

/* Float operands go through TF32 tensor cores under any math type but FMA (cuDNN's default
 * on Ampere and later); bfloat16 ones are what tensor cores take anyway. */
bool rounds_tf32(const Problem &p, const Algo *a, cudnnMathType_t math)
{
    return p.type == CUDNN_DATA_FLOAT && math != CUDNN_FMA_MATH && a->tensor_cores && sc_emu_tf32_allowed();
}

float load(const void *p, long long i, cudnnDataType_t type)
{
    if (type == CUDNN_DATA_BFLOAT16)
        return sc_emu_from_bf16(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* The array, canonical order, as floats (TF32 and bfloat16 values are floats too). */
std::vector<float> gather(const View &v, const void *p, cudnnDataType_t type, bool tf32)
{
    std::vector<float> out((size_t)v.dim[0] * v.dim[1] * v.dim[2] * v.dim[3]);
    size_t at = 0;
    for (int a = 0; a < v.dim[0]; a++)
        for (int b = 0; b < v.dim[1]; b++)
            for (int c = 0; c < v.dim[2]; c++) {
                long long i = v.base + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
                for (int d = 0; d < v.dim[3]; d++, i += v.stride[3]) {
                    const float e = load(p, i, type);
                    out[at++] = tf32 ? sc_emu_tf32(e) : e;
                }
            }
    return out;
}

/* out = alpha * result + beta * out, rounded once to the array's type; beta 0: out is not
 * read (NaN there does not come through). */
void scatter(const View &v, void *p, cudnnDataType_t type, const std::vector<float> &val, double alpha, double beta)
{
    size_t at = 0;
    for (int a = 0; a < v.dim[0]; a++)
        for (int b = 0; b < v.dim[1]; b++)
            for (int c = 0; c < v.dim[2]; c++) {
                long long i = v.base + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
                for (int d = 0; d < v.dim[3]; d++, i += v.stride[3]) {
                    double e = alpha * val[at++];
                    if (beta != 0.0)
                        e += beta * load(p, i, type);
                    if (type == CUDNN_DATA_BFLOAT16)
                        ((uint16_t *)p)[i] = sc_emu_to_bf16((float)e);
                    else
                        ((float *)p)[i] = (float)e;
                }
            }
}

bool overlap(const void *a, size_t abytes, const void *b, size_t bbytes)
{
    const char *pa = (const char *)a, *pb = (const char *)b;
    return abytes && bbytes && pa < pb + bbytes && pb < pa + abytes;
}

/* One convolution: `in1`/`in2` are the operands (x and w, w and dy, x and dy) and `out` the
 * result (y, dx, dw), as the direction has them. */
struct Call {
    Dir dir;
    const char *fn;
    cudnnHandle_t handle;
    const void *alpha, *beta;
    const cudnnTensorStruct *x, *y;
    const cudnnFilterStruct *w;
    const cudnnConvolutionStruct *conv;
    const void *in1, *in2;
    void *out;
    int algo;
    void *ws;
    size_t ws_bytes;
};

cudnnStatus_t run(const Call &c)
{
    const char *fn = c.fn;
    cudnnStatus_t s = check_handle(c.handle, fn, true);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    Problem p;
    s = problem(fn, c.x, c.w, c.conv, c.y, &p);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!c.alpha || !c.beta || !c.in1 || !c.in2 || !c.out)
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "alpha, beta or a data pointer is NULL");
    /* alpha and beta are read on the host: a device address there is a host-side fault */
    if (sc_emu_in_space(c.alpha, sizeof(float), SC_EMU_DEVICE) || sc_emu_in_space(c.beta, sizeof(float), SC_EMU_DEVICE))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "alpha or beta points to device memory (host memory expected)");
    if (c.algo < 0 || c.algo >= algo_count(c.dir))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d is not one of cuDNN's", c.algo);
    size_t need = 0;
    s = algo_workspace(c.dir, c.algo, p, &need);
    if (s != CUDNN_STATUS_SUCCESS)
        return refuse(s, fn, "algorithm %d does not run this convolution", c.algo);
    if (need && (!c.ws || c.ws_bytes < need))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "algorithm %d needs %zu bytes of workspace, given %p of %zu",
                             c.algo, need, c.ws, c.ws_bytes);
    if (need && !sc_emu_check_range(c.ws, need, SC_EMU_DEVICE, (std::string(fn) + " workspace").c_str()))
        return refuse(CUDNN_STATUS_BAD_PARAM, fn, "the workspace is not device memory");

    const View &v1 = c.dir == BWD_DATA ? p.w : p.x;
    const View &v2 = c.dir == FWD ? p.w : p.y;
    const View &vo = c.dir == FWD ? p.y : c.dir == BWD_DATA ? p.x : p.w;
    /* the spans begin at the pointers (a flipped filter's base is inside its span) */
    static const char *const names[3][3] = {{"x", "w", "y"}, {"w", "dy", "dx"}, {"x", "dy", "dw"}};
    const std::string what = std::string(fn) + " ";
    if (!sc_emu_check_range(c.in1, v1.bytes, SC_EMU_DEVICE, (what + names[c.dir][0]).c_str()) ||
        !sc_emu_check_range(c.in2, v2.bytes, SC_EMU_DEVICE, (what + names[c.dir][1]).c_str()) ||
        !sc_emu_check_range(c.out, vo.bytes, SC_EMU_DEVICE, (what + names[c.dir][2]).c_str()))
        return refuse(CUDNN_STATUS_EXECUTION_FAILED, fn, "an operand lies outside device memory");
    if (overlap(c.out, vo.bytes, c.in1, v1.bytes) || overlap(c.out, vo.bytes, c.in2, v2.bytes))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "the output overlaps an input (cuDNN does not work in place)");
    if (overlap(c.ws, need, c.in1, v1.bytes) || overlap(c.ws, need, c.in2, v2.bytes) ||
        overlap(c.ws, need, c.out, vo.bytes))
        return misuse(CUDNN_STATUS_BAD_PARAM, fn, "the workspace overlaps an operand");
    const Algo *a = find_algo(c.dir, c.algo);
    const bool tf32 = rounds_tf32(p, a, p.conv->math);
    const float alpha = *(const float *)c.alpha, beta = *(const float *)c.beta; /* read at the call */
    /* The convolution runs on the handle's stream, when something waits for it (emu_queue.h). */
    sc_emu::submit(c.handle->stream, fn, [=] {
        if (need) /* the algorithm's scratch: whatever was there is gone */
            memset(c.ws, 0xff, need);
        /* the sums are float's, as cuDNN's (in another order) */
        const std::vector<float> f1 = gather(v1, c.in1, p.type, tf32), f2 = gather(v2, c.in2, p.type, tf32);
        std::vector<float> r((size_t)vo.dim[0] * vo.dim[1] * vo.dim[2] * vo.dim[3]);
        if (c.dir == FWD)
            sc_emu_conv::forward(p.d, f1.data(), f2.data(), r.data());
        else if (c.dir == BWD_DATA)
            sc_emu_conv::backward_data(p.d, f1.data(), f2.data(), r.data());
        else
            sc_emu_conv::backward_filter(p.d, f1.data(), f2.data(), r.data());
        scatter(vo, c.out, p.type, r, alpha, beta);
    });
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void *workSpace, size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y)
{
    return run({FWD, __func__, handle, alpha, beta, xDesc, yDesc, wDesc, convDesc, x, w, y, (int)algo, workSpace,
                workSpaceSizeInBytes});
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    return run({BWD_DATA, __func__, handle, alpha, beta, dxDesc, dyDesc, wDesc, convDesc, w, dy, dx, (int)algo,
                workSpace, workSpaceSizeInBytes});
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    return run({BWD_FILTER, __func__, handle, alpha, beta, xDesc, dyDesc, dwDesc, convDesc, x, dy, dw, (int)algo,
                workSpace, workSpaceSizeInBytes});
}

} // extern "C"
