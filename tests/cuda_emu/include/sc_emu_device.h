/* Device-side CUDA for the emulation (included by cuda_runtime.h): the function qualifiers as
 * macros g++ accepts, the built-in index variables, barriers, warp shuffles, atomics, exactly
 * rounded float operations and the math overloads device code sees under nvcc.
 *
 * Blocks run one at a time and the threads of a block are fibers switched only inside
 * __syncthreads and the shuffles (emu_launch.cpp), so `__shared__` can be `static` storage
 * and an atomic is a plain read-modify-write. */
#ifndef SUPCON_CUDA_EMU_DEVICE_H
#define SUPCON_CUDA_EMU_DEVICE_H

#include <math.h>
#include <string.h>

#include <cmath>

/* ---- Qualifiers -------------------------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ __inline__ __attribute__((always_inline))
/* A bound the compiler uses for register allocation; launches are validated against the
 * hardware's limits only. */
#define __launch_bounds__(...)
/* Shared by the threads of a block: one block runs at a time, so one static copy serves. Not
 * re-initialised between blocks (a kernel reading shared memory before writing it is wrong on
 * a GPU too, but will not show here). */
#define __shared__ static

/* ---- Built-in variables: set by the executor whenever it switches threads ---------------- */

extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
static constexpr int warpSize = 32;

/* ---- Synchronisation ------------------------------------------------------------------- */

/* Waits until every thread of the block has reached it; a thread that exited, or threads at
 * different __syncthreads calls, are recorded as barrier divergence and end the launch. */
void __syncthreads(void);
/* Only ordering between threads of one running block exists here: nothing to fence. */
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

/* ---- Warp shuffles (width a power of two, 1..32; the mask must be 0xffffffff) ------------- */

enum { SC_EMU_SHFL_IDX = 0, SC_EMU_SHFL_UP = 1, SC_EMU_SHFL_DOWN = 2, SC_EMU_SHFL_XOR = 3 };

/* The rendezvous of the calling thread's warp: every lane hands in `bits` and gets the bits
 * of the lane the mode and b select (its own where that lane is outside its segment). */
unsigned long long sc_emu_shfl(int mode, unsigned mask, unsigned long long bits, int b, int width);

template <class T> static inline T sc_emu_shfl_as(int mode, unsigned mask, T var, int b, int width)
{
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffles move at most 64 bits");
    unsigned long long bits = 0;
    memcpy(&bits, &var, sizeof var);
    bits = sc_emu_shfl(mode, mask, bits, b, width);
    T r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* Overloads (not a template) so that argument conversions resolve as with nvcc's set. */
#define SC_EMU_SHFL_FOR(T)                                                                         \
    static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize)            \
    {                                                                                              \
        return sc_emu_shfl_as<T>(SC_EMU_SHFL_IDX, mask, var, srcLane, width);                       \
    }                                                                                              \
    static inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize)  \
    {                                                                                              \
        return sc_emu_shfl_as<T>(SC_EMU_SHFL_UP, mask, var, (int)delta, width);                     \
    }                                                                                              \
    static inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) \
    {                                                                                              \
        return sc_emu_shfl_as<T>(SC_EMU_SHFL_DOWN, mask, var, (int)delta, width);                   \
    }                                                                                              \
    static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize)       \
    {                                                                                              \
        return sc_emu_shfl_as<T>(SC_EMU_SHFL_XOR, mask, var, laneMask, width);                      \
    }
SC_EMU_SHFL_FOR(int)
SC_EMU_SHFL_FOR(unsigned int)
SC_EMU_SHFL_FOR(long)
SC_EMU_SHFL_FOR(unsigned long)
SC_EMU_SHFL_FOR(long long)
SC_EMU_SHFL_FOR(unsigned long long)
SC_EMU_SHFL_FOR(float)
SC_EMU_SHFL_FOR(double)
#undef SC_EMU_SHFL_FOR

/* ---- Atomics: no other thread runs between the read and the write ----------------------- */

#define SC_EMU_ATOMIC_ADD(T)                                                                       \
    static inline T atomicAdd(T *address, T val)                                                   \
    {                                                                                              \
        const T old = *address;                                                                    \
        *address = old + val;                                                                      \
        return old;                                                                                \
    }
SC_EMU_ATOMIC_ADD(int)
SC_EMU_ATOMIC_ADD(unsigned int)
SC_EMU_ATOMIC_ADD(unsigned long long)
SC_EMU_ATOMIC_ADD(float)
SC_EMU_ATOMIC_ADD(double)
#undef SC_EMU_ATOMIC_ADD

#define SC_EMU_ATOMIC_MINMAX(T)                                                                    \
    static inline T atomicMin(T *address, T val)                                                   \
    {                                                                                              \
        const T old = *address;                                                                    \
        *address = val < old ? val : old;                                                          \
        return old;                                                                                \
    }                                                                                              \
    static inline T atomicMax(T *address, T val)                                                   \
    {                                                                                              \
        const T old = *address;                                                                    \
        *address = val > old ? val : old;                                                          \
        return old;                                                                                \
    }                                                                                              \
    static inline T atomicExch(T *address, T val)                                                  \
    {                                                                                              \
        const T old = *address;                                                                    \
        *address = val;                                                                            \
        return old;                                                                                \
    }                                                                                              \
    static inline T atomicCAS(T *address, T compare, T val)                                        \
    {                                                                                              \
        const T old = *address;                                                                    \
        if (old == compare)                                                                        \
            *address = val;                                                                        \
        return old;                                                                                \
    }
SC_EMU_ATOMIC_MINMAX(int)
SC_EMU_ATOMIC_MINMAX(unsigned int)
SC_EMU_ATOMIC_MINMAX(long long)
SC_EMU_ATOMIC_MINMAX(unsigned long long)
#undef SC_EMU_ATOMIC_MINMAX

/* ---- Exactly rounded float operations ---------------------------------------------------- */

/* The result goes through an empty asm the optimiser cannot see into, so it is never fused
 * into a multiply-add (GCC contracts a * b + c where the target has FMA, as on AArch64). */
#if defined(__x86_64__) && defined(__SSE2__)
#define SC_EMU_OPAQUE(v) __asm__("" : "+x"(v))
#elif defined(__aarch64__)
#define SC_EMU_OPAQUE(v) __asm__("" : "+w"(v))
#else
#define SC_EMU_OPAQUE(v) __asm__("" : "+m"(v))
#endif
static inline float __fadd_rn(float a, float b)
{
    float r = a + b;
    SC_EMU_OPAQUE(r);
    return r;
}
static inline float __fsub_rn(float a, float b)
{
    float r = a - b;
    SC_EMU_OPAQUE(r);
    return r;
}
static inline float __fmul_rn(float a, float b)
{
    float r = a * b;
    SC_EMU_OPAQUE(r);
    return r;
}
static inline double __dadd_rn(double a, double b)
{
    double r = a + b;
    SC_EMU_OPAQUE(r);
    return r;
}
static inline double __dmul_rn(double a, double b)
{
    double r = a * b;
    SC_EMU_OPAQUE(r);
    return r;
}

/* ---- min / max: nvcc's global overloads, so that max(int64_t, int64_t) is int64_t --------- */

#define SC_EMU_MINMAX(R, A, B)                                                                     \
    static inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }                           \
    static inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
SC_EMU_MINMAX(int, int, int)
SC_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
SC_EMU_MINMAX(unsigned int, int, unsigned int)
SC_EMU_MINMAX(unsigned int, unsigned int, int)
SC_EMU_MINMAX(long, long, long)
SC_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
SC_EMU_MINMAX(unsigned long, long, unsigned long)
SC_EMU_MINMAX(unsigned long, unsigned long, long)
SC_EMU_MINMAX(long long, long long, long long)
SC_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
SC_EMU_MINMAX(unsigned long long, long long, unsigned long long)
SC_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef SC_EMU_MINMAX
/* Floating point as fminf / fmaxf (a NaN operand loses), as nvcc's float overloads. */
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin((double)a, b); }
static inline double max(float a, double b) { return fmax((double)a, b); }
static inline double min(double a, float b) { return fmin(a, (double)b); }
static inline double max(double a, float b) { return fmax(a, (double)b); }

/* expf, exp, log, log1p, sqrt, isfinite and friends: <cmath> puts the float and double
 * overloads in the global namespace, as nvcc's math headers do for device code. The results
 * are glibc's (correctly rounded or close), not CUDA's (within its documented ulps). */

#endif /* SUPCON_CUDA_EMU_DEVICE_H */
