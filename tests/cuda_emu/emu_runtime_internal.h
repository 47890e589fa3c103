/* What the runtime's three parts share: emu_runtime.cpp (failures, configuration, errors,
 * devices and the exit check), emu_runtime_memory.cpp (the memory registry, copies and sets)
 * and emu_runtime_streams.cpp (stream and event handles). Internal to the emulation's runtime. */
#ifndef SUPCON_CUDA_EMU_RUNTIME_INTERNAL_H
#define SUPCON_CUDA_EMU_RUNTIME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <map>
#include <mutex>
#include <set>

#include <cuda_runtime.h>

namespace sc_emu {

constexpr int kMaxDevices = 64;

/* ---- Configuration, read once from the environment ----------------------------------------- */

struct Config {
    int devices;   /* SUPCON_CUDA_EMU_DEVICES */
    size_t memory; /* SUPCON_CUDA_EMU_MEMORY: bytes per device */
};

const Config &config();

/* ---- Registry: allocations, streams, events --------------------------------------------- */

struct Alloc {
    size_t size;
    int space; /* sc_emu_space */
    int device;
    unsigned char *base; /* what was malloc'd: guard, data, guard */
    size_t total;
};

struct State {
    std::mutex mu;
    std::map<uintptr_t, Alloc> allocs; /* by user address */
    std::set<const void *> streams, events;
    size_t used[kMaxDevices] = {};
};

/* The registry, never destroyed (emu_runtime.cpp says why). */
State &st();

/* Every entry point returns its status through this: a failure becomes the calling host
 * thread's last error (cudaGetLastError). */
cudaError_t ret(cudaError_t e);

/* A space's name for messages: "device", "page-locked host", or "host" for 0. */
const char *space_name(int space);

} // namespace sc_emu

#endif /* SUPCON_CUDA_EMU_RUNTIME_INTERNAL_H */
