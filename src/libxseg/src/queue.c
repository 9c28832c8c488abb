/* Queues of requests linked through their `next` index, one robust mutex each.
 *
 * Invariant: a request whose `where`/`holder` name a queue is in that queue,
 * and a request in a queue says so.  A push relabels the request, links it
 * after the tail and then moves the tail; a pop relabels the requests it takes
 * and commits by moving the head.  A process that dies in between leaves the
 * two views disagreeing in a way queue_fsck() puts right: everything reachable
 * from the head is queued; everything that claims the queue but is not
 * reachable is appended. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void xq_init(struct xq *q, uint32_t kind, uint32_t port)
{
	xlock_init(&q->lock);
	q->head = q->tail = XQ_NONE;
	q->count = 0;
	q->kind = kind;
	q->port = port;
}

uint32_t xq_count(const struct xq *q)
{
	return __atomic_load_n(&q->count, __ATOMIC_ACQUIRE);
}

static void link_tail(struct xseg *seg, struct xq *q, struct xseg_request *req)
{
	req->next = XQ_NONE;
	if (q->tail == XQ_NONE)
		q->head = req->idx;
	else
		seg->reqs[q->tail].next = req->idx;
	q->tail = req->idx;
	__atomic_store_n(&q->count, q->count + 1, __ATOMIC_RELEASE);
}

/* Repair a queue whose last locker died inside its critical section. */
static void queue_fsck(struct xseg *seg, struct xq *q)
{
	uint32_t n = seg->hdr->nr_reqs, i, walked = 0, last = XQ_NONE;
	unsigned char *seen = calloc(n, 1);

	for (i = q->head; i != XQ_NONE && walked < n; i = seg->reqs[i].next) {
		struct xseg_request *r = &seg->reqs[i];

		r->where = q->kind;    /* an unfinished pop had relabelled it */
		r->holder = q->port;
		if (seen)
			seen[i] = 1;
		last = i;
		walked++;
	}
	if (last != XQ_NONE)
		seg->reqs[last].next = XQ_NONE;
	q->tail = last;
	q->count = walked;
	if (walked == 0)
		q->head = XQ_NONE;
	for (i = 0; seen && i < n; i++) {
		struct xseg_request *r = &seg->reqs[i];

		/* relabelled by an unfinished push: finish it */
		if (!seen[i] && r->where == q->kind && r->holder == q->port)
			link_tail(seg, q, r);
	}
	free(seen);
}

void xq_lock(struct xseg *seg, struct xq *q)
{
	if (xlock(&q->lock))
		queue_fsck(seg, q);
}

void xq_unlock(struct xq *q)
{
	xunlock(&q->lock);
}

void xq_push_locked(struct xseg *seg, struct xq *q, struct xseg_request *req)
{
	req->where = q->kind;
	req->holder = q->port;
	link_tail(seg, q, req);
}

int xq_pop_locked(struct xseg *seg, struct xq *q, struct xseg_request **out, int max,
		  uint32_t where, uint32_t holder)
{
	uint32_t i = q->head;
	int n = 0;

	while (n < max && i != XQ_NONE) {
		struct xseg_request *r = &seg->reqs[i];

		r->where = where;
		r->holder = holder;
		out[n++] = r;
		i = r->next;
	}
	/* commit: the head store; tail and count follow from it in fsck */
	__atomic_store_n(&q->head, i, __ATOMIC_RELEASE);
	if (i == XQ_NONE)
		q->tail = XQ_NONE;
	__atomic_store_n(&q->count, q->count - n, __ATOMIC_RELEASE);
	return n;
}

void xq_push(struct xseg *seg, struct xq *q, struct xseg_request *req)
{
	xq_lock(seg, q);
	xq_push_locked(seg, q, req);
	xq_unlock(q);
}

int xq_pop(struct xseg *seg, struct xq *q, struct xseg_request **out, int max,
	   uint32_t where, uint32_t holder)
{
	int n;

	if (max <= 0 || xq_count(q) == 0)
		return 0;   /* lock-free peek: the common empty case costs no lock */
	xq_lock(seg, q);
	n = xq_pop_locked(seg, q, out, max, where, holder);
	xq_unlock(q);
	return n;
}

/* Free the data buffers of the (idle) requests in a free queue: the heap takes
 * them back when it runs short.  Lock order: queue, then heap. */
void xq_drop_buffers(struct xseg *seg, struct xq *q)
{
	uint32_t walked = 0;

	if (xq_count(q) == 0)
		return;
	xq_lock(seg, q);
	for (uint32_t i = q->head; i != XQ_NONE && walked < seg->hdr->nr_reqs;
	     i = seg->reqs[i].next, walked++)
		heap_free(seg, &seg->reqs[i]);
	xq_unlock(q);
}
