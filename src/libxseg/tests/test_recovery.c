/* Recovery: processes killed with -9 while serving, requesting, or holding
 * queue and heap locks; survivors see failures and the port is re-bound. */
#include <signal.h>
#include <sys/wait.h>
#include "testutil.h"
#include "internal.h"

static void killwait(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A server accepts some requests and dies holding them. */
static void test_dead_server(struct xseg *seg)
{
	struct xseg_request *r[32], *got[32];
	int fds[2], n = 0;
	char c;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		CHECK(xseg_bind(seg, 2, "doomed", 0) == 2);
		CHECK(write(fds[1], "b", 1) == 1);
		while (n < 10)
			n += xseg_accept(seg, 2, got, 10 - n);
		CHECK(write(fds[1], "a", 1) == 1);
		pause();
	}
	CHECK(read(fds[0], &c, 1) == 1);
	CHECK(xseg_get_requests(seg, 1, 64, r, 32) == 32);
	CHECK(xseg_submit_batch(seg, 1, 2, r, 32) == 32);
	CHECK(read(fds[0], &c, 1) == 1);   /* 10 accepted, 22 still queued */
	killwait(pid);
	CHECK(xseg_check(seg) == 1);
	CHECK(xseg_receive(seg, 1, got, 32) == 32);
	for (int i = 0; i < 32; i++)
		CHECK(got[i]->state == XS_FAILED && got[i]->err == ECONNRESET);
	CHECK(xseg_put_requests(seg, 1, got, 32) == 0);
	CHECK(xseg_check(seg) == 0);
	CHECK(xseg_bind(seg, 2, "restarted", 0) == 2);   /* the port is usable again */
	CHECK(xseg_unbind(seg, 2) == 0);
	close(fds[0]);
	close(fds[1]);
}

/* A requester dies with requests queued at a live server and in hand. */
static void test_dead_requester(struct xseg *seg)
{
	struct xseg_request *got[16];
	struct xseg_info before, after;
	int fds[2];
	char c;
	pid_t pid;

	xseg_info(seg, &before);
	CHECK(pipe(fds) == 0 && xseg_bind(seg, 2, "server", 0) == 2);
	pid = fork();
	if (pid == 0) {
		struct xseg_request *r[16];

		CHECK(xseg_bind(seg, 3, "client", 0) == 3);
		CHECK(xseg_get_requests(seg, 3, 1000, r, 16) == 16);
		CHECK(xseg_submit_batch(seg, 3, 2, r, 8) == 8);
		CHECK(write(fds[1], "s", 1) == 1);
		pause();
	}
	CHECK(read(fds[0], &c, 1) == 1);
	killwait(pid);
	CHECK(xseg_accept(seg, 2, got, 16) == 8);
	CHECK(xseg_respond_batch(seg, 2, got, 4) == 4);   /* to the dead, unrecovered port */
	CHECK(xseg_check(seg) == 1);
	CHECK(xseg_respond_batch(seg, 2, got + 4, 4) == 4);   /* to the recovered port */
	CHECK(xseg_unbind(seg, 2) == 0);
	xseg_info(seg, &after);
	CHECK(after.pool_free == before.pool_free && after.heap_free == before.heap_free);
	close(fds[0]);
	close(fds[1]);
}

/* Processes die holding the pool, a queue and the heap lock. */
static void test_dead_lockers(struct xseg *seg)
{
	struct xhdr *h = xseg_base(seg);
	struct xport *ports = (struct xport *)((char *)h + h->ports_off);
	pthread_mutex_t *locks[] = {&h->pool.lock, &ports[1].replyq.lock, &ports[1].freeq.lock,
				    &h->heap_lock, &h->recovery_lock};
	struct xseg_request *r, *got[1];

	for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]); i++) {
		pid_t pid = fork();

		if (pid == 0) {
			pthread_mutex_lock(locks[i]);
			raise(SIGKILL);
		}
		waitpid(pid, NULL, 0);
	}
	CHECK(xseg_bind(seg, 2, "server", 0) == 2);
	r = xseg_get_request(seg, 1, 1 << 20);   /* pool, freeq and heap locks */
	CHECK(r && xseg_submit(seg, 1, 2, r) == 0);
	CHECK(xseg_accept(seg, 2, got, 1) == 1 && xseg_respond(seg, 2, r) == 0);
	CHECK(xseg_receive(seg, 1, got, 1) == 1 && got[0] == r);
	CHECK(xseg_put_request(seg, 1, r) == 0);
	CHECK(xseg_unbind(seg, 2) == 0);         /* the recovery lock */
}

int main(void)
{
	struct xseg *seg = tu_segment("recovery", "2:8:8:12:128");
	struct xseg_info in;

	CHECK(xseg_bind(seg, 1, "survivor", 0) == 1);
	test_dead_server(seg);
	test_dead_requester(seg);
	test_dead_lockers(seg);
	CHECK(xseg_unbind(seg, 1) == 0);
	xseg_info(seg, &in);
	CHECK(in.pool_free == in.nr_reqs && in.heap_free == in.heap_size);
	xseg_leave(seg);
	return 0;
}
