/* The CUDA runtime's memory for the emulation (see emu.h): the registry of allocations, the
 * range and kernel-pointer checks against it, copies and sets, and their runtime calls.
 *
 * Device memory is host memory from a registry that knows each allocation's size and device,
 * so that every copy, set and kernel pointer argument can be checked against it. New device
 * memory is filled with 0xFF bytes (NaN as floats): an output a kernel forgot to write shows.
 * Each allocation sits between guard bytes, checked after every kernel and at every free. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <mutex>
#include <vector>

#include "emu.h"
#include "emu_internal.h"
#include "emu_queue.h"
#include "emu_runtime_internal.h"

using sc_emu::Alloc;
using sc_emu::config;
using sc_emu::ret;
using sc_emu::space_name;
using sc_emu::st;
using sc_emu::State;

namespace {

constexpr size_t kGuard = 256;       /* guard bytes before and after an allocation */
constexpr size_t kAlign = 256;       /* cudaMalloc's alignment */
constexpr unsigned char kGuardByte = 0xA5;

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
    const int dev = sc_emu_current_device();
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
    *dev = sc_emu_current_device();
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

} // namespace

/* ---- emu_runtime_internal.h -------------------------------------------------------------- */

const char *sc_emu::space_name(int space)
{
    return space == SC_EMU_DEVICE ? "device" : space == SC_EMU_PINNED ? "page-locked host" : "host";
}

/* ---- emu.h ------------------------------------------------------------------------------- */

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

extern "C" int sc_emu_device_of(const void *p)
{
    std::lock_guard<std::mutex> lock(st().mu);
    const Alloc *a = find_locked(p, 1, nullptr);
    return a && a->space == SC_EMU_DEVICE ? a->device : -1;
}

/* ---- emu_internal.h ---------------------------------------------------------------------- */

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
    *free_bytes = config().memory - st().used[sc_emu_current_device()];
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

} /* extern "C" */
