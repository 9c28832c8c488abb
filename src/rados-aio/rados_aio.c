/* rados_aio: librados asynchronous reads and writes for RadosStore, with the
 * completions collected in a ring that one Python thread drains.
 *
 * Why: python-rados runs a Python callback per completion on a librados finisher
 * thread (taking the GIL there) and copies every read into a new bytes object. Here
 * a completion only takes a mutex and appends to a ring; ra_wait() hands a batch of
 * them to the draining thread, and reads land straight in the caller's buffer.
 *
 * At most `depth` requests are in flight: ra_read and ra_write wait for a slot,
 * except with `force` (the draining thread itself, which must never wait for
 * slots only it can free). Completed requests queue in a list (never full).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>

#include "rados_aio.h"

struct ra_op {
    struct ra_client *cl;
    uint64_t tag;
    int64_t rv;
    rados_completion_t comp;
    struct ra_op *next;         /* in the done list */
};

struct ra_client {
    rados_t cluster;
    rados_ioctx_t io;
    pthread_mutex_t mu;
    pthread_cond_t ready;       /* a completion is in the ring, or closing */
    pthread_cond_t slot;        /* a request slot became free */
    struct ra_op *first, *last;     /* completed, oldest first */
    uint32_t depth, inflight;
    int closed;
};

static void completed(rados_completion_t comp, void *arg)
{
    struct ra_op *op = arg;
    struct ra_client *cl = op->cl;

    op->rv = rados_aio_get_return_value(comp);
    pthread_mutex_lock(&cl->mu);
    op->next = NULL;
    if (cl->last)
        cl->last->next = op;
    else
        cl->first = op;
    cl->last = op;
    pthread_cond_signal(&cl->ready);
    pthread_mutex_unlock(&cl->mu);
}

static int setup(struct ra_client *cl, const char *conf, const char *id, const char *pool,
                 const char *nspace, int connect_timeout, int op_timeout)
{
    char t[32];
    int r;

    if ((r = rados_create(&cl->cluster, id)) < 0)
        return r;
    if ((r = rados_conf_read_file(cl->cluster, conf)) < 0)
        return r;
    snprintf(t, sizeof t, "%d", op_timeout);
    if ((r = rados_conf_set(cl->cluster, "rados_osd_op_timeout", t)) < 0 ||
        (r = rados_conf_set(cl->cluster, "rados_mon_op_timeout", t)) < 0)
        return r;
    snprintf(t, sizeof t, "%d", connect_timeout);
    if ((r = rados_conf_set(cl->cluster, "client_mount_timeout", t)) < 0)
        return r;
    if ((r = rados_connect(cl->cluster)) < 0)
        return r;
    if ((r = rados_ioctx_create(cl->cluster, pool, &cl->io)) < 0)
        return r;
    rados_ioctx_set_namespace(cl->io, nspace);
    rados_set_pool_full_try(cl->io);   /* a full cluster answers ENOSPC, never parks */
    return 0;
}

int ra_connect(struct ra_client **out, const char *conf, const char *id, const char *pool,
               const char *nspace, int connect_timeout, int op_timeout, uint32_t depth)
{
    struct ra_client *cl = calloc(1, sizeof *cl);
    int r;

    if (!cl)
        return -ENOMEM;
    cl->depth = depth ? depth : 1;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->ready, NULL);
    pthread_cond_init(&cl->slot, NULL);
    r = setup(cl, conf, id, pool, nspace, connect_timeout, op_timeout);
    if (r < 0) {
        ra_destroy(cl);
        free(cl);       /* nobody else has seen it */
        return r;
    }
    *out = cl;
    return 0;
}

int ra_addrs(struct ra_client *cl, char *buf, size_t len)
{
    char *addrs = NULL;
    int r = rados_getaddrs(cl->cluster, &addrs);

    if (r < 0)
        return r;
    snprintf(buf, len, "%s", addrs);
    free(addrs);
    return 0;
}

/* A free slot, or -ESHUTDOWN once the client is closing. */
static int take_slot(struct ra_client *cl, int force)
{
    int r = 0;

    pthread_mutex_lock(&cl->mu);
    while (!force && cl->inflight >= cl->depth && !cl->closed)
        pthread_cond_wait(&cl->slot, &cl->mu);
    if (cl->closed)
        r = -ESHUTDOWN;
    else
        cl->inflight++;
    pthread_mutex_unlock(&cl->mu);
    return r;
}

static void give_slot(struct ra_client *cl)
{
    pthread_mutex_lock(&cl->mu);
    cl->inflight--;
    pthread_cond_signal(&cl->slot);
    if (cl->closed)
        pthread_cond_broadcast(&cl->ready);   /* ra_wait may be waiting for the last */
    pthread_mutex_unlock(&cl->mu);
}

static struct ra_op *new_op(struct ra_client *cl, uint64_t tag, int force, int *r)
{
    struct ra_op *op;

    if ((*r = take_slot(cl, force)) < 0)
        return NULL;
    op = calloc(1, sizeof *op);
    if (!op) {
        give_slot(cl);
        *r = -ENOMEM;
        return NULL;
    }
    op->cl = cl;
    op->tag = tag;
    *r = rados_aio_create_completion2(op, completed, &op->comp);
    if (*r < 0) {
        free(op);
        give_slot(cl);
        return NULL;
    }
    return op;
}

static int started(struct ra_op *op, int r)
{
    if (r < 0) {           /* never submitted: no completion will come */
        struct ra_client *cl = op->cl;
        rados_aio_release(op->comp);
        free(op);
        give_slot(cl);
    }
    return r;
}

int ra_read(struct ra_client *cl, const char *oid, char *buf, size_t len, uint64_t off,
            uint64_t tag, int force)
{
    int r;
    struct ra_op *op = new_op(cl, tag, force, &r);

    if (!op)
        return r;
    return started(op, rados_aio_read(cl->io, oid, op->comp, buf, len, off));
}

int ra_write(struct ra_client *cl, const char *oid, const char *buf, size_t len,
             uint64_t off, uint64_t tag, int force)
{
    int r;
    struct ra_op *op = new_op(cl, tag, force, &r);

    if (!op)
        return r;
    return started(op, rados_aio_write(cl->io, oid, op->comp, buf, len, off));
}

int ra_wait(struct ra_client *cl, uint64_t *tags, int64_t *rvs, int max, int timeout_ms)
{
    struct ra_op *got[256];
    struct timespec until;
    int n = 0, i;

    if (max > 256)
        max = 256;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&cl->mu);
    while (!cl->first && !(cl->closed && cl->inflight == 0))
        if (pthread_cond_timedwait(&cl->ready, &cl->mu, &until) == ETIMEDOUT)
            break;
    while (cl->first && n < max) {
        got[n++] = cl->first;
        cl->first = cl->first->next;
    }
    if (!cl->first)
        cl->last = NULL;
    cl->inflight -= n;
    if (n)
        pthread_cond_broadcast(&cl->slot);
    if (n == 0 && cl->closed && cl->inflight == 0)
        n = -1;
    pthread_mutex_unlock(&cl->mu);
    for (i = 0; i < n; i++) {
        tags[i] = got[i]->tag;
        rvs[i] = got[i]->rv;
        rados_aio_release(got[i]->comp);
        free(got[i]);
    }
    return n;
}

void ra_close(struct ra_client *cl)
{
    pthread_mutex_lock(&cl->mu);
    cl->closed = 1;
    pthread_cond_broadcast(&cl->ready);
    pthread_cond_broadcast(&cl->slot);
    pthread_mutex_unlock(&cl->mu);
}

/* After ra_close and once ra_wait returned -1 (nothing in flight). The struct itself
 * is kept (a few hundred bytes per closed client): a racing ra_read/ra_write must
 * still find `closed` set and return -ESHUTDOWN without touching the handle. */
void ra_destroy(struct ra_client *cl)
{
    if (cl->io) {
        rados_aio_flush(cl->io);
        rados_ioctx_destroy(cl->io);
        cl->io = NULL;
    }
    if (cl->cluster) {
        rados_shutdown(cl->cluster);
        cl->cluster = NULL;
    }
}

int ra_flush(struct ra_client *cl)
{
    int r = take_slot(cl, 1);  /* counted in flight: ra_destroy waits for it */

    if (r < 0)
        return r;
    r = rados_aio_flush(cl->io);
    give_slot(cl);
    return r;
}
