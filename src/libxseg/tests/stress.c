/* Multi-process stress: P producer and C consumer processes, N requests in all.
 * Every request is answered exactly once and its data comes back intact.
 *
 *   xseg-stress [-p PRODUCERS] [-c CONSUMERS] [-n TOTAL] [-w WINDOW] [-s BYTES] [-k KILLS]
 *
 * With -k, the main process kills a random consumer with SIGKILL KILLS times at
 * random moments and starts it again: requests it held come back failed
 * (ECONNRESET), the rest are served, each still answered exactly once, and
 * the producers never hang.  With -K, producer 1 is killed too, at a random
 * moment: the others finish, and every request it had comes back to the pool.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include "testutil.h"

#define CPORT0 32          /* consumers bind 32, 33, ... */
#define BATCH 32

static int window = 128, dsize = 64, kills, kill_producer;
static long nr_failed;

static uint8_t pattern(int src, uint64_t seq, int i)
{
	uint64_t x = (seq * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)src << 56) ^ (uint64_t)i;

	return (uint8_t)(x ^ (x >> 29));
}

static int consumer(struct xseg *seg, int port)
{
	struct xseg_request *r[BATCH];
	int stop = 0;

	CHECK(xseg_bind(seg, port, "stress-consumer", 0) == port);
	while (!stop) {
		int n = xseg_accept(seg, port, r, BATCH);

		if (n == 0) {
			xseg_wait_work(seg, port, 1000);
			continue;
		}
		for (int i = 0; i < n; i++) {
			uint8_t *d = (uint8_t *)xseg_req_data(seg, r[i]);

			if (r[i]->op == X_PING) {
				stop = 1;
				continue;
			}
			for (int k = 0; k < dsize; k++) {
				if (d[k] != pattern(r[i]->src, r[i]->offset, k)) {
					fprintf(stderr, "consumer %d: bad data in request %llu\n",
						port, (unsigned long long)r[i]->offset);
					return 1;
				}
				d[k] = ~d[k];
			}
			r[i]->serviced = r[i]->size;
		}
		CHECK(xseg_respond_batch(seg, port, r, n) == n);
	}
	return 0;
}

static void fill(struct xseg *seg, struct xseg_request *r, int port, uint64_t seq)
{
	uint8_t *d = (uint8_t *)xseg_req_data(seg, r);

	r->op = X_WRITE;
	r->offset = seq;
	r->size = dsize;
	for (int k = 0; k < dsize; k++)
		d[k] = pattern(port, seq, k);
}

static int check_reply(struct xseg *seg, struct xseg_request *r, int port, uint8_t *seen,
		       uint64_t quota)
{
	uint8_t *d = (uint8_t *)xseg_req_data(seg, r);
	uint64_t seq = r->offset;

	if (kills && r->state == XS_FAILED && r->err == ECONNRESET && seq < quota &&
	    !seen[seq]++) {
		nr_failed++;
		return 0;
	}
	if (r->state != XS_SERVED || r->serviced != (uint64_t)dsize || seq >= quota) {
		fprintf(stderr, "producer %d: bad reply (state %u, seq %llu)\n", port, r->state,
			(unsigned long long)seq);
		return -1;
	}
	if (seen[seq]++) {
		fprintf(stderr, "producer %d: request %llu answered twice\n", port,
			(unsigned long long)seq);
		return -1;
	}
	for (int k = 0; k < dsize; k++) {
		uint8_t want = pattern(port, seq, k) ^ 0xffu;

		if (d[k] != want) {
			fprintf(stderr, "producer %d: reply %llu corrupted\n", port,
				(unsigned long long)seq);
			return -1;
		}
	}
	return 0;
}

static int producer(struct xseg *seg, int port, uint64_t quota, int nr_cons)
{
	struct xseg_request *r[BATCH];
	uint8_t *seen = calloc(quota, 1);
	uint64_t sent = 0, done = 0;
	int inflight = 0, turn = port;

	CHECK(seen && xseg_bind(seg, port, "stress-producer", window) == port);
	while (done < quota) {
		int want = window - inflight;

		want = want > BATCH ? BATCH : want;
		if (quota - sent < (uint64_t)want)
			want = quota - sent;
		if (want > 0) {
			int n = xseg_get_requests(seg, port, dsize, r, want);

			CHECK(n > 0);
			for (int i = 0; i < n; i++)
				fill(seg, r[i], port, sent++);
			if (xseg_submit_batch(seg, port, CPORT0 + turn++ % nr_cons, r, n) != n) {
				/* the consumer is down: a failure the producer sees at once */
				CHECK(kills && errno == ECONNREFUSED);
				for (int i = 0; i < n; i++)
					CHECK(!seen[r[i]->offset]++);
				CHECK(xseg_put_requests(seg, port, r, n) == 0);
				nr_failed += n;
				done += n;
				continue;
			}
			inflight += n;
		}
		int n = xseg_receive(seg, port, r, BATCH);

		if (n == 0 && (want == 0 || inflight >= window)) {
			if (xseg_wait_work(seg, port, 200) == 1)
				xseg_check(seg);   /* idle: recover a dead consumer's port */
			continue;
		}
		for (int i = 0; i < n; i++)
			if (check_reply(seg, r[i], port, seen, quota))
				return 1;
		CHECK(xseg_put_requests(seg, port, r, n) == 0);
		inflight -= n;
		done += n;
	}
	for (uint64_t s = 0; s < quota; s++)
		CHECK(seen[s] == 1);
	if (kills)
		fprintf(stderr, "  producer %d: %ld of %llu requests failed back\n", port,
			nr_failed, (unsigned long long)quota);
	return 0;
}

static pid_t spawn(int (*fn)(struct xseg *, int, uint64_t, int), struct xseg *seg,
		   int port, uint64_t quota, int nr_cons)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0)
		_exit(fn(seg, port, quota, nr_cons));
	return pid;
}

static int consumer_main(struct xseg *seg, int port, uint64_t q, int c)
{
	(void)q;
	(void)c;
	return consumer(seg, port);
}

static void wait_bound(struct xseg *seg, int port)
{
	struct xseg_port_info pi;

	do {
		CHECK(xseg_port_info(seg, port, &pi) == 0);
		if (pi.bound != 1)
			usleep(1000);
	} while (pi.bound != 1);
}

static void stop_consumers(struct xseg *seg, int nr_cons)
{
	struct xseg_request *r;

	CHECK(xseg_bind(seg, 0, "stress-main", 0) == 0);
	for (int c = 0; c < nr_cons; c++) {
		r = xseg_get_request(seg, 0, 0);
		CHECK(r);
		r->op = X_PING;
		CHECK(xseg_submit(seg, 0, CPORT0 + c, r) == 0);
	}
	for (int got = 0; got < nr_cons;) {
		int n = xseg_receive(seg, 0, &r, 1);

		if (n) {
			CHECK(xseg_put_request(seg, 0, r) == 0);
			got++;
		} else {
			xseg_wait_work(seg, 0, 1000);
		}
	}
}

int main(int argc, char **argv)
{
	int np = 4, nc = 3, opt, failed = 0, st;
	long total = 1000000;
	pid_t pids[64];
	struct xseg *seg;
	struct xseg_info in;
	struct timespec t0, t1;

	while ((opt = getopt(argc, argv, "p:c:n:w:s:k:K")) != -1) {
		switch (opt) {
		case 'p': np = atoi(optarg); break;
		case 'c': nc = atoi(optarg); break;
		case 'n': total = atol(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 's': dsize = atoi(optarg); break;
		case 'k': kills = atoi(optarg); break;
		case 'K': kill_producer = 1; break;
		default: return 2;
		}
	}
	CHECK(np > 0 && nc > 0 && np + nc < 31 && total >= np && dsize > 0);
	alarm(240);   /* a lost wakeup must fail the test, not hang it */
	seg = tu_segment("stress", "0:64:64:12:8192");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int c = 0; c < nc; c++)
		pids[np + c] = spawn(consumer_main, seg, CPORT0 + c, 0, 0);
	for (int c = 0; c < nc; c++)   /* producers start once every consumer is bound */
		wait_bound(seg, CPORT0 + c);
	for (int p = 0; p < np; p++)
		pids[p] = spawn(producer, seg, 1 + p, total / np + (p < total % np), nc);
	srand(getpid());
	if (kill_producer) {
		usleep(1000 + rand() % 50000);
		kill(pids[0], SIGKILL);
	}
	for (int k = 0; k < kills; k++) {
		int c = rand() % nc;

		usleep(1000 + rand() % 20000);
		kill(pids[np + c], SIGKILL);
		waitpid(pids[np + c], NULL, 0);
		pids[np + c] = spawn(consumer_main, seg, CPORT0 + c, 0, 0);  /* re-binds */
	}
	for (int p = 0; p < np; p++) {
		waitpid(pids[p], &st, 0);
		if (!(p == 0 && kill_producer))
			failed |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	if (!failed)
		stop_consumers(seg, nc);
	for (int c = 0; c < nc; c++) {
		if (failed)
			kill(pids[np + c], SIGKILL);
		waitpid(pids[np + c], &st, 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!failed) {
		xseg_unbind(seg, 0);
		xseg_check(seg);   /* the children's ports: they exited, so recover them */
		xseg_info(seg, &in);
		CHECK(in.pool_free == in.nr_reqs && in.heap_free == in.heap_size);
	}
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("stress: %ld requests, %d producers%s, %d consumers, %d kills, %s in %.2fs "
	       "(%.0f/s)\n", total, np, kill_producer ? " (one killed)" : "", nc, kills, failed ? "FAILED" : "each answered once, data intact", s,
	       total / s);
	xseg_leave(seg);
	return failed;
}
