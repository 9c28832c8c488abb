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
 *
 * Pollers: a thread that starts requests and takes their completions itself
 * (nbdd's connection thread: ra_poll(+1) once, then ra_take whenever ra_fd(), an
 * eventfd, is readable, while it also waits for its socket) saves the draining
 * thread's wake-up and, above all, the GIL hand-over between two Python threads on
 * every batch. While a poller is registered a completion that finds the list empty
 * writes the eventfd instead of waking ra_wait; ra_wait still takes completions
 * older than STALE_NS, so a poller blocked elsewhere delays completions by at most
 * that, never loses them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <rados/librados.h>

#include "rados_aio.h"

struct ra_op {
    struct ra_client *cl;
    uint64_t tag;
    int64_t rv;
    uint64_t done_ns;           /* CLOCK_MONOTONIC when it completed */
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
    int pollers;                /* threads that take completions themselves (ra_poll) */
    int efd;                    /* eventfd: completions are waiting (for pollers) */
};

#define STALE_NS 2000000ULL     /* ra_wait takes completions a poller left this long */

static uint64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void completed(rados_completion_t comp, void *arg)
{
    struct ra_op *op = arg;
    struct ra_client *cl = op->cl;

    op->rv = rados_aio_get_return_value(comp);
    op->done_ns = now_ns();
    pthread_mutex_lock(&cl->mu);
    op->next = NULL;
    if (cl->last) {
        cl->last->next = op;
    } else {
        cl->first = op;
        if (cl->pollers && cl->efd >= 0) {
            uint64_t one = 1;
            if (write(cl->efd, &one, sizeof one) < 0)
                ;       /* EAGAIN: the counter is full, i.e. already readable */
        }
    }
    cl->last = op;
    if (!cl->pollers || cl->closed)
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
    cl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->ready, NULL);
    pthread_cond_init(&cl->slot, NULL);
    r = setup(cl, conf, id, pool, nspace, connect_timeout, op_timeout);
    if (r < 0) {
        ra_destroy(cl);     /* closes the eventfd too */
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

/* Under cl->mu: move up to max completed ops to got[]; the count. */
static int take_locked(struct ra_client *cl, struct ra_op **got, int max)
{
    int n = 0;

    while (cl->first && n < max) {
        got[n++] = cl->first;
        cl->first = cl->first->next;
    }
    if (!cl->first)
        cl->last = NULL;
    cl->inflight -= n;
    if (n)
        pthread_cond_broadcast(&cl->slot);
    return n;
}

static void hand_out(struct ra_op **got, int n, uint64_t *tags, int64_t *rvs)
{
    int i;

    for (i = 0; i < n; i++) {
        tags[i] = got[i]->tag;
        rvs[i] = got[i]->rv;
        rados_aio_release(got[i]->comp);
        free(got[i]);
    }
}

static void add_ns(struct timespec *t, uint64_t ns)
{
    t->tv_sec += ns / 1000000000ULL;
    t->tv_nsec += (long)(ns % 1000000000ULL);
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int ra_wait(struct ra_client *cl, uint64_t *tags, int64_t *rvs, int max, int timeout_ms)
{
    struct ra_op *got[256];
    struct timespec until, now, t;
    int n = 0;

    if (max > 256)
        max = 256;
    clock_gettime(CLOCK_REALTIME, &until);
    add_ns(&until, (uint64_t)timeout_ms * 1000000ULL);
    pthread_mutex_lock(&cl->mu);
    for (;;) {
        if (cl->first && (!cl->pollers || cl->closed
                          || now_ns() - cl->first->done_ns >= STALE_NS))
            break;
        if (!cl->first && cl->closed && cl->inflight == 0)
            break;
        t = until;
        if (cl->pollers) {      /* wake up to take what an active poller left */
            clock_gettime(CLOCK_REALTIME, &now);
            add_ns(&now, STALE_NS);
            if (before(&now, &t))
                t = now;
        }
        if (pthread_cond_timedwait(&cl->ready, &cl->mu, &t) == ETIMEDOUT) {
            clock_gettime(CLOCK_REALTIME, &now);
            if (!before(&now, &until))
                break;
        }
    }
    n = take_locked(cl, got, max);
    if (n == 0 && cl->closed && cl->inflight == 0)
        n = -1;
    pthread_mutex_unlock(&cl->mu);
    if (n > 0)
        hand_out(got, n, tags, rvs);
    return n;
}

int ra_take(struct ra_client *cl, uint64_t *tags, int64_t *rvs, int max)
{
    struct ra_op *got[256];
    int n;

    if (max > 256)
        max = 256;
    pthread_mutex_lock(&cl->mu);
    n = take_locked(cl, got, max);
    if (cl->closed && cl->inflight == 0)
        pthread_cond_broadcast(&cl->ready);   /* ra_wait may be waiting for the last */
    pthread_mutex_unlock(&cl->mu);
    hand_out(got, n, tags, rvs);
    return n;
}

int ra_fd(struct ra_client *cl)
{
    return cl->efd;
}

void ra_poll(struct ra_client *cl, int delta)
{
    pthread_mutex_lock(&cl->mu);
    cl->pollers += delta;
    if (!cl->pollers && cl->first)
        pthread_cond_signal(&cl->ready);      /* what it did not take: the drainer's */
    pthread_mutex_unlock(&cl->mu);
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
    pthread_mutex_lock(&cl->mu);
    if (cl->efd >= 0 && !cl->pollers) {     /* else a poller may still watch it */
        close(cl->efd);
        cl->efd = -1;
    }
    pthread_mutex_unlock(&cl->mu);
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
