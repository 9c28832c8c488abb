/* xseg benchmarks: ping-pong throughput and wake-up latency between processes.
 *
 *   xseg-bench pingpong [-n N] [-b BATCH]   fork a server, N requests, BATCH in flight
 *   xseg-bench latency  [-n N] [-i USEC] [-g SEG -p PORT]   one request at a time,
 *                                           the server (ours, or a peer on SEG) asleep
 *   xseg-bench client -g SEG -p PORT [-n N] [-b BATCH] [-s BYTES]   load an existing peer
 *   xseg-bench server -g SEG -p PORT        echo on an existing segment until a PING
 *
 * Each prints "RESULT <name> <value> <unit>" lines for bench/bench_xseg.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "xseg.h"

#define MAXB 1024
#define CPORT 1
#define SPORT 2

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "xseg-bench: %s: %s\n", what, xseg_errmsg());
	exit(1);
}

/* Serve until a PING arrives: accept a batch, respond to it as one batch. */
static void serve(struct xseg *seg, int port)
{
	struct xseg_request *r[MAXB];

	if (xseg_bind(seg, port, "bench-server", 0) != port)
		die("bind server");
	for (;;) {
		int n = xseg_accept(seg, port, r, MAXB), stop = 0;

		if (n == 0) {
			xseg_wait_work(seg, port, -1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			stop |= r[i]->op == X_PING;
			r[i]->serviced = r[i]->size;
		}
		xseg_respond_batch(seg, port, r, n);
		if (stop)
			return;
	}
}

/* Keep `batch` requests in flight until n are answered; returns requests/s. */
static double drive(struct xseg *seg, int dst, long n, int batch, uint64_t dsize)
{
	struct xseg_request *r[MAXB];
	long sent = 0, done = 0;
	int inflight = 0;
	double t0 = now();

	while (done < n) {
		int want = batch - inflight;

		if (want > n - sent)
			want = n - sent;
		if (want > 0) {
			int got = xseg_get_requests(seg, CPORT, dsize, r, want);

			if (got <= 0)
				die("get");
			for (int i = 0; i < got; i++) {
				r[i]->op = X_WRITE;
				r[i]->size = dsize;
				xseg_set_target(r[i], "bench", 5);
			}
			if (xseg_submit_batch(seg, CPORT, dst, r, got) != got)
				die("submit");
			sent += got;
			inflight += got;
		}
		int m = xseg_receive(seg, CPORT, r, MAXB);

		if (m == 0) {
			if (xseg_wait_work(seg, CPORT, 5000) == 1)
				die("no reply in 5 s");
			continue;
		}
		for (int i = 0; i < m; i++)
			if (r[i]->state != XS_SERVED) {   /* a benchmark of failures is no use */
				fprintf(stderr, "xseg-bench: request failed: errno %d\n", r[i]->err);
				exit(1);
			}
		xseg_put_requests(seg, CPORT, r, m);
		inflight -= m;
		done += m;
	}
	return n / (now() - t0);
}

static void stop_server(struct xseg *seg, int dst)
{
	struct xseg_request *r = xseg_get_request(seg, CPORT, 0);

	if (!r)
		die("get");
	r->op = X_PING;
	if (xseg_submit(seg, CPORT, dst, r))
		die("submit ping");
	while (xseg_receive(seg, CPORT, &r, 1) == 0)
		xseg_wait_work(seg, CPORT, 1000);
	xseg_put_request(seg, CPORT, r);
}

static struct xseg *private_segment(char *name, size_t len)
{
	char spec[128];
	struct xseg *seg;

	snprintf(name, len, "xsegbench-%d", getpid());
	snprintf(spec, sizeof(spec), "posix:%s:4:8:64:12:4096", name);
	seg = xseg_create(spec);
	if (!seg)
		die("create");
	return seg;
}

static pid_t fork_server(struct xseg *seg)
{
	pid_t pid = fork();

	if (pid == 0) {
		serve(seg, SPORT);
		_exit(0);
	}
	while (1) {   /* wait until it is bound */
		struct xseg_port_info pi;

		xseg_port_info(seg, SPORT, &pi);
		if (pi.bound == 1)
			return pid;
		usleep(1000);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One request at a time, after a pause long enough for the server to sleep. */
static void latency(struct xseg *seg, int dst, long n, int pause_us)
{
	double *lat = malloc(n * sizeof(double));
	struct xseg_request *r;

	for (long i = 0; i < n; i++) {
		usleep(pause_us);
		double t0 = now();

		r = xseg_get_request(seg, CPORT, 0);
		if (!r)
			die("get");
		r->op = X_INFO;   /* not PING: that stops the server */
		xseg_set_target(r, "lat", 3);
		if (xseg_submit(seg, CPORT, dst, r))
			die("submit");
		while (xseg_receive(seg, CPORT, &r, 1) == 0)
			if (xseg_wait_work(seg, CPORT, 5000) == 1)
				die("no reply in 5 s");
		lat[i] = (now() - t0) * 1e6;
		if (r->state != XS_SERVED) {
			fprintf(stderr, "xseg-bench: request failed: errno %d\n", r->err);
			exit(1);
		}
		xseg_put_request(seg, CPORT, r);
	}
	qsort(lat, n, sizeof(double), cmp_double);
	printf("RESULT wake_latency_p50 %.1f us\n", lat[n / 2]);
	printf("RESULT wake_latency_p99 %.1f us\n", lat[n * 99 / 100]);
	printf("RESULT wake_latency_max %.1f us\n", lat[n - 1]);
	free(lat);
}

int main(int argc, char **argv)
{
	long n = 1000000;
	int batch = 256, opt, port = SPORT, pause_us = 2000;
	uint64_t dsize = 0;
	const char *mode = argc > 1 ? argv[1] : "", *segname = NULL;
	char name[64];
	struct xseg *seg;

	optind = 2;
	while ((opt = getopt(argc, argv, "n:b:g:p:s:i:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'b': batch = atoi(optarg) > MAXB ? MAXB : atoi(optarg); break;
		case 'g': segname = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 's': dsize = atol(optarg); break;
		case 'i': pause_us = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!strcmp(mode, "client")) {
		if (!segname || !(seg = xseg_join(segname)))
			die("join (-g SEGMENT)");
		if (xseg_bind(seg, CPORT, "bench-client", 0) != CPORT)
			die("bind client");
		printf("RESULT client_b%d %.0f req/s\n", batch, drive(seg, port, n, batch, dsize));
		stop_server(seg, port);
		xseg_unbind(seg, CPORT);
		return 0;
	}
	if (!strcmp(mode, "latency") && segname) {
		if (!(seg = xseg_join(segname)) || xseg_bind(seg, CPORT, "bench-client", 0) < 0)
			die("join/bind");
		latency(seg, port, n, pause_us);
		xseg_unbind(seg, CPORT);
		return 0;
	}
	if (!strcmp(mode, "server")) {
		if (!segname || !(seg = xseg_join(segname)))
			die("join (-g SEGMENT)");
		serve(seg, port);
		xseg_unbind(seg, port);
		return 0;
	}
	if (strcmp(mode, "pingpong") && strcmp(mode, "latency")) {
		fprintf(stderr, "usage: xseg-bench pingpong|latency|client|server [options]\n");
		return 2;
	}
	seg = private_segment(name, sizeof(name));
	pid_t pid = fork_server(seg);

	if (xseg_bind(seg, CPORT, "bench-client", 0) != CPORT)
		die("bind client");
	if (!strcmp(mode, "pingpong"))
		printf("RESULT pingpong_b%d %.0f req/s\n", batch, drive(seg, SPORT, n, batch, dsize));
	else
		latency(seg, SPORT, n, pause_us);
	stop_server(seg, SPORT);
	waitpid(pid, NULL, 0);
	xseg_destroy(name);
	return 0;
}
