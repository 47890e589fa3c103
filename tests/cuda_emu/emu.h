/* The CUDA emulation's own interface, shared by its parts (emu_runtime*.cpp, emu_launch.cpp,
 * emu_cublas.cpp, emu_cudnn_*.cpp). The emulation lets the CUDA module's sources (src/cuda) be
 * compiled by the host C++ compiler and run on the CPU in CI: the CUDA runtime, cuBLAS and
 * cuDNN are stand-ins written here from their documentation, kernels run thread by thread
 * (fibers for barriers and warp shuffles). Work on a stream runs when it is queued.
 *
 * Misuse the real libraries would refuse, fault on or leave undefined (a range outside an
 * allocation, a destroyed handle, a barrier not every thread reaches) makes the call fail
 * with the library's error status and is recorded: the process then exits with status 70 at
 * exit even if the caller swallowed the error, so a test cannot pass over it. */
#ifndef SUPCON_CUDA_EMU_H
#define SUPCON_CUDA_EMU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where an allocation lives. */
enum sc_emu_space {
    SC_EMU_DEVICE = 1, /* cudaMalloc */
    SC_EMU_PINNED = 2  /* cudaHostAlloc / cudaMallocHost */
};

/* Record a misuse (printed to stderr with the prefix "cuda-emu: "): the process exits 70 at
 * exit. Thread-safe. */
void sc_emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For the emulation's own tests: failures recorded so far, and forgetting them (so that a
 * test that provokes one on purpose can still exit 0). */
int sc_emu_failures(void);
void sc_emu_forget_failures(void);

/* 1 when [p, p + bytes) lies inside one live allocation of `space` (bytes 0: p inside or one
 * past the end of one); else records a failure naming `what` and returns 0. */
int sc_emu_check_range(const void *p, size_t bytes, int space, const char *what);

/* 1 when [p, p + bytes) lies inside one live allocation of `space`, without recording. */
int sc_emu_in_space(const void *p, size_t bytes, int space);

/* The device current on this host thread (cudaSetDevice), and the number of devices
 * (SUPCON_CUDA_EMU_DEVICES, default 1). */
int sc_emu_current_device(void);
int sc_emu_device_count(void);

/* The device of the live device allocation holding p, or -1 (page-locked and other host
 * memory included). */
int sc_emu_device_of(const void *p);

/* 1 when `stream` (a cudaStream_t) is the default stream or a live stream, else records a
 * failure naming `what` and returns 0. */
int sc_emu_check_stream(const void *stream, const char *what);

/* Runs `check` (which may call sc_emu_fail) when the emulation decides the exit status,
 * before its own report of what is still live: for the parts with handles of their own
 * (cuBLAS, cuDNN), whose destructors may otherwise run after that decision. */
void sc_emu_on_exit(void (*check)(void));

/* For the emulation's own tests: a kernel fault (barrier divergence, a bad pointer argument)
 * leaves a sticky error on the device, returned by every later call as on a GPU; this
 * clears it. */
void sc_emu_clear_sticky_error(void);

#ifdef __cplusplus
}
#endif

#endif /* SUPCON_CUDA_EMU_H */
