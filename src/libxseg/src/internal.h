/* Layout of the segment and helpers shared by the library's modules. */
#ifndef XSEG_INTERNAL_H
#define XSEG_INTERNAL_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include "xseg.h"

#define XSEG_MAGIC 0x4c4c4f5247455358ull   /* "XSEGROLL" */
#define XPTR(seg, off) ((void *)((char *)(seg)->base + (off)))

enum { PORT_FREE = 0, PORT_BOUND = 1, PORT_RECOVERING = 2 };

/* A queue of requests, linked through their `next` index, so a port's queues
 * cost no memory beyond their head and a request is in at most one queue.
 * Every change commits with a single store (see queue.c), so a process killed
 * inside the lock leaves a queue that queue_fsck() can repair. */
#define XQ_NONE 0xffffffffu
struct xq {
	pthread_mutex_t lock;      /* robust, process-shared */
	uint32_t head, tail;
	uint32_t count;
	uint32_t kind;             /* XW_POOL, XW_FREEQ, XW_REQQ or XW_REPLYQ */
	uint32_t port;             /* owning port (XSEG_NOPORT for the pool) */
	uint32_t pad;
};

struct xsig {
	_Alignas(64) atomic_uint seq;   /* futex word: bumped by every signal */
	atomic_uint waiters;
};

struct xport {
	struct xq freeq, reqq, replyq;
	struct xsig sig;
	_Alignas(64) uint32_t state;
	uint32_t gen;
	int32_t owner_pid;
	uint32_t dynamic;
	uint64_t owner_start;     /* start time of the owner, against pid reuse */
	uint32_t alloc, max_alloc;
	uint32_t signal_port;     /* whose signal word wakes this port's peer */
	uint32_t pad;
	char owner[XSEG_OWNERLEN];
	atomic_ullong submitted, accepted, responded, received, failed_back;
};

struct xhdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;        /* sizeof(struct xhdr): catches ABI drift */
	uint32_t port_size, req_size;
	uint64_t size;
	char name[XSEG_NAMELEN];
	struct xseg_spec spec;
	uint32_t nr_ports, dynports, nr_reqs, pad0;
	uint32_t page_shift, pad;
	uint64_t ports_off, reqs_off, bitmap_off, heap_off;
	uint64_t heap_pages, max_data;
	int32_t creator_pid;
	atomic_uint ready;        /* set last by the creator */
	struct xq pool;
	pthread_mutex_t heap_lock;
	pthread_mutex_t recovery_lock;
	uint64_t heap_hint;
	uint64_t heap_used;
};

struct xseg {
	void *base;
	size_t size;
	struct xhdr *hdr;
	struct xport *ports;
	struct xseg_request *reqs;
	char name[XSEG_NAMELEN];
};

/* error.c */
int xerr(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *xerr_null(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xerr_clear(void);

/* lock.c */
int xlock_init(pthread_mutex_t *m);
int xlock(pthread_mutex_t *m);   /* returns 1 if the previous owner died */
void xunlock(pthread_mutex_t *m);

/* queue.c */
void xq_init(struct xq *q, uint32_t kind, uint32_t port);
uint32_t xq_count(const struct xq *q);
void xq_lock(struct xseg *seg, struct xq *q);
void xq_unlock(struct xq *q);
void xq_push_locked(struct xseg *seg, struct xq *q, struct xseg_request *req);
int xq_pop_locked(struct xseg *seg, struct xq *q, struct xseg_request **out, int max,
		  uint32_t where, uint32_t holder);
void xq_push(struct xseg *seg, struct xq *q, struct xseg_request *req);
int xq_pop(struct xseg *seg, struct xq *q, struct xseg_request **out, int max,
	   uint32_t where, uint32_t holder);
void xq_drop_buffers(struct xseg *seg, struct xq *q);

/* heap.c */
int heap_alloc(struct xseg *seg, struct xseg_request *req, uint64_t len);
void heap_free(struct xseg *seg, struct xseg_request *req);
void heap_init(struct xseg *seg);
uint64_t heap_free_bytes(struct xseg *seg);

/* port.c */
struct xport *port_get(struct xseg *seg, int portno);
int pid_alive(int32_t pid, uint64_t start);
uint64_t proc_start_time(int pid);
void port_wake(struct xseg *seg, struct xport *p);

/* request.c */
void req_to_pool(struct xseg *seg, struct xseg_request *req);
void req_fail_back(struct xseg *seg, struct xseg_request *req, int err);

/* recover.c */
void recover_port(struct xseg *seg, uint32_t portno, int self);

static inline uint64_t now_ns(void);
#include <time.h>
static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#endif
