/* Staged uploads (ABI 5) for supcon_uploader: host data goes through a page-locked buffer
 * and a copy stream of the context's own, so the copy of the next batch runs beside the
 * kernels of the previous one. Two events order it: `released`, recorded on the compute
 * stream, marks the last calls that may read the destination (the copy waits for them and
 * for nothing queued later); `copied`, recorded on the copy stream, is what the compute
 * stream waits for before its next call, and what the host waits for before it refills the
 * buffer. The host waits only for a buffer's copy of two pushes back, which in a training
 * loop finished long ago (it queued behind the readers of three batches back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "ops.h"

struct sc_cuda_stage {
    void *pinned; /* cudaHostAlloc'd, capacity bytes */
    size_t capacity;
    cudaEvent_t released;
    cudaEvent_t copied;
};

/* The copy stream is made with the first stage: contexts that never stage pay nothing. */
static supcon_status sc_copy_stream(sc_cuda_state *st)
{
    if (st->copy_stream)
        return SUPCON_OK;
    return sc_cuda_check(st, cudaStreamCreateWithFlags(&st->copy_stream, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags (copy stream)");
}

void sc_cuda_stage_destroy(void *state, void *stage)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_cuda_stage *sg = (sc_cuda_stage *)stage;
    if (!sg)
        return;
    /* Best effort at teardown: a failure here was reported by the call that caused it. */
    (void)cudaSetDevice(st->device);
    if (sg->copied) {
        (void)cudaEventSynchronize(sg->copied); /* the buffer may still be read by its copy */
        (void)cudaEventDestroy(sg->copied);
    }
    if (sg->released)
        (void)cudaEventDestroy(sg->released);
    if (sg->pinned)
        (void)cudaFreeHost(sg->pinned);
    free(sg);
}

supcon_status sc_cuda_stage_create(void *state, void **stage)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    *stage = NULL;
    supcon_status s = sc_cuda_enter(st);
    if (s == SUPCON_OK)
        s = sc_copy_stream(st);
    if (s != SUPCON_OK)
        return s;
    sc_cuda_stage *sg = (sc_cuda_stage *)calloc(1, sizeof *sg);
    if (!sg)
        return sc_cuda_fail(st, SUPCON_ERR_OUT_OF_MEMORY, "out of host memory for an upload stage");
    s = sc_cuda_check(st, cudaEventCreateWithFlags(&sg->released, cudaEventDisableTiming),
                      "cudaEventCreateWithFlags (stage released)");
    if (s == SUPCON_OK)
        s = sc_cuda_check(st, cudaEventCreateWithFlags(&sg->copied, cudaEventDisableTiming),
                          "cudaEventCreateWithFlags (stage copied)");
    if (s != SUPCON_OK) {
        sc_cuda_stage_destroy(st, sg);
        return s;
    }
    *stage = sg;
    return SUPCON_OK;
}

supcon_status sc_cuda_stage_release(void *state, void *stage)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_cuda_stage *sg = (sc_cuda_stage *)stage;
    supcon_status s = sc_cuda_enter(st);
    if (s != SUPCON_OK)
        return s;
    return sc_cuda_check(st, cudaEventRecord(sg->released, st->stream), "cudaEventRecord (stage released)");
}

/* A page-locked buffer of at least bytes; its last copy has finished when this is called. */
static supcon_status sc_stage_reserve(sc_cuda_state *st, sc_cuda_stage *sg, size_t bytes)
{
    if (sg->capacity >= bytes)
        return SUPCON_OK;
    if (sg->pinned) {
        supcon_status s = sc_cuda_check(st, cudaFreeHost(sg->pinned), "cudaFreeHost (upload stage)");
        sg->pinned = NULL;
        sg->capacity = 0;
        if (s != SUPCON_OK)
            return s;
    }
    char call[96];
    snprintf(call, sizeof call, "cudaHostAlloc(%zu bytes) for an upload stage", bytes);
    supcon_status s = sc_cuda_check(st, cudaHostAlloc(&sg->pinned, bytes, cudaHostAllocDefault), call);
    if (s != SUPCON_OK) {
        sg->pinned = NULL;
        return s;
    }
    sg->capacity = bytes;
    return SUPCON_OK;
}

supcon_status sc_cuda_stage_upload(void *state, void *stage, void *dst, const void *src, size_t bytes)
{
    sc_cuda_state *st = (sc_cuda_state *)state;
    sc_cuda_stage *sg = (sc_cuda_stage *)stage;
    if (bytes == 0)
        return SUPCON_OK;
    supcon_status s = sc_cuda_enter(st);
    /* The buffer's previous copy (two pushes back) is long done in a training loop. */
    if (s == SUPCON_OK)
        s = sc_cuda_check(st, cudaEventSynchronize(sg->copied), "cudaEventSynchronize (stage copied)");
    if (s == SUPCON_OK)
        s = sc_stage_reserve(st, sg, bytes);
    if (s != SUPCON_OK)
        return s;
    memcpy(sg->pinned, src, bytes);
    s = sc_cuda_check(st, cudaStreamWaitEvent(st->copy_stream, sg->released, 0),
                      "cudaStreamWaitEvent (copy stream after the readers)");
    if (s == SUPCON_OK)
        s = sc_cuda_check(st, cudaMemcpyAsync(dst, sg->pinned, bytes, cudaMemcpyHostToDevice, st->copy_stream),
                          "cudaMemcpyAsync (staged host to device)");
    if (s != SUPCON_OK)
        return s;
    s = sc_cuda_check(st, cudaEventRecord(sg->copied, st->copy_stream), "cudaEventRecord (stage copied)");
    if (s == SUPCON_OK)
        s = sc_cuda_check(st, cudaStreamWaitEvent(st->stream, sg->copied, 0),
                          "cudaStreamWaitEvent (compute stream after the copy)");
    if (s != SUPCON_OK) /* the queued copy is not tracked: let it finish before the buffer is reused */
        (void)cudaStreamSynchronize(st->copy_stream);
    return s;
}
