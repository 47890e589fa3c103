/* The CUDA runtime's streams and events for the emulation (see emu.h): their handles, checked
 * at every use, and the lanes of emu_queue.h they stand for. Work queued on a stream runs when
 * something waits for it (emu_queue.h, emu_stream.cpp). */
#include <stdint.h>

#include <atomic>
#include <mutex>

#include "emu.h"
#include "emu_internal.h"
#include "emu_queue.h"
#include "emu_runtime_internal.h"

using sc_emu::config;
using sc_emu::ret;
using sc_emu::st;

namespace {

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

} // namespace

/* ---- emu.h ------------------------------------------------------------------------------- */

extern "C" int sc_emu_check_stream(const void *stream, const char *what)
{
    return sc_emu::stream_device((cudaStream_t)stream, what) >= 0;
}

/* ---- emu_queue.h and emu_internal.h ------------------------------------------------------ */

bool sc_emu::lane_of(cudaStream_t s, const char *what, Lane *out)
{
    if (is_default_stream(s)) {
        /* one legacy stream per device: a key no allocation can have */
        const int dev = sc_emu_current_device();
        *out = Lane{(const void *)(uintptr_t)(1 + dev), dev, true, false, sc_emu::runs_eagerly(0)};
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
        return sc_emu_current_device();
    std::lock_guard<std::mutex> lock(st().mu);
    if (st().streams.count(s))
        return s->device;
    sc_emu_fail("%s: stream %p is not a live stream (never created, or destroyed)", what, (void *)s);
    return -1;
}

/* ---- The runtime API ---------------------------------------------------------------------- */

extern "C" {

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
    sc_emu_stream *s = new sc_emu_stream{kStreamMagic, sc_emu_current_device(), flags, created.fetch_add(1)};
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
    sc_emu_event *e = new sc_emu_event{kEventMagic, sc_emu_current_device(), flags, 0};
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
