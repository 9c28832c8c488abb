/* rados_aio.h: see rados_aio.c. Every int function returns 0 or a negative errno. */
#ifndef RADOS_AIO_H
#define RADOS_AIO_H
#include <stddef.h>
#include <stdint.h>

struct ra_client;

int ra_connect(struct ra_client **out, const char *conf, const char *id, const char *pool,
               const char *nspace, int connect_timeout, int op_timeout, uint32_t depth);
int ra_addrs(struct ra_client *cl, char *buf, size_t len);
/* Start a request; its (tag, result) comes out of ra_wait. Waits for a free slot
 * unless `force` (the thread that calls ra_wait must not wait). */
int ra_read(struct ra_client *cl, const char *oid, char *buf, size_t len, uint64_t off,
            uint64_t tag, int force);
int ra_write(struct ra_client *cl, const char *oid, const char *buf, size_t len,
             uint64_t off, uint64_t tag, int force);
/* Up to max completions (tag, librados result), waiting up to timeout_ms for the
 * first: the count, 0 on timeout, -1 once closed with nothing left in flight. */
int ra_wait(struct ra_client *cl, uint64_t *tags, int64_t *rvs, int max, int timeout_ms);
/* Wait for every request started so far (librados aio_flush). */
int ra_flush(struct ra_client *cl);
/* Refuse new requests and wake the waiters; ra_destroy once ra_wait returned -1. */
void ra_close(struct ra_client *cl);
void ra_destroy(struct ra_client *cl);
#endif
