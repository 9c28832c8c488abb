/* Queues and allocation: get/put, free queues, pool limits, the heap. */
#include "testutil.h"
#include "internal.h"
#include <sys/wait.h>

static void test_get_put(struct xseg *seg)
{
	struct xseg_request *r[16];
	struct xseg_port_info pi;

	CHECK(xseg_bind(seg, 1, "t", 8) == 1);
	CHECK(xseg_get_requests(seg, 1, 100, r, 16) == 8);   /* limited to 8 */
	CHECK_ERR(!xseg_get_request(seg, 1, 100), ENOBUFS);
	for (int i = 0; i < 8; i++) {
		CHECK(r[i]->datalen == 100 && r[i]->buf_cap >= 100);
		memset(xseg_req_data(seg, r[i]), i, 100);
	}
	CHECK(xseg_port_info(seg, 1, &pi) == 0 && pi.alloc == 8);
	CHECK(xseg_put_requests(seg, 1, r, 8) == 0);
	CHECK_ERR(xseg_put_request(seg, 1, r[0]) < 0, EINVAL);   /* double put */
	CHECK(xseg_port_info(seg, 1, &pi) == 0 && pi.free_q == 8 && pi.alloc == 8);
	/* the free queue hands the same requests (and buffers) back */
	CHECK(xseg_get_requests(seg, 1, 50, r, 8) == 8);
	CHECK(xseg_put_requests(seg, 1, r, 8) == 0);
	CHECK(xseg_unbind(seg, 1) == 0);
}

static void test_heap(struct xseg *seg)
{
	struct xseg_info in;
	struct xseg_request *a, *b;
	uint64_t before;

	CHECK(xseg_bind(seg, 2, "t", 0) == 2);
	xseg_info(seg, &in);
	before = in.heap_free;
	CHECK_ERR(!xseg_get_request(seg, 2, in.max_data + 1), EMSGSIZE);
	a = xseg_get_request(seg, 2, in.max_data);
	CHECK(a);
	b = xseg_get_request(seg, 2, in.max_data);
	CHECK(b);
	CHECK_ERR(!xseg_get_request(seg, 2, in.max_data), ENOBUFS);   /* heap full */
	CHECK(xseg_req_data(seg, a) != xseg_req_data(seg, b));
	CHECK(xseg_resize_data(seg, a, 10) == 0);   /* shrinking frees the big one */
	CHECK(xseg_put_request(seg, 2, a) == 0 && xseg_put_request(seg, 2, b) == 0);
	/* b idles in port 2's free queue with its buffer; port 5 needs the room */
	CHECK(xseg_bind(seg, 5, "t", 0) == 5);
	a = xseg_get_request(seg, 5, in.max_data);
	b = xseg_get_request(seg, 5, in.max_data);
	CHECK(a && b);
	CHECK(xseg_put_request(seg, 5, a) == 0 && xseg_put_request(seg, 5, b) == 0);
	CHECK(xseg_unbind(seg, 5) == 0);
	CHECK(xseg_unbind(seg, 2) == 0);            /* free queue back to the pool */
	xseg_info(seg, &in);
	CHECK(in.heap_free == before && in.pool_free == in.nr_reqs);
}

static void test_fsck(struct xseg *seg)
{
	struct xseg_request *r[4];
	struct xq *q = &((struct xport *)((char *)xseg_base(seg) +
			 ((struct xhdr *)xseg_base(seg))->ports_off))[3].reqq;
	pid_t pid;

	CHECK(xseg_bind(seg, 3, "t", 0) == 3 && xseg_bind(seg, 4, "t", 0) == 4);
	CHECK(xseg_get_requests(seg, 4, 8, r, 4) == 4);
	CHECK(xseg_submit_batch(seg, 4, 3, r, 2) == 2);
	/* a child takes the queue lock, half-pushes a request, and dies */
	pid = fork();
	if (pid == 0) {
		xq_lock(seg, q);
		r[2]->where = XW_REQQ;
		r[2]->holder = 3;
		_exit(0);
	}
	CHECK(pid > 0);
	waitpid(pid, NULL, 0);
	CHECK(xseg_accept(seg, 3, r, 4) == 3);   /* the repaired queue has all three */
	CHECK(xseg_respond_batch(seg, 3, r, 2) == 2);
	CHECK(xseg_unbind(seg, 3) == 0 && xseg_unbind(seg, 4) == 0);
}

int main(void)
{
	struct xseg *seg = tu_segment("queues", "4:16:4:12:64");
	struct xseg_info in;

	test_get_put(seg);
	test_heap(seg);
	test_fsck(seg);
	xseg_info(seg, &in);
	CHECK(in.pool_free == in.nr_reqs);   /* nothing leaked */
	xseg_leave(seg);
	return 0;
}
