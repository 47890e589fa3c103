/* Fibers for the kernel executor (emu_launch.cpp): a context per CUDA thread that may have to
 * wait (barriers, shuffles), switched cooperatively. On x86-64 the switch is a few
 * instructions (callee-saved registers and the FP control words); elsewhere, or with
 * SC_EMU_UCONTEXT defined, swapcontext, which also makes a system call per switch. Under
 * AddressSanitizer every switch is announced to it. Header-only, used by one file. */
#ifndef SUPCON_CUDA_EMU_FIBER_H
#define SUPCON_CUDA_EMU_FIBER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(SC_EMU_UCONTEXT)
#define SC_EMU_UCONTEXT 1
#endif
#ifdef SC_EMU_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SC_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_EMU_ASAN 1
#endif
#endif
#ifdef SC_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace sc_emu {

#ifdef SC_EMU_ASAN
constexpr size_t kFiberStack = (size_t)512 << 10; /* instrumented frames are larger */
#else
constexpr size_t kFiberStack = (size_t)128 << 10;
#endif

/* A context to switch from or to: a fiber's, or the launching thread's own (main). */
struct Ctx {
#ifdef SC_EMU_UCONTEXT
    ucontext_t uc;
#else
    void *sp = nullptr; /* saved stack pointer; the registers are on that stack */
#endif
    void *stack_lo = nullptr; /* usable stack, for the sanitizer */
    size_t stack_size = 0;
};

#ifndef SC_EMU_UCONTEXT
extern "C" void sc_emu_ctx_switch(void **save_sp, void *to_sp);
extern "C" void sc_emu_ctx_start(void);
#endif

/* Switches from `from` to `to`. `forever`: `from` will never be resumed (a fiber abandoned by
 * a failed launch), which the sanitizer must know to drop its fake frames. */
inline void ctx_switch(Ctx *from, Ctx *to, bool forever)
{
#ifdef SC_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(forever ? nullptr : &fake, to->stack_lo, to->stack_size);
#else
    (void)forever;
#endif
#ifdef SC_EMU_UCONTEXT
    swapcontext(&from->uc, &to->uc);
#else
    sc_emu_ctx_switch(&from->sp, to->sp);
#endif
#ifdef SC_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

/* To be called first thing on a fresh fiber. */
inline void fiber_entered(void)
{
#ifdef SC_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

/* The calling thread's stack, for the sanitizer's view of the main context. */
inline void main_ctx_bounds(Ctx *c)
{
#ifdef SC_EMU_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &c->stack_lo, &c->stack_size);
        pthread_attr_destroy(&a);
    }
#else
    (void)c;
#endif
}

/* A stack of kFiberStack bytes over a guard page (an overflow faults instead of corrupting). */
struct Stack {
    unsigned char *map = nullptr;
    size_t map_len = 0;
};

inline bool stack_alloc(Stack *s, Ctx *c)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->map_len = kFiberStack + page;
    void *m = mmap(nullptr, s->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    s->map = (unsigned char *)m;
    mprotect(s->map, page, PROT_NONE);
    c->stack_lo = s->map + page;
    c->stack_size = kFiberStack;
    return true;
}

inline void stack_free(Stack *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    s->map = nullptr;
}

/* Makes c start entry(arg) at the top of its stack at the next switch to it (also to reuse a
 * fiber abandoned mid-kernel: its old frames are simply forgotten). */
inline void ctx_prepare(Ctx *c, void (*entry)(void), void *arg)
{
#ifdef SC_EMU_ASAN
    __asan_unpoison_memory_region(c->stack_lo, c->stack_size);
#endif
#ifdef SC_EMU_UCONTEXT
    (void)arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = c->stack_lo;
    c->uc.uc_stack.ss_size = c->stack_size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
#else
    /* The frame sc_emu_ctx_switch pops, from the lowest address: MXCSR and the x87 control
     * word, r15, r14, r13 (entry), r12 (arg), rbx, rbp, and the return address, which is
     * sc_emu_ctx_start; after that `ret` the stack is 16-byte aligned, as at a call. */
    uintptr_t top = ((uintptr_t)c->stack_lo + c->stack_size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 80);
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    f[0] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    f[1] = 0;                   /* r15 */
    f[2] = 0;                   /* r14 */
    f[3] = (uint64_t)entry;     /* r13 */
    f[4] = (uint64_t)arg;       /* r12 */
    f[5] = 0;                   /* rbx */
    f[6] = 0;                   /* rbp */
    f[7] = (uint64_t)&sc_emu_ctx_start;
    c->sp = f;
#endif
}

} // namespace sc_emu

#ifndef SC_EMU_UCONTEXT
/* sc_emu_ctx_switch(save_sp, to_sp): pushes the callee-saved state, stores the stack pointer
 * in *save_sp, loads to_sp and pops the state saved there. sc_emu_ctx_start: where a fresh
 * context begins; calls r13(r12), which never returns. */
__asm__(".text\n"
        ".globl sc_emu_ctx_switch\n"
        ".hidden sc_emu_ctx_switch\n"
        ".type sc_emu_ctx_switch,@function\n"
        "sc_emu_ctx_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n"
        "  fldcw 4(%rsp)\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size sc_emu_ctx_switch, .-sc_emu_ctx_switch\n"
        ".globl sc_emu_ctx_start\n"
        ".hidden sc_emu_ctx_start\n"
        ".type sc_emu_ctx_start,@function\n"
        "sc_emu_ctx_start:\n"
        "  movq %r12, %rdi\n"
        "  callq *%r13\n"
        "  ud2\n"
        ".size sc_emu_ctx_start, .-sc_emu_ctx_start\n");
#endif

#endif /* SUPCON_CUDA_EMU_FIBER_H */
