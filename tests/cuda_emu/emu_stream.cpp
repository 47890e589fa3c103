/* The emulation's stream queues (emu_queue.h): work runs as late as the program's own waits
 * allow, so that a missing wait shows as stale data in the tests. */
#include <stdlib.h>
#include <string.h>

#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "emu.h"
#include "emu_queue.h"

namespace {

struct Queue {
    Queue(const sc_emu::Lane &l) : lane(l) {}
    sc_emu::Lane lane;
    std::deque<sc_emu::Work> items;
    uint64_t queued = 0, done = 0; /* items ever queued, and run */
    bool running = false;
};

struct Mark {
    const void *key;
    uint64_t target; /* the queue's `done` at which the event has happened */
};

/* Recursive: running an item that waits for another lane runs that lane from inside. */
std::recursive_mutex &mu()
{
    static std::recursive_mutex *m = new std::recursive_mutex();
    return *m;
}
std::map<const void *, std::unique_ptr<Queue>> &queues()
{
    static auto *q = new std::map<const void *, std::unique_ptr<Queue>>();
    return *q;
}
std::map<const void *, Mark> &marks()
{
    static auto *m = new std::map<const void *, Mark>();
    return *m;
}

enum Schedule { LAZY, MIXED, EAGER };

Schedule schedule()
{
    static const Schedule sch = [] {
        const char *v = getenv("SUPCON_CUDA_EMU_SCHEDULE");
        if (!v || !*v || strcmp(v, "lazy") == 0)
            return LAZY;
        if (strcmp(v, "mixed") == 0)
            return MIXED;
        if (strcmp(v, "eager") == 0)
            return EAGER;
        sc_emu_fail("SUPCON_CUDA_EMU_SCHEDULE=%s: not lazy, mixed or eager", v);
        return LAZY;
    }();
    return sch;
}

Queue &queue_of(const sc_emu::Lane &l)
{
    std::unique_ptr<Queue> &q = queues()[l.key];
    if (!q)
        q.reset(new Queue(l));
    return *q;
}

/* Run the lane's queue until `target` items have run (or it is empty). */
void run_until(const void *key, uint64_t target)
{
    auto it = queues().find(key);
    if (it == queues().end())
        return; /* a destroyed stream: its work ran when it was destroyed */
    Queue &q = *it->second;
    if (q.done >= target)
        return;
    if (q.running) {
        sc_emu_fail("stream %p waits for its own later work (an event recorded after the wait on it)", key);
        return;
    }
    q.running = true;
    while (q.done < target && !q.items.empty()) {
        sc_emu::Work w = std::move(q.items.front());
        q.items.pop_front();
        w();
        q.done++;
    }
    q.running = false;
}

sc_emu::Work wait_for(const void *key, uint64_t target)
{
    return [key, target] { run_until(key, target); };
}

void push(Queue &q, sc_emu::Work w)
{
    q.items.push_back(std::move(w));
    q.queued++;
}

} // namespace

bool sc_emu::runs_eagerly(unsigned n)
{
    const Schedule sch = schedule();
    return sch == EAGER || (sch == MIXED && n % 2 == 0 && n > 0);
}

void sc_emu::enqueue(const Lane &l, Work w)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    Queue &q = queue_of(l);
    /* The legacy stream and the blocking streams of one device wait for each other. */
    if (l.legacy || l.blocking)
        for (auto &kv : queues()) {
            Queue &o = *kv.second;
            const bool other = l.legacy ? (!o.lane.legacy && o.lane.blocking) : o.lane.legacy;
            if (&o != &q && other && o.lane.device == l.device && o.queued > o.done)
                push(q, wait_for(kv.first, o.queued));
        }
    push(q, std::move(w));
    if (l.eager)
        run_until(l.key, q.queued);
}

bool sc_emu::submit(cudaStream_t s, const char *what, Work w)
{
    Lane l;
    if (!lane_of(s, what, &l))
        return false;
    enqueue(l, std::move(w));
    return true;
}

void sc_emu::drain(const Lane &l)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    auto it = queues().find(l.key);
    if (it != queues().end())
        run_until(l.key, it->second->queued);
}

void sc_emu::drain_device(int device)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    for (auto &kv : queues())
        if (kv.second->lane.device == device)
            run_until(kv.first, kv.second->queued);
}

void sc_emu::drain_all(void)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    for (auto &kv : queues())
        run_until(kv.first, kv.second->queued);
}

void sc_emu::record(const void *event, const Lane &l)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    Queue &q = queue_of(l);
    marks()[event] = Mark{l.key, q.queued};
}

void sc_emu::wait(const Lane &l, const void *event)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    auto m = marks().find(event);
    if (m == marks().end())
        return; /* never recorded: nothing to wait for */
    auto q = queues().find(m->second.key);
    if (q == queues().end() || q->second->done >= m->second.target)
        return;
    enqueue(l, wait_for(m->second.key, m->second.target));
}

void sc_emu::synchronize(const void *event)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    auto m = marks().find(event);
    if (m != marks().end())
        run_until(m->second.key, m->second.target);
}

void sc_emu::forget_lane(const Lane &l)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    auto it = queues().find(l.key);
    if (it == queues().end())
        return;
    run_until(l.key, it->second->queued);
    queues().erase(it);
}

void sc_emu::forget_event(const void *event)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    marks().erase(event);
}

uint64_t sc_emu::pending(void)
{
    std::lock_guard<std::recursive_mutex> lock(mu());
    uint64_t n = 0;
    for (auto &kv : queues())
        n += kv.second->items.size();
    return n;
}
