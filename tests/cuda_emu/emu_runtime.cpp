/* The CUDA runtime's host API for the emulation (see emu.h): devices, the memory registry,
 * copies and sets, streams and events, error reporting, and the exit check. Work queued on a
 * stream runs when something waits for it (emu_queue.h, emu_stream.cpp).
 *
 * Device memory is host memory from a registry that knows each allocation's size and device,
 * so that every copy, set and kernel pointer argument can be checked against it. New device
 * memory is filled with 0xFF bytes (NaN as floats): an output a kernel forgot to write shows.
 * Each allocation sits between guard bytes, checked after every kernel and at every free. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <vector>

#include "emu.h"
#include "emu_internal.h"
#include "emu_queue.h"

namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kGuard = 256;       /* guard bytes before and after an allocation */
constexpr size_t kAlign = 256;       /* cudaMalloc's alignment */
constexpr unsigned char kGuardByte = 0xA5;
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

struct Config {
    int devices;
    size_t memory;
};

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

const Config &config()
{
    static const Config c = {(int)env_size("SUPCON_CUDA_EMU_DEVICES", 1, kMaxDevices),
                             env_size("SUPCON_CUDA_EMU_MEMORY", kDefaultMemory, SIZE_MAX / 2)};
    return c;
}

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

/* Built in static storage and never destroyed: destructors of other objects (or the exit
 * check) may still use it; the containers are empty by then unless something leaked. */
State &st()
{
    alignas(State) static unsigned char storage[sizeof(State)];
    static State *s = new (storage) State();
    return *s;
}

thread_local int t_device = 0;
thread_local cudaError_t t_last = cudaSuccess;
std::atomic<int> g_sticky[kMaxDevices];

cudaError_t ret(cudaError_t e)
{
    if (e != cudaSuccess)
        t_last = e;
    return e;
}

/* The allocation holding [p, p + bytes) (bytes 0: p may be one past its end), or null. */
const Alloc *find_locked(const void *p, size_t bytes, uintptr_t *base_out)
{
    State &s = st();
    const uintptr_t a = (uintptr_t)p;
    auto it = s.allocs.upper_bound(a);
    if (it == s.allocs.begin())
        return nullptr;
    --it;
    const uintptr_t b = it->first, end = b + it->second.size;
    if (a > end || bytes > end - a || (bytes > 0 && a == end) || (bytes == 0 && a == end && it->second.size == 0))
        return nullptr;
    if (base_out)
        *base_out = b;
    return &it->second;
}

/* Where p points: a live allocation's space (its first byte inside one), or 0 (host). */
int space_of(const void *p)
{
    std::lock_guard<std::mutex> lock(st().mu);
    const Alloc *a = find_locked(p, 1, nullptr);
    return a ? a->space : 0;
}

const char *space_name(int space)
{
    return space == SC_EMU_DEVICE ? "device" : space == SC_EMU_PINNED ? "page-locked host" : "host";
}

bool guards_intact(const Alloc &a)
{
    const unsigned char *user = a.base + kGuard;
    for (size_t i = 0; i < kGuard; i++)
        if (a.base[i] != kGuardByte)
            return false;
    for (const unsigned char *q = user + a.size; q < a.base + a.total; q++)
        if (*q != kGuardByte)
            return false;
    return true;
}

cudaError_t allocate(void **out, size_t size, int space, const char *call)
{
    if (!out) {
        sc_emu_fail("%s: the result pointer is NULL", call);
        return ret(cudaErrorInvalidValue);
    }
    *out = nullptr;
    if (size == 0)
        return cudaSuccess; /* no allocation: a NULL pointer, as the runtime gives */
    const int dev = t_device;
    if (space == SC_EMU_DEVICE) {
        const cudaError_t sticky = sc_emu::sticky_error(dev);
        if (sticky != cudaSuccess)
            return ret(sticky);
    }
    const size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
    if (size > SIZE_MAX / 4 || rounded < size)
        return ret(cudaErrorMemoryAllocation);
    const size_t total = kGuard + rounded + kGuard;
    State &s = st();
    {
        std::lock_guard<std::mutex> lock(s.mu);
        if (space == SC_EMU_DEVICE) {
            if (size > config().memory - s.used[dev])
                return ret(cudaErrorMemoryAllocation); /* the device is full: not a misuse */
            s.used[dev] += size;
        }
    }
    unsigned char *base = (unsigned char *)aligned_alloc(kAlign, total);
    if (!base) {
        std::lock_guard<std::mutex> lock(s.mu);
        if (space == SC_EMU_DEVICE)
            s.used[dev] -= size;
        return ret(cudaErrorMemoryAllocation);
    }
    memset(base, kGuardByte, kGuard);
    memset(base + kGuard, 0xFF, size);
    memset(base + kGuard + size, kGuardByte, total - kGuard - size);
    {
        std::lock_guard<std::mutex> lock(s.mu);
        s.allocs[(uintptr_t)(base + kGuard)] = Alloc{size, space, dev, base, total};
    }
    *out = base + kGuard;
    return cudaSuccess;
}

cudaError_t release(void *p, int space, const char *call)
{
    if (!p)
        return cudaSuccess;
    State &s = st();
    Alloc a;
    {
        std::lock_guard<std::mutex> lock(s.mu);
        auto it = s.allocs.find((uintptr_t)p);
        if (it == s.allocs.end() || it->second.space != space) {
            const Alloc *in = find_locked(p, 0, nullptr);
            char why[96];
            if (it != s.allocs.end())
                snprintf(why, sizeof why, "it is a %s allocation", space_name(it->second.space));
            else
                snprintf(why, sizeof why, "%s", in ? "it points inside one" : "unknown or already freed");
            sc_emu_fail("%s(%p): not the start of a live %s allocation (%s)", call, p, space_name(space), why);
            return ret(cudaErrorInvalidValue);
        }
        a = it->second;
        s.allocs.erase(it);
        if (space == SC_EMU_DEVICE)
            s.used[a.device] -= a.size;
    }
    if (!guards_intact(a))
        sc_emu_fail("%s(%p): the guard bytes around this %zu-byte %s allocation were overwritten (a write "
                    "outside it)",
                    call, p, a.size, space_name(space));
    free(a.base);
    return ret(space == SC_EMU_DEVICE ? sc_emu::sticky_error(a.device) : cudaSuccess);
}

/* ---- Copies and sets ----------------------------------------------------------------------- */

const char *kind_name(int kind)
{
    static const char *const names[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost",
                                        "cudaMemcpyDeviceToDevice", "cudaMemcpyDefault"};
    return kind >= 0 && kind <= 4 ? names[kind] : "an invalid cudaMemcpyKind";
}

/* One side of a copy: device memory must lie inside one device allocation; host memory must
 * not be device memory, and when it is page-locked must lie inside its allocation (pageable
 * memory cannot be checked). */
bool side_ok(const void *p, size_t n, bool device, const char *call, const char *side, int kind)
{
    const int space = space_of(p);
    if (device) {
        if (space != SC_EMU_DEVICE) {
            sc_emu_fail("%s (%s): the %s %p is %s memory, not device memory", call, kind_name(kind), side, p,
                        space_name(space));
            return false;
        }
        char what[160];
        snprintf(what, sizeof what, "%s (%s): the %s range of %zu bytes", call, kind_name(kind), side, n);
        return sc_emu_check_range(p, n, SC_EMU_DEVICE, what) != 0;
    }
    if (space == SC_EMU_DEVICE) {
        sc_emu_fail("%s (%s): the %s %p is device memory, not host memory", call, kind_name(kind), side, p);
        return false;
    }
    if (space == SC_EMU_PINNED) {
        char what[160];
        snprintf(what, sizeof what, "%s (%s): the %s range of %zu bytes", call, kind_name(kind), side, n);
        return sc_emu_check_range(p, n, SC_EMU_PINNED, what) != 0;
    }
    return true;
}

/* What a copy or set checks first: the stream (async) and the device's sticky error. */
cudaError_t begin_transfer(cudaStream_t stream, bool async, const char *call, int *dev)
{
    *dev = t_device;
    if (async) {
        *dev = sc_emu::stream_device(stream, call);
        if (*dev < 0)
            return ret(cudaErrorInvalidResourceHandle);
    }
    return ret(sc_emu::sticky_error(*dev));
}

cudaError_t copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t stream, bool async,
                 const char *call)
{
    int dev = 0;
    const cudaError_t e = begin_transfer(stream, async, call, &dev);
    if (e != cudaSuccess || n == 0)
        return e;
    if (!dst || !src) {
        sc_emu_fail("%s: NULL %s for %zu bytes", call, !dst ? "destination" : "source", n);
        return ret(cudaErrorInvalidValue);
    }
    bool dst_dev, src_dev;
    switch (kind) {
    case cudaMemcpyHostToHost: dst_dev = false, src_dev = false; break;
    case cudaMemcpyHostToDevice: dst_dev = true, src_dev = false; break;
    case cudaMemcpyDeviceToHost: dst_dev = false, src_dev = true; break;
    case cudaMemcpyDeviceToDevice: dst_dev = true, src_dev = true; break;
    case cudaMemcpyDefault:
        dst_dev = space_of(dst) == SC_EMU_DEVICE;
        src_dev = space_of(src) == SC_EMU_DEVICE;
        break;
    default:
        sc_emu_fail("%s: %d is not a cudaMemcpyKind", call, (int)kind);
        return ret(cudaErrorInvalidMemcpyDirection);
    }
    if (!side_ok(dst, n, dst_dev, call, "destination", kind) || !side_ok(src, n, src_dev, call, "source", kind))
        return ret(cudaErrorInvalidValue);
    const uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d < s + n && s < d + n) {
        sc_emu_fail("%s: the %zu-byte ranges at %p and %p overlap", call, n, dst, src);
        return ret(cudaErrorInvalidValue);
    }
    sc_emu::Lane l;
    if (!sc_emu::lane_of(async ? stream : nullptr, call, &l))
        return ret(cudaErrorInvalidResourceHandle);
    /* As CUDA moves bytes from and to memory that is not page-locked: the source is staged
     * when the call is made (the caller may reuse it at once), and a copy into it returns
     * only when done. A synchronous copy is the legacy stream's and returns when done. */
    const bool src_pageable = !src_dev && !sc_emu_in_space(src, n, SC_EMU_PINNED);
    const bool dst_pageable = !dst_dev && !sc_emu_in_space(dst, n, SC_EMU_PINNED);
    if (src_pageable && !dst_pageable) {
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                   (const unsigned char *)src + n);
        sc_emu::enqueue(l, [dst, staged, n] { memcpy(dst, staged->data(), n); });
    } else {
        sc_emu::enqueue(l, [dst, src, n] { memcpy(dst, src, n); });
    }
    if (!async || dst_pageable)
        sc_emu::drain(l);
    return ret(sc_emu::sticky_error(dev));
}

cudaError_t set(void *dst, int value, size_t n, cudaStream_t stream, bool async, const char *call)
{
    int dev = 0;
    const cudaError_t e = begin_transfer(stream, async, call, &dev);
    if (e != cudaSuccess || n == 0)
        return e;
    char what[96];
    snprintf(what, sizeof what, "%s of %zu bytes", call, n);
    if (!sc_emu_check_range(dst, n, SC_EMU_DEVICE, what))
        return ret(cudaErrorInvalidValue);
    sc_emu::Lane l;
    if (!sc_emu::lane_of(async ? stream : nullptr, call, &l))
        return ret(cudaErrorInvalidResourceHandle);
    sc_emu::enqueue(l, [dst, value, n] { memset(dst, value & 0xff, n); });
    if (!async)
        sc_emu::drain(l);
    return cudaSuccess;
}

/* ---- Streams and events ---------------------------------------------------------------- */

constexpr uint32_t kStreamMagic = 0x5354524d, kEventMagic = 0x45564e54;

} // namespace

struct sc_emu_stream {
    uint32_t magic;
    int device;
    unsigned flags;
    unsigned index; /* streams created before this one in the process */
};

struct sc_emu_event {
    uint32_t magic;
    int device;
    unsigned flags;
    int recorded;
};

namespace {

bool is_default_stream(cudaStream_t s) { return !s || s == cudaStreamLegacy || s == cudaStreamPerThread; }

/* The live event, or null after recording a failure. */
sc_emu_event *live_event(cudaEvent_t e, const char *what)
{
    std::lock_guard<std::mutex> lock(st().mu);
    if (e && st().events.count(e))
        return e;
    sc_emu_fail("%s: event %p is not a live event (never created, or destroyed)", what, (void *)e);
    return nullptr;
}

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

extern "C" int sc_emu_in_space(const void *p, size_t bytes, int space)
{
    std::lock_guard<std::mutex> lock(st().mu);
    const Alloc *a = find_locked(p, bytes, nullptr);
    return a && a->space == space;
}

extern "C" int sc_emu_check_range(const void *p, size_t bytes, int space, const char *what)
{
    if (sc_emu_in_space(p, bytes, space))
        return 1;
    uintptr_t base = 0;
    Alloc a{};
    bool found;
    {
        std::lock_guard<std::mutex> lock(st().mu);
        const Alloc *in = find_locked(p, 0, &base);
        found = in != nullptr;
        if (found)
            a = *in;
    }
    if (!found)
        sc_emu_fail("%s: %p is not inside any live %s allocation", what, p, space_name(space));
    else if (a.space != space)
        sc_emu_fail("%s: %p is %s memory, not %s memory", what, p, space_name(a.space), space_name(space));
    else
        sc_emu_fail("%s: [%p, +%zu) runs past the end of its %zu-byte allocation at %p (by %zu bytes)", what, p,
                    bytes, a.size, (void *)base, (size_t)((uintptr_t)p + bytes - (base + a.size)));
    return 0;
}

extern "C" int sc_emu_current_device(void) { return t_device; }
extern "C" int sc_emu_device_count(void) { return config().devices; }

extern "C" int sc_emu_device_of(const void *p)
{
    std::lock_guard<std::mutex> lock(st().mu);
    const Alloc *a = find_locked(p, 1, nullptr);
    return a && a->space == SC_EMU_DEVICE ? a->device : -1;
}

extern "C" int sc_emu_check_stream(const void *stream, const char *what)
{
    return sc_emu::stream_device((cudaStream_t)stream, what) >= 0;
}

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

bool sc_emu::lane_of(cudaStream_t s, const char *what, Lane *out)
{
    if (is_default_stream(s)) {
        /* one legacy stream per device: a key no allocation can have */
        *out = Lane{(const void *)(uintptr_t)(1 + t_device), t_device, true, false, sc_emu::runs_eagerly(0)};
        return true;
    }
    std::lock_guard<std::mutex> lock(st().mu);
    if (!st().streams.count(s)) {
        sc_emu_fail("%s: stream %p is not a live stream (never created, or destroyed)", what, (void *)s);
        return false;
    }
    *out = Lane{s, s->device, false, !(s->flags & cudaStreamNonBlocking), sc_emu::runs_eagerly(s->index + 1)};
    return true;
}

int sc_emu::stream_device(cudaStream_t s, const char *what)
{
    if (is_default_stream(s))
        return t_device;
    std::lock_guard<std::mutex> lock(st().mu);
    if (st().streams.count(s))
        return s->device;
    sc_emu_fail("%s: stream %p is not a live stream (never created, or destroyed)", what, (void *)s);
    return -1;
}

int sc_emu::kernel_pointer_ok(const void *p, int device, const char *what)
{
    if (!p)
        return 1;
    std::lock_guard<std::mutex> lock(st().mu);
    const Alloc *a = find_locked(p, 0, nullptr);
    if (a && (a->space == SC_EMU_PINNED || a->device == device))
        return 1;
    if (a)
        sc_emu_fail("%s: %p is memory of device %d, the kernel runs on device %d (peer access is not enabled)",
                    what, p, a->device, device);
    else
        sc_emu_fail("%s: %p is neither device nor page-locked memory (a host pointer, or freed)", what, p);
    return 0;
}

int sc_emu::check_guards(const char *after)
{
    int bad = 0;
    std::lock_guard<std::mutex> lock(st().mu);
    for (const auto &kv : st().allocs)
        if (!guards_intact(kv.second)) {
            sc_emu_fail("after %s: the guard bytes around the %zu-byte %s allocation at %p were overwritten "
                        "(a write outside it)",
                        after, kv.second.size, space_name(kv.second.space), (void *)kv.first);
            /* restore them, so that one overrun is reported once */
            Alloc a = kv.second;
            memset(a.base, kGuardByte, kGuard);
            memset(a.base + kGuard + a.size, kGuardByte, a.total - kGuard - a.size);
            bad++;
        }
    return bad;
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

cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    if (config().devices == 0)
        return ret(cudaErrorNoDevice);
    return allocate(devPtr, size, SC_EMU_DEVICE, "cudaMalloc");
}

/* Freeing waits for the device's queued work, as cudaFree does (it may use the memory). */
cudaError_t cudaFree(void *devPtr)
{
    sc_emu::drain_all();
    return release(devPtr, SC_EMU_DEVICE, "cudaFree");
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    if (flags & ~(unsigned)(cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined)) {
        sc_emu_fail("cudaHostAlloc: unknown flags 0x%x", flags);
        return ret(cudaErrorInvalidValue);
    }
    return allocate(pHost, size, SC_EMU_PINNED, "cudaHostAlloc");
}

cudaError_t cudaMallocHost(void **ptr, size_t size) { return allocate(ptr, size, SC_EMU_PINNED, "cudaMallocHost"); }

cudaError_t cudaFreeHost(void *ptr)
{
    sc_emu::drain_all();
    return release(ptr, SC_EMU_PINNED, "cudaFreeHost");
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    if (!free_bytes || !total)
        return ret(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(st().mu);
    *total = config().memory;
    *free_bytes = config().memory - st().used[t_device];
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return copy(dst, src, count, kind, nullptr, false, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return copy(dst, src, count, kind, stream, true, "cudaMemcpyAsync");
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
    return set(devPtr, value, count, nullptr, false, "cudaMemset");
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    return set(devPtr, value, count, stream, true, "cudaMemsetAsync");
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream) { return cudaStreamCreateWithFlags(pStream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
    if (!pStream || (flags & ~(unsigned)cudaStreamNonBlocking)) {
        sc_emu_fail("cudaStreamCreateWithFlags: %s", !pStream ? "NULL result pointer" : "unknown flags");
        return ret(cudaErrorInvalidValue);
    }
    if (config().devices == 0)
        return ret(cudaErrorNoDevice);
    static std::atomic<unsigned> created{0};
    sc_emu_stream *s = new sc_emu_stream{kStreamMagic, t_device, flags, created.fetch_add(1)};
    std::lock_guard<std::mutex> lock(st().mu);
    st().streams.insert(s);
    *pStream = s;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    bool live;
    {
        std::lock_guard<std::mutex> lock(st().mu);
        live = !is_default_stream(stream) && st().streams.count(stream);
    }
    if (live) /* its queued work still runs (no registry lock held: the work takes it) */
        sc_emu::forget_lane(
            sc_emu::Lane{stream, stream->device, false, !(stream->flags & cudaStreamNonBlocking), false});
    {
        std::lock_guard<std::mutex> lock(st().mu);
        if (!is_default_stream(stream) && st().streams.erase(stream)) {
            const int dev = stream->device;
            stream->magic = 0;
            delete stream;
            return ret(sc_emu::sticky_error(dev));
        }
    }
    sc_emu_fail("cudaStreamDestroy: stream %p is %s", (void *)stream,
                is_default_stream(stream) ? "a default stream" : "not a live stream (never created, or destroyed)");
    return ret(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    sc_emu::Lane l;
    if (!sc_emu::lane_of(stream, "cudaStreamSynchronize", &l))
        return ret(cudaErrorInvalidResourceHandle);
    sc_emu::drain(l);
    return ret(sc_emu::sticky_error(l.device));
}

/* Queued work is run rather than reported pending: a caller polling would wait forever. */
cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    if (sc_emu::stream_device(stream, "cudaStreamWaitEvent") < 0 || !live_event(event, "cudaStreamWaitEvent"))
        return ret(cudaErrorInvalidResourceHandle);
    if (flags != cudaEventWaitDefault) {
        sc_emu_fail("cudaStreamWaitEvent: unknown flags 0x%x", flags);
        return ret(cudaErrorInvalidValue);
    }
    sc_emu::Lane l;
    if (!sc_emu::lane_of(stream, "cudaStreamWaitEvent", &l))
        return ret(cudaErrorInvalidResourceHandle);
    sc_emu::wait(l, event);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    const unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    if (!event || (flags & ~known) || ((flags & cudaEventInterprocess) && !(flags & cudaEventDisableTiming))) {
        sc_emu_fail("cudaEventCreateWithFlags: %s", !event ? "NULL result pointer" : "invalid flags");
        return ret(cudaErrorInvalidValue);
    }
    if (config().devices == 0)
        return ret(cudaErrorNoDevice);
    sc_emu_event *e = new sc_emu_event{kEventMagic, t_device, flags, 0};
    std::lock_guard<std::mutex> lock(st().mu);
    st().events.insert(e);
    *event = e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    const int dev = sc_emu::stream_device(stream, "cudaEventRecord");
    sc_emu_event *e = live_event(event, "cudaEventRecord");
    if (dev < 0 || !e)
        return ret(cudaErrorInvalidResourceHandle);
    if (e->device != dev) {
        sc_emu_fail("cudaEventRecord: event of device %d recorded on a stream of device %d", e->device, dev);
        return ret(cudaErrorInvalidResourceHandle);
    }
    sc_emu::Lane l;
    if (!sc_emu::lane_of(stream, "cudaEventRecord", &l))
        return ret(cudaErrorInvalidResourceHandle);
    e->recorded = 1;
    sc_emu::record(e, l);
    return ret(sc_emu::sticky_error(dev));
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    sc_emu_event *e = live_event(event, "cudaEventSynchronize");
    if (!e)
        return ret(cudaErrorInvalidResourceHandle);
    sc_emu::synchronize(e);
    return ret(sc_emu::sticky_error(e->device));
}

/* As cudaStreamQuery: the work it marks is run rather than reported pending. */
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    sc_emu::forget_event(event); /* before the registry lock: the queues' lock comes first */
    {
        std::lock_guard<std::mutex> lock(st().mu);
        if (event && st().events.erase(event)) {
            event->magic = 0;
            delete event;
            return cudaSuccess;
        }
    }
    sc_emu_fail("cudaEventDestroy: event %p is not a live event (never created, or destroyed)", (void *)event);
    return ret(cudaErrorInvalidResourceHandle);
}

} /* extern "C" */
