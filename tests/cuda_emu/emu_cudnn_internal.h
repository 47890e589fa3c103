/* The emulation's cuDNN: handles, the legacy tensor, filter and convolution descriptors, and
 * the three convolutions with cuDNN's ranking API (heuristics and Find), computed on the CPU
 * (emu_conv.h). Supported: float data with float sums (FLOAT_CONFIG) and bfloat16 data with
 * float sums (PSEUDO_BFLOAT16_CONFIG), cross-correlation or convolution, any padding, stride
 * and dilation, NCHW or NHWC (filters KCRS or KRSC), no groups.
 *
 * What cuDNN documents as refused gives its status (BAD_PARAM, NOT_SUPPORTED) and nothing
 * more: the module relies on such refusals (it falls back from NHWC to NCHW, skips algorithms).
 * What a GPU would fault on or leave undefined (a destroyed handle or descriptor, data outside
 * device memory, a workspace smaller than the algorithm was said to need, overlapping input
 * and output) is also recorded (emu.h), so that a test cannot pass over it.
 *
 * The algorithms (per direction, in cuDNN's enum) differ in what the module's choice looks
 * at, not in their arithmetic: workspace (some need one, sized by the shape; forward FFT
 * always more than the module's cap), determinism (backward ALGO_0 is not), tensor cores
 * (float data under a non-FMA math type is rounded to TF32 as on Ampere and later, unless
 * NVIDIA_TF32_OVERRIDE=0), and support (Winograd: 3x3 stride 1 only; the rest NOT_SUPPORTED).
 *
 * This header is what its three parts share: emu_cudnn_objects.cpp (the objects, refusals
 * and error strings), emu_cudnn_algos.cpp (one convolution problem, validated, and the
 * algorithms that run it) and emu_cudnn_run.cpp (running one). Internal to the emulation. */
#ifndef SUPCON_CUDA_EMU_CUDNN_INTERNAL_H
#define SUPCON_CUDA_EMU_CUDNN_INTERNAL_H

#include <stddef.h>

#include <cudnn.h>

#include "emu_conv.h"

/* The objects behind cuDNN's handles (cudnn.h names the structs); `live` is false once
 * destroyed. */
struct cudnnContext {
    bool live;
    cudaStream_t stream;
    int device; /* current at cudnnCreate: the handle works on that device only */
};

struct cudnnTensorStruct {
    bool live, set;
    cudnnDataType_t type;
    int format; /* cudnnTensorFormat_t, or -1: strides of cudnnSetTensor4dDescriptorEx */
    int dim[4]; /* n c h w */
    long long stride[4];
};

struct cudnnFilterStruct {
    bool live, set;
    cudnnDataType_t type;
    cudnnTensorFormat_t format; /* NCHW: KCRS, NHWC: KRSC */
    int dim[4]; /* k c r s */
};

struct cudnnConvolutionStruct {
    bool live, set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace sc_emu_dnn {

/* ---- objects (emu_cudnn_objects.cpp) ------------------------------------------------- */

enum Kind { K_HANDLE = 1, K_TENSOR, K_FILTER, K_CONV };

/* A refusal cuDNN documents: its status, and the message cudnnGetLastErrorString gives. */
__attribute__((format(printf, 3, 4))) cudnnStatus_t refuse(cudnnStatus_t s, const char *fn, const char *fmt, ...);

/* Misuse a GPU would fault on or leave undefined: refused as above, and recorded. */
__attribute__((format(printf, 3, 4))) cudnnStatus_t misuse(cudnnStatus_t s, const char *fn, const char *fmt, ...);

/* The live object p of `kind`; NULL when p is not one (recorded, since cuDNN would read
 * freed or foreign memory). Instantiated for the four structs above. */
template <typename T> T *live(const void *p, Kind kind, const char *fn);

/* The handle, live; `gpu`: the call runs work, so its device must be current and its stream
 * usable. */
cudnnStatus_t check_handle(cudnnHandle_t h, const char *fn, bool gpu);

/* Bytes of one element; 0 for a type cuDNN does not have. */
size_t type_size(cudnnDataType_t t);

/* ---- one convolution problem, validated, and its algorithms (emu_cudnn_algos.cpp) ----- */

enum Dir { FWD, BWD_DATA, BWD_FILTER };

/* An array in memory: four dimensions in canonical order (n c h w, or k c r s) with element
 * strides, from `base` elements after the pointer (a flipped filter walks backwards). */
struct View {
    int dim[4];
    long long stride[4];
    long long base;
    size_t bytes; /* the span the array covers from the pointer */
};

struct Problem {
    sc_emu_conv::Shape d;
    cudnnDataType_t type;
    const cudnnConvolutionStruct *conv;
    View x, w, y;
};

/* The checks cuDNN documents for the three convolutions and their helpers (BAD_PARAM: NULL,
 * unset or mismatched descriptors; NOT_SUPPORTED: configurations it does not run), and the
 * shape. Descriptors that are not live are recorded as well. */
cudnnStatus_t problem(const char *fn, const cudnnTensorStruct *xd, const cudnnFilterStruct *wd,
                      const cudnnConvolutionStruct *cd, const cudnnTensorStruct *yd, Problem *p);

struct Algo {
    int id;
    bool deterministic;
    bool tensor_cores;        /* rounds float operands to TF32 when the math type allows it */
    double gflops_tc, gflops; /* the fake speeds Find "measures" (tensor cores, FMA) */
};

/* How many algorithms cuDNN's enum has for the direction (run or not). */
int algo_count(Dir dir);

/* The emulation's algorithm `id` of the direction; NULL for one it does not run. */
const Algo *find_algo(Dir dir, int id);

/* Whether algorithm `id` runs problem p, and the workspace it needs then. */
cudnnStatus_t algo_workspace(Dir dir, int id, const Problem &p, size_t *bytes);

} // namespace sc_emu_dnn

#endif /* SUPCON_CUDA_EMU_CUDNN_INTERNAL_H */
