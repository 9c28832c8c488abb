/* Requests: get/put, submit/accept, respond/receive, and reply routing. */
#include <stdio.h>
#include <string.h>
#include "internal.h"

static const char *op_names[X_NR_OPS] = {
	"ping", "read", "write", "sync", "truncate", "delete", "acquire", "release",
	"copy", "clone", "commit", "info", "mapr", "mapw", "open", "close", "snapshot",
	"hash", "create", "rename", "flush", "update",
};

const char *xseg_op_name(uint32_t op)
{
	return op < X_NR_OPS ? op_names[op] : "unknown";
}

static struct xport *bound_port(struct xseg *seg, int portno)
{
	struct xport *p = port_get(seg, portno);

	if (p && __atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != PORT_BOUND)
		return xerr_null(EBADF, "port %d of segment %s is not bound", portno, seg->name);
	return p;
}

struct xseg_request *xseg_req_by_idx(struct xseg *seg, uint32_t idx)
{
	if (idx >= seg->hdr->nr_reqs)
		return xerr_null(EINVAL, "request index %u out of range", idx);
	return &seg->reqs[idx];
}

char *xseg_req_data(struct xseg *seg, struct xseg_request *req)
{
	return req->buf_cap ? XPTR(seg, req->buf_off) : NULL;
}

int xseg_set_target(struct xseg_request *req, const char *target, uint32_t len)
{
	if (len > XSEG_MAX_TARGETLEN)
		return xerr(ENAMETOOLONG, "target of %u bytes is over the limit of %d",
			    len, XSEG_MAX_TARGETLEN);
	memcpy(req->target, target, len);
	req->targetlen = len;
	return 0;
}

int xseg_resize_data(struct xseg *seg, struct xseg_request *req, uint64_t datalen)
{
	if (heap_alloc(seg, req, datalen))
		return -1;
	req->datalen = datalen;
	return 0;
}

/* Back to the segment-wide pool: the buffer goes back to the heap too. */
void req_to_pool(struct xseg *seg, struct xseg_request *req)
{
	if (req->alloc_port != XSEG_NOPORT) {
		struct xport *p = &seg->ports[req->alloc_port];

		if (p->gen == req->alloc_gen && p->state == PORT_BOUND)
			__atomic_fetch_sub(&p->alloc, 1, __ATOMIC_RELAXED);
		req->alloc_port = XSEG_NOPORT;
	}
	heap_free(seg, req);
	xq_push(seg, &seg->hdr->pool, req);
}

static void reset(struct xseg_request *r, int portno, uint64_t datalen)
{
	r->op = r->flags = r->state = 0;
	r->err = 0;
	r->offset = r->size = r->serviced = 0;
	r->datalen = datalen;
	r->targetlen = 0;
	r->target[0] = 0;
	r->src = portno;
	r->dst = XSEG_NOPORT;
	r->priv = 0;
	r->path_len = 0;
	r->serial++;
}

/* Requests from the port's own free queue, then from the pool under its limit. */
static int take_reqs(struct xseg *seg, int portno, struct xport *p,
		     struct xseg_request **reqs, int n)
{
	int got = xq_pop(seg, &p->freeq, reqs, n, XW_HELD, portno);

	while (got < n) {
		uint32_t a = __atomic_fetch_add(&p->alloc, 1, __ATOMIC_RELAXED);

		if (a >= p->max_alloc) {
			__atomic_fetch_sub(&p->alloc, 1, __ATOMIC_RELAXED);
			break;
		}
		if (xq_pop(seg, &seg->hdr->pool, reqs + got, 1, XW_HELD, portno) != 1) {
			__atomic_fetch_sub(&p->alloc, 1, __ATOMIC_RELAXED);
			break;
		}
		reqs[got]->alloc_port = portno;
		reqs[got]->alloc_gen = p->gen;
		got++;
	}
	if (got == 0) {
		if (__atomic_load_n(&p->alloc, __ATOMIC_RELAXED) >= p->max_alloc)
			return xerr(ENOBUFS, "port %d has all its %u requests in use", portno,
				    p->max_alloc);
		return xerr(ENOBUFS, "segment %s has no free requests (%u in all)", seg->name,
			    seg->hdr->nr_reqs);
	}
	return got;
}

/* Put back requests a get could not give a buffer, keeping the heap's error. */
static int give_back(struct xseg *seg, int portno, struct xseg_request **reqs, int n)
{
	int e = errno;
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", xseg_errmsg());
	for (int i = 0; i < n; i++) {
		reqs[i]->path_len = 0;
		xseg_put_request(seg, portno, reqs[i]);
	}
	return xerr(e, "%s", msg);
}

int xseg_get_requests(struct xseg *seg, int portno, uint64_t datalen,
		      struct xseg_request **reqs, int n)
{
	struct xport *p = bound_port(seg, portno);
	int got, ok;

	if (!p)
		return -1;
	if (datalen > seg->hdr->max_data)
		return heap_alloc(seg, NULL, datalen);   /* reports EMSGSIZE */
	got = take_reqs(seg, portno, p, reqs, n);
	if (got < 0)
		return -1;
	for (ok = 0; ok < got && heap_alloc(seg, reqs[ok], datalen) == 0; ok++)
		reset(reqs[ok], portno, datalen);
	if (ok < got)
		give_back(seg, portno, reqs + ok, got - ok);
	return ok ? ok : -1;
}

/* Name the target and size the data of a request in hand. */
int xseg_prep_request(struct xseg *seg, struct xseg_request *req, const char *target,
		      uint32_t targetlen, uint64_t datalen)
{
	if (xseg_set_target(req, target, targetlen))
		return -1;
	return xseg_resize_data(seg, req, datalen);
}

struct xseg_request *xseg_get_request(struct xseg *seg, int portno, uint64_t datalen)
{
	struct xseg_request *r;

	return xseg_get_requests(seg, portno, datalen, &r, 1) == 1 ? r : NULL;
}

static int held_by(struct xseg *seg, struct xseg_request *r, int portno, const char *what)
{
	if ((r->where != XW_HELD && r->where != XW_SERVING) || r->holder != (uint32_t)portno)
		return xerr(EINVAL, "%s: request %u is not held by port %d of segment %s "
			    "(where %u, holder %u)", what, r->idx, portno, seg->name, r->where,
			    r->holder);
	return 0;
}

static int own_alloc(struct xport *p, struct xseg_request *r, int portno)
{
	return r->alloc_port == portno && r->alloc_gen == p->gen && p->state == PORT_BOUND;
}

/* Back to the port's free queue (kept with its buffer) or, if the request
 * came from another port's allocation, to the pool. */
int xseg_put_requests(struct xseg *seg, int portno, struct xseg_request **reqs, int n)
{
	struct xport *p = port_get(seg, portno);
	int i, mine = 0;

	if (!p)
		return -1;
	for (i = 0; i < n; i++) {
		if (held_by(seg, reqs[i], portno, "put"))
			return -1;
		if (reqs[i]->where == XW_SERVING)   /* someone waits for its reply */
			return xerr(EINVAL, "put: request %u is being served by port %d; "
				    "respond to it instead", reqs[i]->idx, portno);
		mine += own_alloc(p, reqs[i], portno);
	}
	if (mine) {
		xq_lock(seg, &p->freeq);
		for (i = 0; i < n; i++)
			if (own_alloc(p, reqs[i], portno))
				xq_push_locked(seg, &p->freeq, reqs[i]);
		xq_unlock(&p->freeq);
	}
	for (i = 0; mine < n && i < n; i++)
		if (!own_alloc(p, reqs[i], portno))
			req_to_pool(seg, reqs[i]);
	return 0;
}

int xseg_put_request(struct xseg *seg, int portno, struct xseg_request *req)
{
	return xseg_put_requests(seg, portno, &req, 1);
}

static void push_hop(struct xseg *seg, int src, struct xseg_request *r)
{
	r->path[r->path_len].port = src;
	r->path[r->path_len].gen = seg->ports[src].gen;
	r->path_len++;
}

int xseg_submit_batch(struct xseg *seg, int src, int dst, struct xseg_request **reqs, int n)
{
	struct xport *sp = bound_port(seg, src), *dp = port_get(seg, dst);
	int i;

	if (!sp || !dp)
		return -1;
	for (i = 0; i < n; i++) {
		if (held_by(seg, reqs[i], src, "submit"))
			return -1;
		if (reqs[i]->path_len >= XSEG_MAX_PATH)
			return xerr(EMLINK, "request %u already went through %d ports",
				    reqs[i]->idx, XSEG_MAX_PATH);
	}
	xq_lock(seg, &dp->reqq);
	if (dp->state != PORT_BOUND) {
		xq_unlock(&dp->reqq);
		return xerr(ECONNREFUSED, "port %d of segment %s is not bound: no peer to "
			    "serve the request", dst, seg->name);
	}
	for (i = 0; i < n; i++) {
		push_hop(seg, src, reqs[i]);
		reqs[i]->dst = dst;
		xq_push_locked(seg, &dp->reqq, reqs[i]);
	}
	xq_unlock(&dp->reqq);
	__atomic_fetch_add(&sp->submitted, n, __ATOMIC_RELAXED);
	port_wake(seg, dp);
	return n;
}

int xseg_submit(struct xseg *seg, int src, int dst, struct xseg_request *req)
{
	return xseg_submit_batch(seg, src, dst, &req, 1) == 1 ? 0 : -1;
}

int xseg_accept(struct xseg *seg, int portno, struct xseg_request **reqs, int max)
{
	struct xport *p = port_get(seg, portno);
	int n;

	if (!p)
		return -1;
	n = xq_pop(seg, &p->reqq, reqs, max, XW_SERVING, portno);
	if (n)
		__atomic_fetch_add(&p->accepted, n, __ATOMIC_RELAXED);
	return n;
}

int xseg_receive(struct xseg *seg, int portno, struct xseg_request **reqs, int max)
{
	struct xport *p = port_get(seg, portno);
	int n;

	if (!p)
		return -1;
	n = xq_pop(seg, &p->replyq, reqs, max, XW_HELD, portno);
	for (int i = 0; i < n; i++) {
		struct xseg_request *r = reqs[i];

		r->path_len--;   /* our own hop; what is left are our requesters */
		if (r->path_len)
			r->where = XW_SERVING;
	}
	if (n)
		__atomic_fetch_add(&p->received, n, __ATOMIC_RELAXED);
	return n;
}

/* Is hop `h` still the port that submitted?  (Re-bound ports are new ones.) */
static int hop_live(struct xport *p, const struct xseg_hop *h)
{
	return p->state == PORT_BOUND && p->gen == h->gen;
}

/* Send a reply to the last hop of its path; hops whose port died or was
 * re-bound are skipped (the request is failed past them), and a request
 * nobody waits for any more goes back to the pool. */
static void route_reply(struct xseg *seg, struct xseg_request *r)
{
	while (r->path_len) {
		struct xseg_hop *h = &r->path[r->path_len - 1];
		struct xport *p = &seg->ports[h->port];

		xq_lock(seg, &p->replyq);
		if (hop_live(p, h)) {
			xq_push_locked(seg, &p->replyq, r);
			xq_unlock(&p->replyq);
			port_wake(seg, p);
			return;
		}
		xq_unlock(&p->replyq);
		r->path_len--;
		if (r->path_len) {
			r->state = XS_FAILED;   /* a forwarder died with it */
			r->err = ECONNRESET;
		}
	}
	req_to_pool(seg, r);
}

void req_fail_back(struct xseg *seg, struct xseg_request *req, int err)
{
	req->state = XS_FAILED;
	req->err = err;
	route_reply(seg, req);
}

static int respond_one(int portno, struct xport *p, struct xseg_request *r)
{
	if (r->where != XW_SERVING || r->holder != (uint32_t)portno || r->path_len == 0)
		return xerr(EINVAL, "respond: request %u is not being served by port %d",
			    r->idx, portno);
	if (r->state == 0)
		r->state = r->err ? XS_FAILED : XS_SERVED;
	if (r->state == XS_FAILED) {
		r->err = r->err ? r->err : EIO;
		__atomic_fetch_add(&p->failed_back, 1, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&p->responded, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Consecutive replies to the same live port share one lock and one wakeup. */
int xseg_respond_batch(struct xseg *seg, int portno, struct xseg_request **reqs, int n)
{
	struct xport *p = port_get(seg, portno), *to = NULL;
	int i;

	if (!p)
		return -1;
	for (i = 0; i < n; i++)
		if (respond_one(portno, p, reqs[i]))
			return i ? i : -1;
	for (i = 0; i < n; i++) {
		struct xseg_request *r = reqs[i];
		struct xseg_hop *h = &r->path[r->path_len - 1];
		struct xport *q = &seg->ports[h->port];

		if (q != to) {
			if (to) {
				xq_unlock(&to->replyq);
				port_wake(seg, to);
			}
			to = q;
			xq_lock(seg, &to->replyq);
		}
		if (hop_live(q, h)) {
			xq_push_locked(seg, &q->replyq, r);
		} else {
			xq_unlock(&to->replyq);
			to = NULL;
			route_reply(seg, r);
		}
	}
	if (to) {
		xq_unlock(&to->replyq);
		port_wake(seg, to);
	}
	return n;
}

int xseg_respond(struct xseg *seg, int portno, struct xseg_request *req)
{
	return xseg_respond_batch(seg, portno, &req, 1) == 1 ? 0 : -1;
}

int xseg_fail(struct xseg *seg, int portno, struct xseg_request *req, int err)
{
	req->state = XS_FAILED;
	req->err = err ? err : EIO;
	return xseg_respond(seg, portno, req);
}
