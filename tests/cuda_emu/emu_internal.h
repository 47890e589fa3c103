/* What emu_launch.cpp needs of the runtime (emu_runtime*.cpp), and the reverse: error state,
 * handle and pointer checks. Internal to the emulation's runtime and executor. */
#ifndef SUPCON_CUDA_EMU_INTERNAL_H
#define SUPCON_CUDA_EMU_INTERNAL_H

#include <cuda_runtime.h>

namespace sc_emu {

/* The calling host thread's last error (cudaGetLastError), set by every failing call. */
void set_last_error(cudaError_t e);

/* The device's sticky error (a kernel fault), or cudaSuccess; setting one keeps the first. */
cudaError_t sticky_error(int device);
void set_sticky_error(int device, cudaError_t e);

/* The device a stream belongs to (the current one for the default stream), or -1 after
 * recording a failure naming `what` when the handle is not live. */
int stream_device(cudaStream_t s, const char *what);

/* 1 when a kernel on `device` may dereference p: NULL, or inside (or one past the end of) a
 * live allocation of that device or a page-locked one. Otherwise records a failure naming
 * `what` and returns 0. */
int kernel_pointer_ok(const void *p, int device, const char *what);

/* Records a failure for each allocation whose guard bytes around it were written (a kernel
 * or copy wrote outside it), naming `after`; returns how many. */
int check_guards(const char *after);

/* Releases the executor's fibers (at exit, so that nothing of the emulation is left). */
void release_fibers(void);

} // namespace sc_emu

#endif /* SUPCON_CUDA_EMU_INTERNAL_H */
