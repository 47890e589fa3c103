/* The CUDA runtime's host API for the emulation (see emu.h): failures, configuration, error
 * reporting, devices and the exit check. Its memory (the registry, copies and sets) is in
 * emu_runtime_memory.cpp, its streams and events in emu_runtime_streams.cpp; work queued on a
 * stream runs when something waits for it (emu_queue.h, emu_stream.cpp). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <new>

#include "emu.h"
#include "emu_internal.h"
#include "emu_queue.h"
#include "emu_runtime_internal.h"

using sc_emu::config;
using sc_emu::kMaxDevices;
using sc_emu::ret;
using sc_emu::space_name;
using sc_emu::st;
using sc_emu::State;

namespace {

constexpr size_t kDefaultMemory = (size_t)16 << 30;

/* ---- Failures --------------------------------------------------------------------------- */

std::atomic<int> g_failures{0};
std::mutex g_print_mu; /* trivially destructible: safe to use from the exit check */

void vfail(const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    g_failures.fetch_add(1);
    std::lock_guard<std::mutex> lock(g_print_mu);
    fprintf(stderr, "cuda-emu: %s\n", msg);
    fflush(stderr);
}

/* ---- Configuration, read once from the environment ----------------------------------------- */

size_t env_size(const char *name, size_t dflt, size_t max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end = nullptr;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || !end || *end || x > max) {
        sc_emu_fail("%s=\"%s\" is not a number in [0, %zu]: using %zu", name, v, max, dflt);
        return dflt;
    }
    return (size_t)x;
}

/* ---- Errors and devices ------------------------------------------------------------------- */

thread_local int t_device = 0;
thread_local cudaError_t t_last = cudaSuccess;
std::atomic<int> g_sticky[kMaxDevices];

cudaError_t no_device()
{
    return ret(config().devices == 0 ? cudaErrorNoDevice : cudaSuccess);
}

/* ---- At exit ---------------------------------------------------------------------------- */

constexpr int kMaxHooks = 16;
void (*g_hooks[kMaxHooks])(void);
std::atomic<int> g_nhooks{0};

/* Run when the program exits or the module holding the emulation is unloaded, after the
 * program's atexit handlers and C++ destructors (priority 101: after every other destructor
 * of this object): whatever is still live then was leaked. */
__attribute__((destructor(101))) void sc_emu_finish(void)
{
    const int nh = g_nhooks.load();
    for (int i = 0; i < nh && i < kMaxHooks; i++)
        g_hooks[i]();
    State &s = st();
    {
        std::lock_guard<std::mutex> lock(s.mu);
        int shown = 0;
        for (const auto &kv : s.allocs) {
            if (shown++ < 10)
                sc_emu_fail("leak: %s allocation of %zu bytes at %p (device %d) was never freed",
                            space_name(kv.second.space), kv.second.size, (void *)kv.first, kv.second.device);
            else
                g_failures.fetch_add(1);
        }
        if (shown > 10)
            sc_emu_fail("leak: %d more allocations were never freed", shown - 10);
        if (!s.streams.empty())
            sc_emu_fail("leak: %zu stream(s) never destroyed", s.streams.size());
        if (!s.events.empty())
            sc_emu_fail("leak: %zu event(s) never destroyed", s.events.size());
    }
    sc_emu::release_fibers();
    const int n = g_failures.load();
    if (n > 0) {
        fflush(nullptr);
        fprintf(stderr, "cuda-emu: %d failure(s) recorded: exiting with status 70\n", n);
        _exit(70);
    }
}

} // namespace

/* ---- emu.h ------------------------------------------------------------------------------- */

extern "C" void sc_emu_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
}

extern "C" int sc_emu_failures(void) { return g_failures.load(); }
extern "C" void sc_emu_forget_failures(void) { g_failures.store(0); }

extern "C" int sc_emu_current_device(void) { return t_device; }
extern "C" int sc_emu_device_count(void) { return config().devices; }

extern "C" void sc_emu_on_exit(void (*check)(void))
{
    const int i = g_nhooks.fetch_add(1);
    if (i < kMaxHooks)
        g_hooks[i] = check;
    else
        sc_emu_fail("sc_emu_on_exit: more than %d exit checks", kMaxHooks);
}

extern "C" void sc_emu_clear_sticky_error(void)
{
    for (auto &e : g_sticky)
        e.store(cudaSuccess);
}

/* ---- emu_internal.h ---------------------------------------------------------------------- */

void sc_emu::set_last_error(cudaError_t e) { ret(e); }

cudaError_t sc_emu::sticky_error(int device)
{
    return device >= 0 && device < kMaxDevices ? (cudaError_t)g_sticky[device].load() : cudaSuccess;
}

void sc_emu::set_sticky_error(int device, cudaError_t e)
{
    int expect = cudaSuccess;
    if (device >= 0 && device < kMaxDevices)
        g_sticky[device].compare_exchange_strong(expect, (int)e);
}

/* ---- emu_runtime_internal.h -------------------------------------------------------------- */

const sc_emu::Config &sc_emu::config()
{
    static const Config c = {(int)env_size("SUPCON_CUDA_EMU_DEVICES", 1, kMaxDevices),
                             env_size("SUPCON_CUDA_EMU_MEMORY", kDefaultMemory, SIZE_MAX / 2)};
    return c;
}

/* Built in static storage and never destroyed: destructors of other objects (or the exit
 * check) may still use it; the containers are empty by then unless something leaked. */
State &sc_emu::st()
{
    alignas(State) static unsigned char storage[sizeof(State)];
    static State *s = new (storage) State();
    return *s;
}

cudaError_t sc_emu::ret(cudaError_t e)
{
    if (e != cudaSuccess)
        t_last = e;
    return e;
}

/* ---- The runtime API ---------------------------------------------------------------------- */

extern "C" {

cudaError_t cudaGetLastError(void)
{
    const cudaError_t sticky = sc_emu::sticky_error(t_device);
    const cudaError_t e = t_last;
    t_last = cudaSuccess;
    return sticky != cudaSuccess ? sticky : e;
}

cudaError_t cudaPeekAtLastError(void)
{
    const cudaError_t sticky = sc_emu::sticky_error(t_device);
    return sticky != cudaSuccess ? sticky : t_last;
}

const char *cudaGetErrorName(cudaError_t error)
{
    switch (error) {
#define SC_EMU_NAME(e)                                                                             \
    case e: return #e;
        SC_EMU_NAME(cudaSuccess)
        SC_EMU_NAME(cudaErrorInvalidValue)
        SC_EMU_NAME(cudaErrorMemoryAllocation)
        SC_EMU_NAME(cudaErrorInitializationError)
        SC_EMU_NAME(cudaErrorInvalidConfiguration)
        SC_EMU_NAME(cudaErrorInvalidDevicePointer)
        SC_EMU_NAME(cudaErrorInvalidMemcpyDirection)
        SC_EMU_NAME(cudaErrorNoDevice)
        SC_EMU_NAME(cudaErrorInvalidDevice)
        SC_EMU_NAME(cudaErrorInvalidResourceHandle)
        SC_EMU_NAME(cudaErrorNotReady)
        SC_EMU_NAME(cudaErrorIllegalAddress)
        SC_EMU_NAME(cudaErrorLaunchOutOfResources)
        SC_EMU_NAME(cudaErrorLaunchFailure)
        SC_EMU_NAME(cudaErrorNotSupported)
        SC_EMU_NAME(cudaErrorUnknown)
#undef SC_EMU_NAME
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count)
        return ret(cudaErrorInvalidValue);
    *count = config().devices;
    return no_device();
}

cudaError_t cudaSetDevice(int device)
{
    if (config().devices == 0)
        return ret(cudaErrorNoDevice);
    if (device < 0 || device >= config().devices) {
        sc_emu_fail("cudaSetDevice(%d): there are %d device(s)", device, config().devices);
        return ret(cudaErrorInvalidDevice);
    }
    t_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    if (!device)
        return ret(cudaErrorInvalidValue);
    *device = t_device;
    return no_device();
}

cudaError_t cudaDeviceSynchronize(void)
{
    sc_emu::drain_device(t_device);
    return ret(sc_emu::sticky_error(t_device));
}

} /* extern "C" */
