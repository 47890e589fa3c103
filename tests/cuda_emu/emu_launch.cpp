/* The kernel executor (see emu.h): runs a launch's blocks one after another, the threads of a
 * block as fibers. A fiber runs threads to completion one after the other and only switches
 * when its thread must wait (a __syncthreads other threads have not reached, a shuffle whose
 * warp is incomplete), so a kernel without barriers costs no switches at all, and one fiber
 * carries on into the next block once the current block is complete.
 *
 * Misuse a GPU would hang on or leave undefined (barrier divergence, shuffles by part of a
 * warp) is recorded, leaves a sticky cudaErrorLaunchFailure on the device and abandons the
 * launch: the waiting fibers are forgotten and rebuilt before they are used again.
 * One launch at a time in the process: a mutex serialises host threads. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <vector>

#include "emu.h"
#include "emu_fiber.h"
#include "emu_internal.h"
#include "emu_queue.h"

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

namespace {

constexpr int kMaxThreads = 1024;
constexpr int kWarps = kMaxThreads / 32;

enum TState : unsigned char { T_UNSTARTED, T_RUNNING, T_BARRIER, T_SHUFFLE, T_EXITED };

struct Fiber {
    sc_emu::Ctx ctx;
    sc_emu::Stack stack;
    int tid = -1;       /* the thread it runs, -1 when idle */
    bool fresh = true;  /* must be (re)started at the top before it is switched to */
};

struct Warp {
    int lanes;      /* threads of the block in this warp */
    int arrived;    /* lanes waiting at the current shuffle */
    int at_barrier; /* lanes waiting at __syncthreads */
    int exited;
    int mode, width;
    const void *site;
    unsigned long long vals[32], res[32];
    int args[32];
    Fiber *waiting[32];
};

struct Block {
    int n;    /* threads */
    int next; /* the next thread to start */
    int done; /* threads that returned */
    int bar_count;
    const void *bar_site;
    Fiber *bar_wait[kMaxThreads];
    TState state[kMaxThreads];
    Warp warps[kWarps];
};

/* The launch in progress (one at a time). */
struct Launch {
    const sc_emu_launch_desc *d = nullptr;
    char name[160] = "";
    int device = 0;
    dim3 grid, block;
    unsigned long long nblocks = 0, block_index = 0;
    bool active = false, aborted = false, finished = false;
    Block blk;
    Fiber *runq[kMaxThreads];
    int rq_head = 0, rq_count = 0;
    Fiber *current = nullptr; /* null: the main context */
    sc_emu::Ctx main;
};

std::mutex g_launch_mu;
Launch L;
std::vector<Fiber *> *g_all;  /* every fiber made; heap, released at exit */
std::vector<Fiber *> *g_idle; /* those with no thread */

void fiber_main(void);

Fiber *idle_fiber()
{
    if (!g_all) {
        g_all = new std::vector<Fiber *>();
        g_idle = new std::vector<Fiber *>();
    }
    Fiber *f;
    if (!g_idle->empty()) {
        f = g_idle->back();
        g_idle->pop_back();
    } else {
        f = new Fiber();
        if (!sc_emu::stack_alloc(&f->stack, &f->ctx)) {
            fprintf(stderr, "cuda-emu: out of memory for a fiber stack\n");
            abort();
        }
        g_all->push_back(f);
    }
    if (f->fresh) {
        sc_emu::ctx_prepare(&f->ctx, fiber_main, f);
        f->fresh = false;
    }
    return f;
}

void set_thread_regs(int tid)
{
    const unsigned bx = L.block.x, by = L.block.y, t = (unsigned)tid;
    threadIdx.x = t % bx;
    threadIdx.y = (t / bx) % by;
    threadIdx.z = t / (bx * by);
}

void begin_block(unsigned long long b)
{
    const unsigned long long gx = L.grid.x, gy = L.grid.y;
    blockIdx.x = (unsigned)(b % gx);
    blockIdx.y = (unsigned)((b / gx) % gy);
    blockIdx.z = (unsigned)(b / (gx * gy));
    Block &B = L.blk;
    B.next = 0;
    B.done = 0;
    B.bar_count = 0;
    B.bar_site = nullptr;
    memset(B.state, T_UNSTARTED, (size_t)B.n);
    for (int w = 0; w * 32 < B.n; w++) {
        Warp &W = B.warps[w];
        W.lanes = B.n - w * 32 < 32 ? B.n - w * 32 : 32;
        W.arrived = W.at_barrier = W.exited = 0;
    }
}

/* Leaves the current context for the next one with work: a released thread, else a fiber to
 * start the next thread, else the main context (block done, launch over, or nothing can move:
 * main tells which). */
void schedule(bool forever)
{
    sc_emu::Ctx *from = L.current ? &L.current->ctx : &L.main;
    Fiber *next = nullptr;
    if (!L.aborted) {
        if (L.rq_count > 0) {
            next = L.runq[L.rq_head];
            L.rq_head = (L.rq_head + 1) % kMaxThreads;
            L.rq_count--;
        } else if (L.blk.next < L.blk.n) {
            next = idle_fiber();
        }
    }
    L.current = next;
    sc_emu::ctx_switch(from, next ? &next->ctx : &L.main, forever);
}

void make_runnable(Fiber *f)
{
    L.blk.state[f->tid] = T_RUNNING;
    L.runq[(L.rq_head + L.rq_count) % kMaxThreads] = f;
    L.rq_count++;
}

/* Parks the current thread until another releases it. */
void park(TState why)
{
    Fiber *f = L.current;
    L.blk.state[f->tid] = why;
    schedule(false);
    set_thread_regs(f->tid); /* the globals are the running thread's */
}

/* Records a misuse by the current thread and abandons the launch. */
[[noreturn]] __attribute__((format(printf, 1, 2))) void launch_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sc_emu_fail("kernel %s, block (%u, %u, %u), thread (%u, %u, %u): %s", L.name, blockIdx.x, blockIdx.y,
                blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z, msg);
    sc_emu::set_sticky_error(L.device, cudaErrorLaunchFailure);
    L.aborted = true;
    schedule(true);
    __builtin_unreachable();
}

void thread_exit(Fiber *f)
{
    Block &B = L.blk;
    Warp &W = B.warps[f->tid >> 5];
    B.state[f->tid] = T_EXITED;
    B.done++;
    W.exited++;
    if (B.bar_count > 0)
        launch_fail("barrier divergence: returned while %d thread(s) of its block wait at __syncthreads",
                    B.bar_count);
    if (W.arrived > 0)
        launch_fail("returned while %d lane(s) of its warp wait at a shuffle", W.arrived);
}

/* Every fiber's body: start threads of the current block while there are any, move to the
 * next block when this one is complete, else wait as an idle fiber. */
void fiber_main(void)
{
    sc_emu::fiber_entered();
    Fiber *f = L.current;
    for (;;) {
        while (!L.aborted) {
            Block &B = L.blk;
            if (B.next < B.n) {
                f->tid = B.next++;
                B.state[f->tid] = T_RUNNING;
                set_thread_regs(f->tid);
                L.d->body(L.d->ctx);
                thread_exit(f);
                continue;
            }
            if (B.done == B.n) {
                if (++L.block_index < L.nblocks) {
                    begin_block(L.block_index);
                    continue;
                }
                L.finished = true;
            }
            break;
        }
        f->tid = -1;
        g_idle->push_back(f);
        schedule(false);
    }
}

/* Main context, when no fiber could go on: every remaining thread waits for one that never
 * comes. The checks at each wait make this unlikely; say what is left. */
void report_stuck()
{
    const Block &B = L.blk;
    int counts[5] = {0, 0, 0, 0, 0};
    for (int t = 0; t < B.n; t++)
        counts[B.state[t]]++;
    sc_emu_fail("kernel %s, block (%u, %u, %u): no thread can proceed (%d at __syncthreads, %d at shuffles, %d "
                "returned, %d not started)",
                L.name, blockIdx.x, blockIdx.y, blockIdx.z, counts[T_BARRIER], counts[T_SHUFFLE], counts[T_EXITED],
                counts[T_UNSTARTED]);
    sc_emu::set_sticky_error(L.device, cudaErrorLaunchFailure);
}

void kernel_name(const char *text, char *out, size_t len)
{
    if (!text)
        text = "(unnamed kernel)";
    size_t n = strlen(text);
    if (strncmp(text, "void sc_emu_launch", 18) != 0) { /* a launch's text: up to the first comma */
        int depth = 0;                                     /* outside a template-id's <...> */
        for (size_t i = 0; i < n; i++) {
            depth += text[i] == '<' ? 1 : text[i] == '>' ? -1 : 0;
            if (text[i] == ',' && depth <= 0) {
                n = i;
                break;
            }
        }
    }
    snprintf(out, len, "%.*s", (int)n, text);
}

bool config_ok(const sc_emu_config &cfg)
{
    const dim3 g = cfg.grid, b = cfg.block;
    const unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    const char *bad = nullptr;
    if (threads < 1 || threads > (unsigned long long)kMaxThreads)
        bad = "block threads outside 1..1024";
    else if (b.x > 1024 || b.y > 1024 || b.z > 64)
        bad = "block dimension above (1024, 1024, 64)";
    else if (g.x < 1 || g.x > 0x7fffffffu || g.y < 1 || g.y > 65535 || g.z < 1 || g.z > 65535)
        bad = "grid dimension outside (1..2^31-1, 1..65535, 1..65535)";
    if (!bad)
        return true;
    sc_emu_fail("launch of %s with grid (%u, %u, %u), block (%u, %u, %u): %s", L.name, g.x, g.y, g.z, b.x, b.y,
                b.z, bad);
    sc_emu::set_last_error(cudaErrorInvalidConfiguration);
    return false;
}

} // namespace

/* ---- Device-side entry points (sc_emu_device.h) ---------------------------------------------- */

void __syncthreads(void)
{
    const void *site = __builtin_return_address(0);
    if (!L.active || !L.current) {
        sc_emu_fail("__syncthreads called outside a kernel");
        return;
    }
    Fiber *f = L.current;
    Block &B = L.blk;
    Warp &W = B.warps[f->tid >> 5];
    if (B.done > 0)
        launch_fail("barrier divergence: reached __syncthreads after %d thread(s) of its block returned", B.done);
    if (W.arrived > 0)
        launch_fail("reached __syncthreads while %d lane(s) of its warp wait at a shuffle", W.arrived);
    if (B.bar_count == 0)
        B.bar_site = site;
    else if (site != B.bar_site)
        launch_fail("barrier divergence: threads of one block wait at different __syncthreads (code at %p and %p)",
                    B.bar_site, site);
    if (B.bar_count + 1 == B.n) { /* the last one: release the others and go on */
        for (int i = 0; i < B.bar_count; i++)
            make_runnable(B.bar_wait[i]);
        for (int w = 0; w * 32 < B.n; w++)
            B.warps[w].at_barrier = 0;
        B.bar_count = 0;
        return;
    }
    B.bar_wait[B.bar_count++] = f;
    W.at_barrier++;
    park(T_BARRIER);
}

unsigned long long sc_emu_shfl(int mode, unsigned mask, unsigned long long bits, int b, int width)
{
    const void *site = __builtin_return_address(0);
    if (!L.active || !L.current) {
        sc_emu_fail("warp shuffle called outside a kernel");
        return bits;
    }
    Fiber *f = L.current;
    const int lane = f->tid & 31;
    Warp &W = L.blk.warps[f->tid >> 5];
    if (mask != 0xffffffffu)
        launch_fail("shuffle with mask 0x%08x: only full-warp shuffles (0xffffffff) are emulated", mask);
    if (width < 1 || width > 32 || (width & (width - 1)))
        launch_fail("shuffle width %d is not a power of two in 1..32", width);
    if (W.lanes < 32)
        launch_fail("full-mask shuffle in a warp of %d thread(s) (blockDim not a multiple of 32)", W.lanes);
    if (W.exited > 0)
        launch_fail("shuffle after %d lane(s) of its warp returned", W.exited);
    if (W.at_barrier > 0)
        launch_fail("shuffle while %d lane(s) of its warp wait at __syncthreads", W.at_barrier);
    if (W.arrived == 0) {
        W.mode = mode;
        W.width = width;
        W.site = site;
    } else if (W.mode != mode || W.width != width || W.site != site) {
        launch_fail("lanes of one warp at different shuffles (code at %p and %p)", W.site, site);
    }
    W.vals[lane] = bits;
    W.args[lane] = b;
    if (++W.arrived < 32) {
        W.waiting[W.arrived - 1] = f;
        park(T_SHUFFLE);
        return W.res[lane]; /* written by the last lane, kept until every lane is back */
    }
    /* The last lane: every lane's result, as shfl.sync selects its source lane. */
    for (int l = 0; l < 32; l++) {
        const int seg = l & ~(width - 1), seg_max = seg | (width - 1), bv = W.args[l] & 31;
        int j;
        switch (W.mode) {
        case SC_EMU_SHFL_UP: j = l - bv >= seg ? l - bv : l; break;
        case SC_EMU_SHFL_DOWN: j = l + bv <= seg_max ? l + bv : l; break;
        case SC_EMU_SHFL_XOR: j = (l ^ bv) <= seg_max ? l ^ bv : l; break;
        default: j = seg | (bv & (width - 1)); break;
        }
        W.res[l] = W.vals[j];
    }
    for (int i = 0; i < 31; i++)
        make_runnable(W.waiting[i]);
    W.arrived = 0;
    return W.res[lane];
}

/* ---- The launch (sc_emu_launch.h) ------------------------------------------------------------ */

/* Runs one validated launch on the device (queued work, emu_queue.h). */
static void execute(const sc_emu_config &cfg, const sc_emu_launch_desc &d, int dev)
{
    std::lock_guard<std::mutex> lock(g_launch_mu);
    kernel_name(d.text, L.name, sizeof L.name);
    char what[224];
    snprintf(what, sizeof what, "launch of %s", L.name);
    if (sc_emu::sticky_error(dev) != cudaSuccess)
        return; /* an earlier fault lost the context: nothing runs any more */
    L.d = &d;
    L.device = dev;
    L.grid = cfg.grid;
    L.block = cfg.block;
    L.nblocks = (unsigned long long)cfg.grid.x * cfg.grid.y * cfg.grid.z;
    L.block_index = 0;
    L.aborted = L.finished = false;
    L.rq_head = L.rq_count = 0;
    L.blk.n = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    L.active = true;
    gridDim = cfg.grid;
    blockDim = cfg.block;
    begin_block(0);
    sc_emu::main_ctx_bounds(&L.main);

    L.current = nullptr;
    schedule(false); /* runs the whole grid; back here when done or stuck */

    if (!L.finished && !L.aborted) {
        report_stuck();
        L.aborted = true;
    }
    if (L.aborted) { /* fibers holding threads are abandoned: restart every one before reuse */
        g_idle->clear();
        for (Fiber *f : *g_all) {
            f->fresh = true;
            f->tid = -1;
            g_idle->push_back(f);
        }
    }
    L.active = false;
    L.current = nullptr;
    threadIdx = blockIdx = uint3{0, 0, 0};
    sc_emu::check_guards(what);
}


void sc_emu_run(const sc_emu_config &cfg, const sc_emu_launch_desc &d)
{
    std::unique_lock<std::mutex> lock(g_launch_mu);
    kernel_name(d.text, L.name, sizeof L.name);
    if (sc_emu_device_count() == 0) {
        sc_emu_fail("launch of %s: there is no device", L.name);
        sc_emu::set_last_error(cudaErrorNoDevice);
        return;
    }
    const int dev = sc_emu_current_device();
    char what[224];
    snprintf(what, sizeof what, "launch of %s", L.name);
    const int sdev = sc_emu::stream_device(cfg.stream, what);
    if (sdev < 0) {
        sc_emu::set_last_error(cudaErrorInvalidResourceHandle);
        return;
    }
    if (sdev != dev) {
        sc_emu_fail("launch of %s on a stream of device %d while device %d is current", L.name, sdev, dev);
        sc_emu::set_last_error(cudaErrorInvalidResourceHandle);
        return;
    }
    const cudaError_t sticky = sc_emu::sticky_error(dev);
    if (sticky != cudaSuccess) {
        sc_emu::set_last_error(sticky);
        return;
    }
    if (!config_ok(cfg))
        return;
    if (cfg.shmem > (48u << 10)) {
        sc_emu_fail("launch of %s: %zu bytes of dynamic shared memory (48 KiB without opting in)", L.name, cfg.shmem);
        sc_emu::set_last_error(cudaErrorInvalidValue);
        return;
    }
    bool ptrs_ok = true;
    for (int i = 0; i < d.nargs; i++)
        if (d.is_ptr[i]) {
            char arg[256];
            snprintf(arg, sizeof arg, "launch of %s: pointer argument %d", L.name, i + 1);
            ptrs_ok = sc_emu::kernel_pointer_ok(d.ptrs[i], dev, arg) && ptrs_ok;
        }
    if (!ptrs_ok) { /* it would fault on the device: the context is lost */
        sc_emu::set_sticky_error(dev, cudaErrorIllegalAddress);
        return;
    }

    sc_emu::Lane lane;
    if (!sc_emu::lane_of(cfg.stream, what, &lane))
        return;
    lock.unlock(); /* queued work takes the lock when it runs */
    sc_emu_launch_desc queued = d;
    queued.ptrs = nullptr; /* checked above; the arrays live on the launcher's stack */
    queued.is_ptr = nullptr;
    sc_emu::enqueue(lane, [cfg, queued, dev] { execute(cfg, queued, dev); });
}

void sc_emu::release_fibers(void)
{
    std::lock_guard<std::mutex> lock(g_launch_mu);
    if (!g_all)
        return;
    for (Fiber *f : *g_all) {
        sc_emu::stack_free(&f->stack);
        delete f;
    }
    delete g_all;
    delete g_idle;
    g_all = g_idle = nullptr;
}
