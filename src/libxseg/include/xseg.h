/* libxseg: requests between processes through a POSIX shared-memory segment.
 *
 * A segment holds ports; each port has three queues (free, request, reply) of
 * requests.  A requester gets a request from its port, fills it in and submits
 * it to another port; the peer bound there accepts it, serves it and responds;
 * the reply travels back along the request's path of ports and the requester
 * receives it and puts it back.  Everything inside the segment is addressed by
 * offsets, so every process may map it anywhere.
 *
 * Errors: every call that can fail returns -1 (or NULL) and sets errno and a
 * per-thread message readable with xseg_errmsg().  See docs/xseg.md.
 */
#ifndef XSEG_H
#define XSEG_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XSEG_VERSION_MAJOR 1
#define XSEG_VERSION_MINOR 0
#define XSEG_VERSION ((XSEG_VERSION_MAJOR << 16) | XSEG_VERSION_MINOR)

#define XSEG_MAX_TARGETLEN 256
#define XSEG_MAX_PATH 8
#define XSEG_NAMELEN 64
#define XSEG_OWNERLEN 32
#define XSEG_ANYPORT (-1)
#define XSEG_NOPORT 0xffffu

/* Operations (DESIGN §3); numbers follow the original libxseg. */
enum xseg_op {
	X_PING = 0, X_READ = 1, X_WRITE = 2, X_SYNC = 3, X_TRUNCATE = 4,
	X_DELETE = 5, X_ACQUIRE = 6, X_RELEASE = 7, X_COPY = 8, X_CLONE = 9,
	X_COMMIT = 10, X_INFO = 11, X_MAPR = 12, X_MAPW = 13, X_OPEN = 14,
	X_CLOSE = 15, X_SNAPSHOT = 16, X_HASH = 17, X_CREATE = 18,
	X_RENAME = 19, X_FLUSH = 20, X_UPDATE = 21,
	X_NR_OPS
};

/* Request flags. */
#define XF_NOSYNC (1u << 0)
#define XF_FLUSH  (1u << 1)
#define XF_FUA    (1u << 2)
#define XF_FORCE  (1u << 3)

/* Result states. */
#define XS_SERVED 1u
#define XS_FAILED 2u

/* Where a request is (for reports and recovery). */
enum xseg_where {
	XW_POOL = 0,   /* segment-wide free pool */
	XW_FREEQ,      /* a port's free queue (cached) */
	XW_HELD,       /* held by the requester process of `holder` */
	XW_REQQ,       /* queued for the peer of `holder` */
	XW_SERVING,    /* accepted by the peer of `holder` */
	XW_REPLYQ,     /* queued as a reply for `holder` */
};

struct xseg_hop {
	uint16_t port;
	uint16_t pad;
	uint32_t gen;   /* port generation when pushed: a re-bound port is a new one */
};

/* A request as it lies in the segment.  Fields up to `target` are the
 * contract with peers; the rest is bookkeeping owned by the library. */
struct xseg_request {
	uint32_t op;
	uint32_t flags;
	uint32_t state;         /* 0, XS_SERVED or XS_FAILED */
	int32_t  err;           /* errno of a failure, 0 on success */
	uint64_t offset;
	uint64_t size;
	uint64_t serviced;
	uint64_t datalen;       /* bytes of data valid for this request */
	uint32_t targetlen;
	uint16_t src;           /* first requester */
	uint16_t dst;           /* last destination submitted to */
	uint64_t priv;          /* free for the current holder's process */
	uint64_t serial;        /* bumped on every get: detects stale handles */
	/* library bookkeeping */
	uint32_t idx;
	uint32_t where;
	uint32_t holder;
	uint32_t path_len;
	struct xseg_hop path[XSEG_MAX_PATH];
	uint64_t buf_off;       /* data buffer, as an offset into the segment */
	uint64_t buf_cap;       /* its capacity in bytes (0 = none) */
	uint16_t alloc_port;    /* port whose allocation count this request is on */
	uint16_t pad2;
	uint32_t alloc_gen;
	uint32_t next;          /* next request in the same queue */
	uint32_t pad3;
	char target[XSEG_MAX_TARGETLEN];
};

struct xseg_spec {
	char type[16];
	char name[XSEG_NAMELEN];
	uint32_t dynports;      /* how many of the ports (the top ones) are dynamic */
	uint32_t nr_ports;
	uint64_t heap_mib;
	uint32_t page_shift;
	uint32_t nr_reqs;
};

struct xseg_port_info {
	uint32_t portno;
	uint32_t bound;         /* 1 bound, 0 free, 2 being recovered */
	uint32_t dynamic;
	uint32_t gen;
	int32_t  owner_pid;
	uint32_t owner_alive;
	char owner[XSEG_OWNERLEN];
	uint32_t free_q, req_q, reply_q;
	uint32_t alloc, max_alloc;
	uint32_t signal_port;
	uint64_t submitted, accepted, responded, received, failed_back;
};

struct xseg_info {
	char name[XSEG_NAMELEN];
	uint32_t version;
	uint64_t size;
	uint32_t nr_ports, dynports, nr_reqs, page_shift;
	uint64_t heap_size, heap_free, max_data;
	uint32_t pool_free;
	int32_t creator_pid;
};

struct xseg;   /* a process's handle on a segment */

/* errors */
const char *xseg_errmsg(void);
int xseg_errno(void);

/* segments */
#define XSEG_DEFAULT_SPEC "posix:archipelago:64:128:256:12:4096"
int xseg_parse_spec(const char *spec, struct xseg_spec *out);
int xseg_format_spec(const struct xseg_spec *spec, char *buf, size_t len);
struct xseg *xseg_create(const char *spec);
struct xseg *xseg_join(const char *name);
void xseg_leave(struct xseg *seg);
int xseg_destroy(const char *name);
int xseg_info(struct xseg *seg, struct xseg_info *info);
void *xseg_base(struct xseg *seg);

/* ports */
int xseg_bind(struct xseg *seg, int portno, const char *owner, uint32_t max_alloc);
int xseg_unbind(struct xseg *seg, int portno);
int xseg_port_info(struct xseg *seg, int portno, struct xseg_port_info *info);
int xseg_share_signal(struct xseg *seg, int portno, int leader);
int xseg_check(struct xseg *seg);   /* recover ports of dead processes */

/* requests */
struct xseg_request *xseg_get_request(struct xseg *seg, int portno, uint64_t datalen);
int xseg_get_requests(struct xseg *seg, int portno, uint64_t datalen,
		      struct xseg_request **reqs, int n);
int xseg_put_request(struct xseg *seg, int portno, struct xseg_request *req);
int xseg_put_requests(struct xseg *seg, int portno, struct xseg_request **reqs, int n);
int xseg_resize_data(struct xseg *seg, struct xseg_request *req, uint64_t datalen);
int xseg_prep_request(struct xseg *seg, struct xseg_request *req, const char *target,
		      uint32_t targetlen, uint64_t datalen);
int xseg_set_target(struct xseg_request *req, const char *target, uint32_t len);
char *xseg_req_data(struct xseg *seg, struct xseg_request *req);
struct xseg_request *xseg_req_by_idx(struct xseg *seg, uint32_t idx);

int xseg_submit(struct xseg *seg, int src, int dst, struct xseg_request *req);
int xseg_submit_batch(struct xseg *seg, int src, int dst,
		      struct xseg_request **reqs, int n);
int xseg_accept(struct xseg *seg, int portno, struct xseg_request **reqs, int max);
int xseg_respond(struct xseg *seg, int portno, struct xseg_request *req);
int xseg_respond_batch(struct xseg *seg, int portno, struct xseg_request **reqs, int n);
int xseg_receive(struct xseg *seg, int portno, struct xseg_request **reqs, int max);
int xseg_fail(struct xseg *seg, int portno, struct xseg_request *req, int err);

/* waiting: prepare, re-check the queues, then wait (or cancel) */
uint32_t xseg_prepare_wait(struct xseg *seg, int portno);
int xseg_cancel_wait(struct xseg *seg, int portno);
int xseg_wait(struct xseg *seg, int portno, uint32_t token, int timeout_ms);
int xseg_signal(struct xseg *seg, int portno);
int xseg_pending(struct xseg *seg, int portno);   /* requests + replies queued */
int xseg_wait_work(struct xseg *seg, int portno, int timeout_ms);

const char *xseg_op_name(uint32_t op);

#ifdef __cplusplus
}
#endif
#endif
