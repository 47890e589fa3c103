/* The SGD object's private layout, shared by sgd.c and sgd_state.c (and read by the tests). */
#ifndef SUPCON_LIB_OPTIM_INTERNAL_H
#define SUPCON_LIB_OPTIM_INTERNAL_H

#include "backend.h"
#include "supcon/optim.h"

typedef struct sc_sgd_group {
    double lr, momentum, weight_decay, dampening;
    int nesterov;
} sc_sgd_group;

typedef struct sc_sgd_param {
    char *name;
    float *w;         /* backend memory, the caller's */
    const float *g;
    int64_t numel;
    int ndim;
    int64_t shape[SUPCON_MAX_DIMS];
    int group;
    int no_decay;     /* excluded from weight decay */
    int64_t buf_off;  /* element offset in the momentum buffer; -1: its group has no momentum */
    int has_buf;      /* the buffer holds a value (PyTorch: state['momentum_buffer'] exists) */
} sc_sgd_param;

struct supcon_sgd {
    supcon_context *ctx;
    sc_sgd_group *groups;
    int ngroups, gcap;
    sc_sgd_param *params;
    int64_t nparams, pcap;
    float *buf;       /* momentum buffers, backend memory */
    size_t buf_bytes;
    int prepared;     /* buffer and run table exist; the parameter list is fixed */
    int64_t steps;
    supcon_sgd_segment *segs; /* run table, one slot per parameter at most */
    int64_t last_runs;        /* runs handed to the backend by the last step */
};

/* Allocate the momentum buffer and the run table once; fn names the caller in messages. */
supcon_status sc_sgd_prepare(supcon_sgd *opt, const char *fn);

#endif
