/* Routing: submit/accept/respond/receive, forwarding along a path, replies to
 * ports that went away, and wakeups between threads. */
#include <pthread.h>
#include "testutil.h"
#include "internal.h"

static void test_round_trip(struct xseg *seg)
{
	struct xseg_request *r, *got[4];

	r = xseg_get_request(seg, 1, 0);
	CHECK(r && xseg_prep_request(seg, r, "vol1", 4, 5) == 0 && r->datalen == 5);
	r->op = X_WRITE;
	r->offset = 4096;
	r->size = 5;
	r->flags = XF_FUA;
	memcpy(xseg_req_data(seg, r), "hello", 5);
	CHECK(xseg_pending(seg, 2) == 0);
	CHECK(xseg_submit(seg, 1, 2, r) == 0);
	CHECK(xseg_pending(seg, 2) == 1);
	CHECK(xseg_accept(seg, 2, got, 4) == 1 && got[0] == r);
	CHECK_ERR(xseg_put_request(seg, 2, r) < 0, EINVAL);   /* must respond, not put */
	CHECK(r->op == X_WRITE && r->src == 1 && r->dst == 2 && r->path_len == 1);
	CHECK(memcmp(xseg_req_data(seg, r), "hello", 5) == 0 && r->flags == XF_FUA);
	CHECK(memcmp(r->target, "vol1", 4) == 0 && r->targetlen == 4);
	CHECK_ERR(xseg_put_request(seg, 1, r) < 0, EINVAL);   /* not the requester's now */
	r->serviced = 5;
	CHECK(xseg_respond(seg, 2, r) == 0);
	CHECK_ERR(xseg_respond(seg, 2, r) < 0, EINVAL);       /* answered once */
	CHECK(xseg_accept(seg, 2, got, 4) == 0);
	CHECK(xseg_receive(seg, 1, got, 4) == 1 && got[0] == r);
	CHECK(r->state == XS_SERVED && r->serviced == 5 && r->err == 0 && r->path_len == 0);
	CHECK(xseg_put_request(seg, 1, r) == 0);
	/* a failure carries its errno back */
	r = xseg_get_request(seg, 1, 0);
	CHECK(r && xseg_submit(seg, 1, 2, r) == 0);
	CHECK(xseg_accept(seg, 2, got, 1) == 1 && xseg_fail(seg, 2, got[0], ENOENT) == 0);
	CHECK(xseg_receive(seg, 1, got, 1) == 1 && got[0]->state == XS_FAILED &&
	      got[0]->err == ENOENT);
	CHECK(xseg_put_request(seg, 1, got[0]) == 0);
}

/* 1 -> 2 -> 3: port 2 forwards the same request; the reply retraces the path. */
static void test_forward(struct xseg *seg)
{
	struct xseg_request *r = xseg_get_request(seg, 1, 0), *got[2];

	CHECK(r && xseg_submit(seg, 1, 2, r) == 0);
	CHECK(xseg_accept(seg, 2, got, 1) == 1);
	CHECK(xseg_submit(seg, 2, 3, r) == 0 && r->path_len == 2);
	CHECK(xseg_accept(seg, 3, got, 1) == 1 && xseg_respond(seg, 3, r) == 0);
	CHECK(xseg_receive(seg, 1, got, 1) == 0);           /* not yet: 2 gets it first */
	CHECK(xseg_receive(seg, 2, got, 1) == 1 && r->path_len == 1 && r->where == XW_SERVING);
	CHECK(xseg_respond(seg, 2, r) == 0);
	CHECK(xseg_receive(seg, 1, got, 1) == 1 && r->state == XS_SERVED);
	CHECK(xseg_put_request(seg, 1, r) == 0);
	/* the forwarder goes away: the reply skips it and arrives failed */
	CHECK(xseg_bind(seg, 4, "fwd", 0) == 4);
	r = xseg_get_request(seg, 1, 0);
	CHECK(r && xseg_submit(seg, 1, 4, r) == 0);
	CHECK(xseg_accept(seg, 4, got, 1) == 1 && xseg_submit(seg, 4, 3, r) == 0);
	CHECK(xseg_unbind(seg, 4) == 0);
	CHECK(xseg_accept(seg, 3, got, 1) == 1 && xseg_respond(seg, 3, r) == 0);
	CHECK(xseg_receive(seg, 1, got, 1) == 1 && r->state == XS_FAILED &&
	      r->err == ECONNRESET);
	CHECK(xseg_put_request(seg, 1, r) == 0);
}

/* The requester goes away: its request, still queued, comes back to the pool. */
static void test_orphan(struct xseg *seg)
{
	struct xseg_request *r, *got[1];
	struct xseg_info a, b;

	xseg_info(seg, &a);
	CHECK(xseg_bind(seg, 5, "short-lived", 0) == 5);
	r = xseg_get_request(seg, 5, 100);
	CHECK(r && xseg_submit(seg, 5, 2, r) == 0);
	CHECK(xseg_unbind(seg, 5) == 0);
	CHECK(xseg_accept(seg, 2, got, 1) == 1 && xseg_respond(seg, 2, r) == 0);
	xseg_info(seg, &b);
	CHECK(a.pool_free == b.pool_free && a.heap_free == b.heap_free);
}

static struct xseg *tseg;
static void *sleeper(void *arg)
{
	struct xseg_request *got[1];
	long n = 0;

	(void)arg;
	while (n < 1000) {
		if (xseg_accept(tseg, 3, got, 1) == 1) {
			xseg_respond(tseg, 3, got[0]);
			n++;
			continue;
		}
		xseg_wait_work(tseg, 3, 5000);   /* never needs the timeout */
	}
	return NULL;
}

static void test_wakeups(struct xseg *seg)
{
	pthread_t t;
	struct xseg_request *r, *got[1];

	tseg = seg;
	pthread_create(&t, NULL, sleeper, NULL);
	for (int i = 0; i < 1000; i++) {
		r = xseg_get_request(seg, 1, 0);
		CHECK(r && xseg_submit(seg, 1, 3, r) == 0);
		while (xseg_receive(seg, 1, got, 1) == 0)
			CHECK(xseg_wait_work(seg, 1, 5000) == 0);   /* 0: woken, not timed out */
		CHECK(got[0] == r && xseg_put_request(seg, 1, r) == 0);
	}
	pthread_join(t, NULL);
}

int main(void)
{
	struct xseg *seg = tu_segment("routing", "2:8:4:12:64");
	struct xseg_info in;

	for (int p = 1; p <= 3; p++)
		CHECK(xseg_bind(seg, p, "t", 0) == p);
	test_round_trip(seg);
	test_forward(seg);
	test_orphan(seg);
	test_wakeups(seg);
	for (int p = 1; p <= 3; p++)
		CHECK(xseg_unbind(seg, p) == 0);
	xseg_info(seg, &in);
	CHECK(in.pool_free == in.nr_reqs);
	xseg_leave(seg);
	return 0;
}
