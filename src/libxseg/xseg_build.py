"""cffi out-of-line API-mode build of the `xseg._xseg` extension.

The C sources are compiled into the extension itself, so the binding needs no
shared library on the loader's path.  setup.py names this file in cffi_modules.
"""
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
#define XSEG_VERSION ...
#define XSEG_MAX_TARGETLEN ...
#define XSEG_MAX_PATH ...
#define XSEG_ANYPORT ...
#define XSEG_NOPORT ...
#define XF_NOSYNC ...
#define XF_FLUSH ...
#define XF_FUA ...
#define XF_FORCE ...
#define XS_SERVED ...
#define XS_FAILED ...
#define X_NR_OPS ...

enum xseg_where { XW_POOL, XW_FREEQ, XW_HELD, XW_REQQ, XW_SERVING, XW_REPLYQ };
struct xseg_hop { uint16_t port; uint32_t gen; ...; };
struct xseg_request {
    uint32_t op; uint32_t flags; uint32_t state; int32_t err;
    uint64_t offset; uint64_t size; uint64_t serviced; uint64_t datalen;
    uint32_t targetlen; uint16_t src; uint16_t dst; uint64_t priv; uint64_t serial;
    uint32_t idx; uint32_t where; uint32_t holder; uint32_t path_len;
    struct xseg_hop path[...];
    uint64_t buf_cap;
    char target[...];
    ...;
};
struct xseg_spec {
    char type[16]; char name[...]; uint32_t dynports; uint32_t nr_ports; uint64_t heap_mib;
    uint32_t page_shift; uint32_t nr_reqs;
};
struct xseg_port_info {
    uint32_t portno; uint32_t bound; uint32_t dynamic; uint32_t gen; int32_t owner_pid;
    uint32_t owner_alive; char owner[...]; uint32_t free_q, req_q, reply_q;
    uint32_t alloc, max_alloc; uint32_t signal_port;
    uint64_t submitted, accepted, responded, received, failed_back;
};
struct xseg_info {
    char name[...]; uint32_t version; uint64_t size; uint32_t nr_ports, dynports, nr_reqs,
    page_shift; uint64_t heap_size, heap_free, max_data; uint32_t pool_free;
    int32_t creator_pid;
};
struct xseg;

const char *xseg_errmsg(void);
int xseg_errno(void);

int xseg_parse_spec(const char *spec, struct xseg_spec *out);
int xseg_format_spec(const struct xseg_spec *spec, char *buf, size_t len);
struct xseg *xseg_create(const char *spec);
struct xseg *xseg_join(const char *name);
void xseg_leave(struct xseg *seg);
int xseg_destroy(const char *name);
int xseg_info(struct xseg *seg, struct xseg_info *info);

int xseg_bind(struct xseg *seg, int portno, const char *owner, uint32_t max_alloc);
int xseg_unbind(struct xseg *seg, int portno);
int xseg_port_info(struct xseg *seg, int portno, struct xseg_port_info *info);
int xseg_share_signal(struct xseg *seg, int portno, int leader);
int xseg_check(struct xseg *seg);

struct xseg_request *xseg_get_request(struct xseg *seg, int portno, uint64_t datalen);
int xseg_get_requests(struct xseg *seg, int portno, uint64_t datalen,
                      struct xseg_request **reqs, int n);
int xseg_put_request(struct xseg *seg, int portno, struct xseg_request *req);
int xseg_put_requests(struct xseg *seg, int portno, struct xseg_request **reqs, int n);
int xseg_resize_data(struct xseg *seg, struct xseg_request *req, uint64_t datalen);
int xseg_set_target(struct xseg_request *req, const char *target, uint32_t len);
int xseg_prep_request(struct xseg *seg, struct xseg_request *req, const char *target,
                      uint32_t targetlen, uint64_t datalen);
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

uint32_t xseg_prepare_wait(struct xseg *seg, int portno);
int xseg_cancel_wait(struct xseg *seg, int portno);
int xseg_wait(struct xseg *seg, int portno, uint32_t token, int timeout_ms);
int xseg_signal(struct xseg *seg, int portno);
int xseg_pending(struct xseg *seg, int portno);
int xseg_wait_work(struct xseg *seg, int portno, int timeout_ms);
const char *xseg_op_name(uint32_t op);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "xseg._xseg",
    '#include "xseg.h"',
    # relative to this directory: setup.py runs here and setuptools wants them so
    sources=[f"src/{p.name}" for p in sorted((HERE / "src").glob("*.c"))],
    include_dirs=["include", "src"],
    extra_compile_args=["-std=gnu11", "-O2"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
