/* Ports: bind/unbind, owners and their liveness, signals and waiting. */
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"

struct xport *port_get(struct xseg *seg, int portno)
{
	if (portno < 0 || (uint32_t)portno >= seg->hdr->nr_ports)
		return xerr_null(EINVAL, "port %d is out of range (segment %s has ports "
				 "0-%u)", portno, seg->name, seg->hdr->nr_ports - 1);
	return &seg->ports[portno];
}

/* Field 22 of /proc/PID/stat (start time in ticks); 0 if gone or a zombie. */
uint64_t proc_start_time(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');     /* the command name may hold spaces */
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
		   "%*d %*d %*d %*d %llu", &start) != 1)
		return 0;
	return start;
}

int pid_alive(int32_t pid, uint64_t start)
{
	if (pid <= 0)
		return 0;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	/* a zombie or a new process that got the pid is not the owner */
	return proc_start_time(pid) == start;
}

static void lock_state(struct xseg *seg, struct xport *p)
{
	xq_lock(seg, &p->reqq);     /* order: reqq, then replyq */
	xq_lock(seg, &p->replyq);
}

static void unlock_state(struct xport *p)
{
	xq_unlock(&p->replyq);
	xq_unlock(&p->reqq);
}

/* Try to take port i; 0 on success, -1 with errno EADDRINUSE if held. */
static int take(struct xseg *seg, uint32_t i, const char *owner, uint32_t max_alloc)
{
	struct xport *p = &seg->ports[i];
	int32_t pid = getpid();

	for (int tries = 0; tries < 3; tries++) {
		lock_state(seg, p);
		if (p->state == PORT_FREE) {
			p->gen++;
			p->owner_pid = pid;
			p->owner_start = proc_start_time(pid);
			snprintf(p->owner, sizeof(p->owner), "%s", owner ? owner : "");
			p->max_alloc = max_alloc ? max_alloc : seg->hdr->nr_reqs;
			p->signal_port = i;
			atomic_store(&p->sig.waiters, 0);
			p->submitted = p->accepted = p->responded = p->received = 0;
			p->failed_back = 0;
			__atomic_store_n(&p->state, PORT_BOUND, __ATOMIC_RELEASE);
			unlock_state(p);
			return 0;
		}
		int32_t opid = p->owner_pid;
		uint64_t ostart = p->owner_start;
		uint32_t state = p->state;
		char who[XSEG_OWNERLEN];

		snprintf(who, sizeof(who), "%s", p->owner);
		unlock_state(p);
		if (state == PORT_BOUND && pid_alive(opid, ostart))
			return xerr(EADDRINUSE, "port %u of segment %s is bound by pid %d (%s)",
				    i, seg->name, opid, who[0] ? who : "unnamed");
		recover_port(seg, i, 0);   /* dead owner or an unfinished recovery */
	}
	return xerr(EAGAIN, "port %u of segment %s keeps changing hands", i, seg->name);
}

int xseg_bind(struct xseg *seg, int portno, const char *owner, uint32_t max_alloc)
{
	struct xhdr *h = seg->hdr;

	if (portno == XSEG_ANYPORT) {
		for (uint32_t i = h->nr_ports - h->dynports; i < h->nr_ports; i++)
			if (take(seg, i, owner, max_alloc) == 0)
				return i;
		return xerr(EADDRNOTAVAIL, "segment %s has no free dynamic port (%u of them)",
			    seg->name, h->dynports);
	}
	if (!port_get(seg, portno))
		return -1;
	return take(seg, portno, owner, max_alloc) ? -1 : portno;
}

int xseg_unbind(struct xseg *seg, int portno)
{
	struct xport *p = port_get(seg, portno);

	if (!p)
		return -1;
	if (p->state != PORT_BOUND || p->owner_pid != getpid())
		return xerr(EPERM, "port %d of segment %s is not bound by this process",
			    portno, seg->name);
	recover_port(seg, portno, 1);
	return 0;
}

int xseg_share_signal(struct xseg *seg, int portno, int leader)
{
	struct xport *p = port_get(seg, portno);

	if (!p || !port_get(seg, leader))
		return -1;
	p->signal_port = leader;
	return 0;
}

int xseg_port_info(struct xseg *seg, int portno, struct xseg_port_info *in)
{
	struct xport *p = port_get(seg, portno);

	if (!p)
		return -1;
	memset(in, 0, sizeof(*in));
	in->portno = portno;
	in->bound = p->state;
	in->dynamic = p->dynamic;
	in->gen = p->gen;
	in->owner_pid = p->state ? p->owner_pid : 0;
	in->owner_alive = p->state == PORT_BOUND && pid_alive(p->owner_pid, p->owner_start);
	if (p->state)
		snprintf(in->owner, sizeof(in->owner), "%s", p->owner);
	in->free_q = xq_count(&p->freeq);
	in->req_q = xq_count(&p->reqq);
	in->reply_q = xq_count(&p->replyq);
	in->alloc = __atomic_load_n(&p->alloc, __ATOMIC_RELAXED);
	in->max_alloc = p->max_alloc;
	in->signal_port = p->signal_port;
	in->submitted = p->submitted;
	in->accepted = p->accepted;
	in->responded = p->responded;
	in->received = p->received;
	in->failed_back = p->failed_back;
	return 0;
}

/* -- signals: a futex word per port, bumped on every signal --
 * A waiter registers (prepare_wait), re-checks its queues, then sleeps only
 * if the word still holds the value it read: a signal in between is seen. */

static struct xsig *sig_of(struct xseg *seg, int portno)
{
	struct xport *p = port_get(seg, portno);

	return p ? &seg->ports[p->signal_port].sig : NULL;
}

uint32_t xseg_prepare_wait(struct xseg *seg, int portno)
{
	struct xsig *s = sig_of(seg, portno);
	uint32_t tok;

	if (!s)
		return 0;
	tok = atomic_load(&s->seq);
	atomic_fetch_add(&s->waiters, 1);
	return tok;
}

int xseg_cancel_wait(struct xseg *seg, int portno)
{
	struct xsig *s = sig_of(seg, portno);

	if (!s)
		return -1;
	atomic_fetch_sub(&s->waiters, 1);
	return 0;
}

int xseg_wait(struct xseg *seg, int portno, uint32_t token, int timeout_ms)
{
	struct xsig *s = sig_of(seg, portno);
	struct timespec ts, *tsp = NULL;
	long r;

	if (!s)
		return -1;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		tsp = &ts;
	}
	/* shared (not FUTEX_PRIVATE): the word lives in memory of many processes */
	r = syscall(SYS_futex, &s->seq, FUTEX_WAIT, token, tsp, NULL, 0);
	atomic_fetch_sub(&s->waiters, 1);
	return (r < 0 && errno == ETIMEDOUT) ? 1 : 0;
}

static void sig_wake(struct xsig *s)
{
	atomic_fetch_add(&s->seq, 1);
	if (atomic_load(&s->waiters))
		syscall(SYS_futex, &s->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void port_wake(struct xseg *seg, struct xport *p)
{
	sig_wake(&seg->ports[p->signal_port].sig);
}

int xseg_signal(struct xseg *seg, int portno)
{
	struct xsig *s = sig_of(seg, portno);

	if (!s)
		return -1;
	sig_wake(s);
	return 0;
}

int xseg_pending(struct xseg *seg, int portno)
{
	struct xport *p = port_get(seg, portno);

	return p ? (int)(xq_count(&p->reqq) + xq_count(&p->replyq)) : -1;
}

int xseg_wait_work(struct xseg *seg, int portno, int timeout_ms)
{
	uint32_t tok = xseg_prepare_wait(seg, portno);

	if (xseg_pending(seg, portno) != 0) {
		xseg_cancel_wait(seg, portno);
		return 0;
	}
	return xseg_wait(seg, portno, tok, timeout_ms);
}
