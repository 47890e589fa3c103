/* The batch loader: worker threads fill a ring of batch slots ahead of the consumer.
 * Job s (the s-th batch since the last reset) always goes to slot s % nslots and is made
 * whole by one worker; every random choice depends only on (seed, epoch, index, view) and the
 * epoch's permutation, so the bytes of a batch never depend on which worker made it or how
 * many there are. Workers run on into the next epoch, so epoch boundaries cost nothing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "error.h"
#include "rng.h"

#define SHUFFLE_TAG 0x7368756666ull /* "shuff" */

enum { SLOT_FREE = 0, SLOT_BUSY = 1, SLOT_READY = 2 };

typedef struct slot {
    float *images;    /* [views * size][C][S][S] */
    int64_t *labels;  /* [size] */
    int64_t *indices; /* [size] */
    int64_t epoch, batch, size;
    supcon_status status; /* OK, or ERR_OUT_OF_MEMORY from a worker's scratch */
    int state;
} slot;

typedef struct worker {
    struct supcon_loader *l;
    pthread_t thread;
    sc_scratch scratch;
    int started;
} worker;

struct supcon_loader {
    supcon_context *ctx;
    const supcon_dataset *ds;
    const supcon_transform *tf;
    supcon_loader_config cfg;
    int64_t n, nb;  /* samples, batches per epoch */
    int views, channels, size;
    size_t image_floats; /* C * S * S */

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* workers wait here for a free slot / a start */
    pthread_cond_t done_cv; /* the consumer and resets wait here */
    worker *workers;
    int nworkers;
    int stop, running, resetting;
    uint64_t gen;  /* bumped by every reset; stale jobs are dropped */
    int in_flight; /* jobs being made right now */

    /* production: next job to hand out */
    int64_t prod_epoch, prod_batch;
    uint64_t prod_seq;
    int64_t perm_epoch;
    int64_t *perm;

    /* consumption */
    uint64_t cons_seq;
    int64_t cons_epoch, cons_batch;
    int holding; /* the consumer holds slot (cons_seq - 1) % nslots */

    slot *slots;
    int nslots;
    sc_scratch own_scratch; /* num_workers == 0 */
};

supcon_loader_config supcon_loader_config_default(void)
{
    supcon_loader_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.batch_size = 256;
    c.num_workers = 2;
    c.prefetch = 0;
    c.shuffle = 1;
    c.drop_last = 0;
    c.seed = 0;
    return c;
}

/* Permutation of epoch e: Fisher-Yates on the stream (seed, mix(tag, e)). */
static void make_perm(supcon_loader *l, int64_t epoch)
{
    for (int64_t i = 0; i < l->n; i++)
        l->perm[i] = i;
    if (l->cfg.shuffle) {
        sc_rng r;
        sc_rng_init(&r, l->cfg.seed, sc_rng_mix(SHUFFLE_TAG, (uint64_t)epoch));
        for (int64_t i = l->n - 1; i > 0; i--) {
            int64_t j = (int64_t)sc_rng_below(&r, (uint64_t)i + 1);
            int64_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->perm_epoch = epoch;
}

/* Take the next job into its slot (lock held). */
static slot *claim(supcon_loader *l)
{
    slot *s = &l->slots[l->prod_seq % (uint64_t)l->nslots];
    int64_t e = l->prod_epoch, b = l->prod_batch;
    l->prod_seq++;
    if (++l->prod_batch == l->nb) {
        l->prod_batch = 0;
        l->prod_epoch++;
    }
    if (l->perm_epoch != e)
        make_perm(l, e);
    int64_t first = b * l->cfg.batch_size;
    int64_t size = l->n - first < l->cfg.batch_size ? l->n - first : l->cfg.batch_size;
    memcpy(s->indices, l->perm + first, (size_t)size * sizeof(int64_t));
    s->epoch = e;
    s->batch = b;
    s->size = size;
    s->status = SUPCON_OK;
    s->state = SLOT_BUSY;
    return s;
}

/* Make the batch in s (no lock: only this thread touches s now). */
static supcon_status produce(supcon_loader *l, slot *s, sc_scratch *scratch)
{
    int64_t bs = s->size;
    for (int64_t j = 0; j < bs; j++) {
        int64_t idx = s->indices[j];
        int h, w;
        const uint8_t *img = sc_dataset_image(l->ds, idx, &h, &w);
        s->labels[j] = l->ds->im.labels[idx];
        for (int v = 0; v < l->views; v++) {
            float *out = s->images + ((size_t)v * (size_t)bs + (size_t)j) * l->image_floats;
            supcon_transform_params p;
            p.struct_size = sizeof p;
            sc_transform_draw(l->tf, h, w, l->cfg.seed, (uint64_t)s->epoch, (uint64_t)idx, v, &p);
            supcon_status st = sc_transform_run(l->tf, img, l->channels, h, w, &p, out, scratch);
            if (st != SUPCON_OK)
                return st;
        }
    }
    return SUPCON_OK;
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    supcon_loader *l = me->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && (!l->running || l->resetting || l->nb == 0 ||
                            l->slots[l->prod_seq % (uint64_t)l->nslots].state != SLOT_FREE))
            pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->stop)
            break;
        slot *s = claim(l);
        uint64_t gen = l->gen;
        l->in_flight++;
        pthread_mutex_unlock(&l->mu);

        supcon_status st = produce(l, s, &me->scratch);

        pthread_mutex_lock(&l->mu);
        l->in_flight--;
        if (gen == l->gen) {
            s->status = st;
            s->state = SLOT_READY;
        }
        pthread_cond_broadcast(&l->done_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void free_slots(supcon_loader *l)
{
    if (!l->slots)
        return;
    for (int i = 0; i < l->nslots; i++) {
        free(l->slots[i].images);
        free(l->slots[i].labels);
        free(l->slots[i].indices);
    }
    free(l->slots);
    l->slots = NULL;
}

void supcon_loader_free(supcon_loader *l)
{
    if (!l)
        return;
    if (l->workers) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->nworkers; i++) {
            if (l->workers[i].started)
                pthread_join(l->workers[i].thread, NULL);
            sc_scratch_free(&l->workers[i].scratch);
        }
        free(l->workers);
    }
    pthread_cond_destroy(&l->done_cv);
    pthread_cond_destroy(&l->work_cv);
    pthread_mutex_destroy(&l->mu);
    free_slots(l);
    free(l->perm);
    sc_scratch_free(&l->own_scratch);
    free(l);
}

supcon_status supcon_loader_create(supcon_context *ctx, const supcon_dataset *ds,
                                   const supcon_transform *t, const supcon_loader_config *cfg,
                                   supcon_loader **out)
{
    if (out)
        *out = NULL;
    if (!ctx || !ds || !t || !cfg || !out)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_create: ctx, ds, t, cfg and out must not be NULL");
    if (cfg->struct_size != sizeof *cfg)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_create: cfg->struct_size is %zu, expected %zu",
                        cfg->struct_size, sizeof *cfg);
    if (ds->ctx != ctx || t->ctx != ctx)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_create: data set and transform must belong to ctx");
    if (cfg->batch_size < 1 || cfg->batch_size > (1 << 24) || cfg->num_workers < 0 ||
        cfg->num_workers > 256 || cfg->prefetch < 0 || cfg->prefetch > 1024)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_create: batch_size %lld (1..2^24), num_workers %d "
                        "(0..256) or prefetch %d (0..1024) out of range",
                        (long long)cfg->batch_size, cfg->num_workers, cfg->prefetch);
    if (ds->im.count == 0)
        return sc_error(ctx, SUPCON_ERR_INVALID_ARGUMENT, "supcon_loader_create: empty data set");

    supcon_loader *l = calloc(1, sizeof *l);
    if (!l)
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for a loader");
    l->ctx = ctx;
    l->ds = ds;
    l->tf = t;
    l->cfg = *cfg;
    l->n = ds->im.count;
    l->nb = cfg->drop_last ? l->n / cfg->batch_size
                           : (l->n + cfg->batch_size - 1) / cfg->batch_size;
    l->views = t->cfg.views;
    l->channels = ds->im.channels;
    l->size = t->cfg.size;
    l->image_floats = (size_t)l->channels * (size_t)l->size * (size_t)l->size;
    l->perm_epoch = -1;
    l->nworkers = cfg->num_workers;
    l->nslots = cfg->num_workers == 0 ? 1
                : cfg->prefetch     ? cfg->prefetch
                                    : 2 * cfg->num_workers;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);

    int64_t bmax = cfg->batch_size < l->n ? cfg->batch_size : l->n;
    l->perm = malloc((size_t)l->n * sizeof(int64_t));
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    int ok = l->perm && l->slots;
    for (int i = 0; ok && i < l->nslots; i++) {
        slot *s = &l->slots[i];
        s->images = malloc((size_t)l->views * (size_t)bmax * l->image_floats * sizeof(float));
        s->labels = malloc((size_t)bmax * sizeof(int64_t));
        s->indices = malloc((size_t)bmax * sizeof(int64_t));
        ok = s->images && s->labels && s->indices;
    }
    if (!ok) {
        int nslots = l->nslots;
        supcon_loader_free(l);
        return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY,
                        "no memory for %d batch slots of %lld samples", nslots, (long long)bmax);
    }
    if (l->nworkers > 0) {
        l->workers = calloc((size_t)l->nworkers, sizeof *l->workers);
        if (!l->workers) {
            supcon_loader_free(l);
            return sc_error(ctx, SUPCON_ERR_OUT_OF_MEMORY, "no memory for the loader's workers");
        }
        for (int i = 0; i < l->nworkers; i++) {
            l->workers[i].l = l;
            if (pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) != 0) {
                supcon_loader_free(l);
                return sc_error(ctx, SUPCON_ERR_INTERNAL,
                                "supcon_loader_create: could not start worker thread %d", i);
            }
            l->workers[i].started = 1;
        }
    }
    *out = l;
    return SUPCON_OK;
}

int64_t supcon_loader_num_batches(const supcon_loader *l)
{
    return l->nb;
}

supcon_status supcon_loader_start_epoch(supcon_loader *l, int64_t epoch)
{
    if (!l)
        return sc_error(NULL, SUPCON_ERR_INVALID_ARGUMENT, "supcon_loader_start_epoch: NULL");
    if (epoch < 0)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_start_epoch: epoch %lld < 0", (long long)epoch);
    pthread_mutex_lock(&l->mu);
    /* the epoch that the workers are already making: nothing to drop */
    int seamless = l->running && ((l->cons_batch == l->nb && epoch == l->cons_epoch + 1) ||
                                  (l->cons_batch == 0 && !l->holding && epoch == l->cons_epoch));
    if (seamless) {
        if (epoch != l->cons_epoch) {
            l->cons_epoch = epoch;
            l->cons_batch = 0;
        }
        pthread_mutex_unlock(&l->mu);
        return SUPCON_OK;
    }
    /* drop everything made ahead and restart production at `epoch` */
    l->resetting = 1;
    l->gen++;
    while (l->in_flight > 0)
        pthread_cond_wait(&l->done_cv, &l->mu);
    for (int i = 0; i < l->nslots; i++)
        l->slots[i].state = SLOT_FREE;
    l->prod_epoch = l->cons_epoch = epoch;
    l->prod_batch = l->cons_batch = 0;
    l->prod_seq = l->cons_seq = 0;
    l->holding = 0;
    l->running = 1;
    l->resetting = 0;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return SUPCON_OK;
}

supcon_status supcon_loader_next(supcon_loader *l, supcon_batch *batch)
{
    if (!l || !batch)
        return sc_error(l ? l->ctx : NULL, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_next: NULL argument");
    if (batch->struct_size != sizeof *batch)
        return sc_error(l->ctx, SUPCON_ERR_INVALID_ARGUMENT,
                        "supcon_loader_next: batch->struct_size is %zu, expected %zu",
                        batch->struct_size, sizeof *batch);
    size_t keep = batch->struct_size;
    memset(batch, 0, sizeof *batch);
    batch->struct_size = keep;
    batch->views = l->views;
    batch->channels = l->channels;
    batch->height = batch->width = l->size;

    pthread_mutex_lock(&l->mu);
    if (!l->running) {
        pthread_mutex_unlock(&l->mu);
        return sc_error(l->ctx, SUPCON_ERR_STATE,
                        "supcon_loader_next: call supcon_loader_start_epoch first");
    }
    if (l->holding) { /* hand the previous batch's slot back to the workers */
        l->slots[(l->cons_seq - 1) % (uint64_t)l->nslots].state = SLOT_FREE;
        l->holding = 0;
        pthread_cond_broadcast(&l->work_cv);
    }
    batch->epoch = l->cons_epoch;
    if (l->cons_batch >= l->nb) {
        batch->batch_index = l->nb;
        pthread_mutex_unlock(&l->mu);
        return SUPCON_OK; /* size 0: the epoch is over */
    }
    slot *s = &l->slots[l->cons_seq % (uint64_t)l->nslots];
    supcon_status st = SUPCON_OK;
    if (l->nworkers == 0) {
        claim(l);
        st = produce(l, s, &l->own_scratch);
        s->status = st;
        s->state = SLOT_READY;
    } else {
        while (s->state != SLOT_READY)
            pthread_cond_wait(&l->done_cv, &l->mu);
        st = s->status;
    }
    l->cons_seq++;
    l->cons_batch++;
    l->holding = 1;
    pthread_mutex_unlock(&l->mu);
    if (st != SUPCON_OK)
        return sc_error(l->ctx, st, "supcon_loader_next: a worker ran out of memory in batch %lld",
                        (long long)s->batch);
    batch->size = s->size;
    batch->images = s->images;
    batch->labels = s->labels;
    batch->indices = s->indices;
    batch->epoch = s->epoch;
    batch->batch_index = s->batch;
    return SUPCON_OK;
}
