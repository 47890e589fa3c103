/* The emulation's streams: work queued on a stream runs only when something forces it (a
 * synchronisation, an event waited for, a blocking copy, a free), in the stream's order, on
 * the host thread that forces it. Work queued on a GPU runs at some time between its launch
 * and the next point that waits for it; running it as late as that allows is the schedule
 * that exposes a kernel reading a buffer before its copy landed, or a host buffer read by a
 * queued copy being refilled. Its mirror image exposes the other kind of missing wait: a
 * writer that should have waited for the readers queued before it must run early for that
 * to show. So SUPCON_CUDA_EMU_SCHEDULE picks: `lazy` (the default), `mixed` (the legacy
 * stream and every other stream made, the first, third, ..., lazy; the second, fourth, ...
 * run their work when it is queued, once what it waits for has run) or `eager` (everything
 * when it is queued). Internal to the emulation. */
#ifndef SUPCON_CUDA_EMU_QUEUE_H
#define SUPCON_CUDA_EMU_QUEUE_H

#include <stdint.h>

#include <functional>

#include <cuda_runtime.h>

namespace sc_emu {

typedef std::function<void()> Work;

/* Where work goes: a created stream, or a device's legacy default stream. */
struct Lane {
    const void *key; /* the stream, or a per-device key for the legacy default stream */
    int device;
    bool legacy;   /* the legacy default stream (0, cudaStreamLegacy, cudaStreamPerThread) */
    bool blocking; /* a created stream without cudaStreamNonBlocking: ordered with the legacy one */
    bool eager;    /* its work runs when queued (SUPCON_CUDA_EMU_SCHEDULE) */
};

/* Whether the stream made n-th in the process (0: the legacy one, 1: the first created)
 * runs its work when it is queued, under SUPCON_CUDA_EMU_SCHEDULE. */
bool runs_eagerly(unsigned n);

/* The lane of a live stream (the current device's legacy one for 0), or false after
 * recording a failure naming `what` (emu_runtime_streams.cpp). */
bool lane_of(cudaStream_t s, const char *what, Lane *out);

/* Queue w on the lane (or run it now in eager mode). Work queued on the legacy stream waits
 * for everything queued before on the device's blocking streams, and the reverse. */
void enqueue(const Lane &l, Work w);
/* Queue w on stream s after checking it (cuBLAS and cuDNN stand-ins); false after recording
 * a failure when s is not live. */
bool submit(cudaStream_t s, const char *what, Work w);

/* Run everything queued on the lane (the legacy lane: with the blocking streams' work). */
void drain(const Lane &l);
/* Run everything queued on any stream of the device. */
void drain_device(int device);
/* Run everything queued anywhere (a free of memory any queued work may use). */
void drain_all(void);

/* Events: a record marks the lane's queue where it is; a wait (queued on another lane) runs
 * that lane up to the mark first; a synchronize runs it there now. A never-recorded event is
 * complete. */
void record(const void *event, const Lane &l);
void wait(const Lane &l, const void *event);
void synchronize(const void *event);

/* Handles about to be destroyed: their queue runs first (as a destroyed stream's work still
 * completes on a GPU), then its bookkeeping goes. */
void forget_lane(const Lane &l);
void forget_event(const void *event);

/* Items still queued on any lane (for the exit check). */
uint64_t pending(void);

} // namespace sc_emu

#endif /* SUPCON_CUDA_EMU_QUEUE_H */
