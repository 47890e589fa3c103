/* A stand-in for the CUDA module that hands out the CPU backend's table: loaded through
 * $SUPCON_CUDA_MODULE, it lets the GPU tests' own code (tests/cuda_tests.cmake) run end to
 * end on a machine without a GPU. What that checks is the harness — its shapes, sequences and
 * bookkeeping — never CUDA: both sides of every comparison are then the CPU. */
#include "backend.h"
#include "registry.h"

__attribute__((visibility("default"))) const supcon_backend_ops *supcon_cuda_backend_entry(void);
__attribute__((visibility("default"))) const supcon_backend_ops *supcon_cuda_backend_entry(void) {
    return sc_cpu_backend();
}
