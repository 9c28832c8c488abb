/* Recovery: take a port back from a dead owner (or from ourselves on unbind).
 *
 * Requests queued for the port or being served by it fail back to their
 * requesters with ECONNRESET; its replies, free requests and the requests its
 * process held go back to the pool.  The recovery lock serialises recoveries;
 * a port left half-recovered (its recoverer died too) is in PORT_RECOVERING
 * and is simply recovered again: every step is safe to repeat. */
#include <unistd.h>
#include "internal.h"

#define BATCH 64

/* Lock and unlock every queue: queues a dead process held get repaired now. */
static void touch_all(struct xseg *seg)
{
	struct xhdr *h = seg->hdr;

	xq_lock(seg, &h->pool);
	xq_unlock(&h->pool);
	for (uint32_t i = 0; i < h->nr_ports; i++) {
		struct xport *p = &seg->ports[i];

		xq_lock(seg, &p->freeq);
		xq_unlock(&p->freeq);
		xq_lock(seg, &p->reqq);
		xq_unlock(&p->reqq);
		xq_lock(seg, &p->replyq);
		xq_unlock(&p->replyq);
	}
}

/* A request the port's process had in hand: answer it if someone waits. */
static void settle(struct xseg *seg, struct xseg_request *r, int err)
{
	if (r->path_len)
		req_fail_back(seg, r, err);
	else
		req_to_pool(seg, r);
}

static void drain(struct xseg *seg, struct xq *q, uint32_t portno, int replies)
{
	struct xseg_request *batch[BATCH];
	int n;

	while ((n = xq_pop(seg, q, batch, BATCH, XW_HELD, portno)) > 0) {
		for (int i = 0; i < n; i++) {
			if (replies)
				batch[i]->path_len--;   /* the dead port's own hop */
			settle(seg, batch[i], ECONNRESET);
		}
	}
}

static int set_state(struct xseg *seg, struct xport *p, uint32_t from_state, int self,
		     uint32_t to)
{
	int ok;

	xq_lock(seg, &p->reqq);
	xq_lock(seg, &p->replyq);
	ok = p->state == from_state &&
	     (p->state != PORT_BOUND || (self ? p->owner_pid == getpid()
					      : !pid_alive(p->owner_pid, p->owner_start)));
	if (ok) {
		p->state = to;
		if (to == PORT_FREE) {
			p->gen++;     /* replies still on their way see a new port */
			p->owner_pid = 0;
			p->alloc = 0;
			p->signal_port = p - seg->ports;
		}
	}
	xq_unlock(&p->replyq);
	xq_unlock(&p->reqq);
	return ok;
}

void recover_port(struct xseg *seg, uint32_t portno, int self)
{
	struct xport *p = &seg->ports[portno];
	struct xhdr *h = seg->hdr;

	xlock(&h->recovery_lock);
	if (!set_state(seg, p, PORT_BOUND, self, PORT_RECOVERING) &&
	    p->state != PORT_RECOVERING) {
		xunlock(&h->recovery_lock);   /* free, or its owner is alive */
		return;
	}
	touch_all(seg);
	drain(seg, &p->reqq, portno, 0);
	drain(seg, &p->replyq, portno, 1);
	drain(seg, &p->freeq, portno, 0);
	for (uint32_t i = 0; i < h->nr_reqs; i++) {
		struct xseg_request *r = &seg->reqs[i];

		if (r->holder == portno && (r->where == XW_HELD || r->where == XW_SERVING))
			settle(seg, r, ECONNRESET);
	}
	set_state(seg, p, PORT_RECOVERING, self, PORT_FREE);
	xunlock(&h->recovery_lock);
}

int xseg_check(struct xseg *seg)
{
	int n = 0;

	for (uint32_t i = 0; i < seg->hdr->nr_ports; i++) {
		struct xport *p = &seg->ports[i];
		uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);

		if (st == PORT_RECOVERING ||
		    (st == PORT_BOUND && !pid_alive(p->owner_pid, p->owner_start))) {
			recover_port(seg, i, 0);
			n++;
		}
	}
	return n;
}
