/* Kernel launches for the emulation (included by cuda_runtime.h). The build rewrites
 *     kernel<<<G, B, S, ST>>>(args...)
 * into
 *     sc_emu_launch(sc_emu_cfg(G, B, S, ST), kernel, args...)
 * which converts the arguments to the kernel's parameter types once, as a launch does, and
 * has emu_launch.cpp run the kernel for every thread of every block. Errors are reported as
 * a real launch reports them: through the next cudaGetLastError. */
#ifndef SUPCON_CUDA_EMU_LAUNCH_H
#define SUPCON_CUDA_EMU_LAUNCH_H

#include <stddef.h>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

struct sc_emu_config {
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
};

static inline sc_emu_config sc_emu_cfg(dim3 grid, dim3 block, size_t shmem = 0, cudaStream_t stream = 0)
{
    return sc_emu_config{grid, block, shmem, stream};
}

/* What emu_launch.cpp needs of one launch. `text` names the kernel for messages (the launch's
 * source text, or the launch template's signature); ptrs[i] is argument i where that is a
 * data pointer (checked to be device or page-locked memory of the launch's device), else
 * NULL with is_ptr[i] 0. */
struct sc_emu_launch_desc {
    const char *text;
    void (*body)(void *ctx); /* runs the kernel as the current thread */
    void *ctx;
    const void *const *ptrs;
    const unsigned char *is_ptr;
    int nargs;
    std::shared_ptr<void> keep; /* owns ctx until the queued launch has run */
};

/* Validates the configuration (cudaErrorInvalidConfiguration, cudaErrorInvalidResourceHandle
 * for a stream that is not live or of another device), then queues the grid on the stream
 * (it runs when something waits for it: emu_queue.h). */
void sc_emu_run(const sc_emu_config &cfg, const sc_emu_launch_desc &d);

template <class T>
constexpr bool sc_emu_is_data_ptr = std::is_pointer<T>::value && !std::is_function<std::remove_pointer_t<T>>::value;

template <class T> static inline const void *sc_emu_ptr_arg(const T &v)
{
    if constexpr (sc_emu_is_data_ptr<T>)
        return (const void *)v;
    else
        return nullptr;
}

template <class K, class Params, size_t... I>
static inline void sc_emu_launch_tuple(const char *text, const sc_emu_config &cfg, K kernel, Params &params,
                                       std::index_sequence<I...>)
{
    struct frame {
        K k;
        Params p;
    };
    /* The arguments are taken when the launch is made, as a launch takes them. */
    std::shared_ptr<frame> f = std::make_shared<frame>(frame{kernel, params});
    constexpr int n = (int)sizeof...(I);
    const void *ptrs[n + 1] = {sc_emu_ptr_arg(std::get<I>(f->p))..., nullptr};
    const unsigned char is_ptr[n + 1] = {
        (unsigned char)sc_emu_is_data_ptr<std::tuple_element_t<I, Params>>..., 0};
    /* Each thread gets its own copies of the parameters, as each GPU thread does. */
    void (*body)(void *) = [](void *c) {
        frame *fr = (frame *)c;
        fr->k(std::get<I>(fr->p)...);
    };
    sc_emu_run(cfg, sc_emu_launch_desc{text, body, f.get(), ptrs, is_ptr, n, f});
}

/* A kernel whose parameter types are known: a plain kernel or a template-id naming one. */
template <class... P, class... A>
static inline void sc_emu_launch_named(const char *text, const sc_emu_config &cfg, void (*kernel)(P...),
                                       A &&...args)
{
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    sc_emu_launch_tuple(text ? text : __PRETTY_FUNCTION__, cfg, kernel, params,
                        std::index_sequence_for<P...>{});
}

/* Converting cfg to this costs a user-defined conversion: the overload below is chosen only
 * where the one above is not viable. */
struct sc_emu_config_deduced {
    const sc_emu_config &cfg;
    sc_emu_config_deduced(const sc_emu_config &c) : cfg(c) {}
};

/* A kernel template launched by its name alone, its template arguments deduced from the
 * arguments (bf16.cu): the parameter types must be the arguments' types. */
template <class... A>
static inline void sc_emu_launch_named(const char *text, sc_emu_config_deduced cfg,
                                       void (*kernel)(std::decay_t<A>...), A &&...args)
{
    std::tuple<std::decay_t<A>...> params(std::forward<A>(args)...);
    sc_emu_launch_tuple(text ? text : __PRETTY_FUNCTION__, cfg.cfg, kernel, params,
                        std::index_sequence_for<A...>{});
}

template <class... P, class... A>
static inline void sc_emu_launch(const sc_emu_config &cfg, void (*kernel)(P...), A &&...args)
{
    sc_emu_launch_named(nullptr, cfg, kernel, std::forward<A>(args)...);
}

template <class... A>
static inline void sc_emu_launch(sc_emu_config_deduced cfg, void (*kernel)(std::decay_t<A>...), A &&...args)
{
    sc_emu_launch_named(nullptr, cfg, kernel, std::forward<A>(args)...);
}

/* The rewritten launches also pass their own source text, so that messages name the kernel
 * (its name is what precedes the first comma). */
#ifndef SC_EMU_NO_LAUNCH_TEXT
#define sc_emu_launch(cfg, ...) sc_emu_launch_named(#__VA_ARGS__, cfg, __VA_ARGS__)
#endif

#endif /* SUPCON_CUDA_EMU_LAUNCH_H */
