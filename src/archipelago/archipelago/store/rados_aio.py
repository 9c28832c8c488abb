"""RadosStore's fast data path: librados aio through the `_rados_aio` C extension.

python-rados runs a Python callback per completion on a librados thread (which has
to take the GIL there) and copies every read into a new bytes object. The extension
(src/rados-aio) reads straight into the caller's buffer, writes straight from it,
and queues completions in a ring; one thread per client (`drain`) takes them in
batches and completes the `Op`s, so completion callbacks (nbdd's replies) run
there, one after the other, without fighting librados for the GIL.

The extension has its own cluster handle (python-rados does not expose its
pointers), so a store with it has two RADOS client addresses; both are
registered in the lease records and fenced together (rados_lease.py).
`available()` is False when the extension was not built (no librados-dev): the
store then keeps python-rados' aio.
"""
import itertools
import logging
import threading

from ..errors import Unavailable

try:
    from ._rados_aio import ffi, lib
except ImportError:  # not built: make build (needs librados-dev)
    ffi = lib = None

log = logging.getLogger(__name__)
_get_ident = threading.get_ident
if lib is not None:     # the lean path's calls, looked up once
    _ra_read, _ra_write, _from_buffer = lib.ra_read, lib.ra_write, ffi.from_buffer

BATCH = 64          # completions taken per wake-up of the drainer
WAIT_MS = 1000      # the drainer re-checks for close at least this often


def available():
    return lib is not None


class Op:
    """One request in flight: the Future subset RadosStore's callers use
    (result, exception, done, add_done_callback), without concurrent.futures'
    Condition per request. `finish` is called once, by the drainer."""

    __slots__ = ("_cbs", "_done", "_exc", "_lock", "_value", "keep", "then")

    def __init__(self, lock, then=None, keep=None):
        self._lock = lock               # the client's: guards _done/_cbs together
        self._done = False
        self._value = self._exc = None
        self._cbs = None
        self.then = then                # then(rv) -> value, may raise: runs on completion
        self.keep = keep                # buffers librados uses until completion

    def finish(self, value=None, exc=None):
        with self._lock:
            self._done = True
            self._value, self._exc = value, exc
            cbs, self._cbs = self._cbs, None
        self.keep = self.then = None
        for fn in cbs or ():
            try:
                fn(self)
            except Exception:  # a callback's error must not stop the drainer
                log.exception("RADOS aio completion callback failed")

    def add_done_callback(self, fn):
        with self._lock:
            if not self._done:
                if self._cbs is None:
                    self._cbs = [fn]
                else:
                    self._cbs.append(fn)
                return
        fn(self)

    def done(self):
        return self._done

    def _wait(self, timeout):
        if self._done:
            return
        latch = threading.Lock()
        latch.acquire()
        self.add_done_callback(lambda _op: latch.release())
        if not latch.acquire(timeout=-1 if timeout is None else timeout):
            from concurrent.futures import TimeoutError as FutTimeout
            raise FutTimeout()

    def result(self, timeout=None):
        self._wait(timeout)
        if self._exc is not None:
            raise self._exc
        return self._value

    def exception(self, timeout=None):
        self._wait(timeout)
        return self._exc


class AioClient:
    """A cluster handle of the extension on (pool, namespace): read/write -> Op.

    `failed(rv, what)` maps a negative librados result to the exception to raise
    (RadosStore's error mapping, which also notices a blocklisted client)."""

    def __init__(self, cfg, namespace, failed):
        self._failed = failed
        self._ops = {}
        self._cbs = {}                  # tag -> (cb, buffer): the lean path (start)
        self._after = []                # run once the current batch is completed
        self._tags = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        out = ffi.new("struct ra_client **")
        rv = lib.ra_connect(out, str(cfg.ceph_conf).encode(), cfg.cephx_id.encode(),
                            cfg.pool.encode(), namespace.encode(), cfg.connect_timeout,
                            cfg.op_timeout, cfg.queue_depth)
        if rv < 0:
            raise failed(rv, f"connect to pool {cfg.pool} (aio client)")
        self._cl = out[0]
        buf = ffi.new("char[]", 4096)
        lib.ra_addrs(self._cl, buf, 4096)
        self.addr = ffi.string(buf).decode()
        self._thread = threading.Thread(target=self._drain, daemon=True,
                                        name=f"rados-aio {cfg.pool}/{namespace}")
        self._thread.start()
        self._drainer = self._thread.ident

    def read(self, name, offset, buf, then):
        """Read len(buf) bytes of `name` at `offset` into writable buffer `buf`; the
        Op's value is then(rv) (rv: bytes read, or a negative errno)."""
        op = Op(self._lock, then, buf)
        tag = next(self._tags)
        self._ops[tag] = op
        rv = lib.ra_read(self._cl, name.encode(), ffi.from_buffer(buf, require_writable=True),
                         len(buf), offset, tag, threading.get_ident() == self._drainer)
        return self._started(tag, op, rv)

    def write(self, name, offset, data, then):
        op = Op(self._lock, then, data)
        tag = next(self._tags)
        self._ops[tag] = op
        rv = lib.ra_write(self._cl, name.encode(), ffi.from_buffer(data), len(data), offset,
                          tag, threading.get_ident() == self._drainer)
        return self._started(tag, op, rv)

    def start(self, write, oid, offset, buf, cb):
        """The lean path (nbdd's hot path): no Op, no lock. Start a read into (or a
        write from) `buf` of object `oid` (bytes) at `offset`; cb(rv) runs on the
        drainer with librados' result -- or at once, here, when the request could
        not be started. Unavailable once closed."""
        tag = next(self._tags)
        self._cbs[tag] = (cb, buf)
        force = _get_ident() == self._drainer
        if write:
            rv = _ra_write(self._cl, oid, _from_buffer(buf), len(buf), offset, tag, force)
        else:
            rv = _ra_read(self._cl, oid, _from_buffer(buf, require_writable=True),
                          len(buf), offset, tag, force)
        if rv < 0:
            self._cbs.pop(tag, None)
            if self._closed:
                raise Unavailable("RADOS aio client is closed")
            cb(rv)

    def after_batch(self, fn):
        """On the drainer (in a completion callback): run fn() once every completion
        of the current batch has been handled, and True; elsewhere False. Lets a
        caller send the replies of completions that arrived together at once."""
        if _get_ident() != self._drainer:
            return False
        self._after.append(fn)
        return True

    def flush(self):
        """Wait until every request started so far completed (GIL released)."""
        if not self._closed:
            lib.ra_flush(self._cl)

    def _started(self, tag, op, rv):
        if rv < 0:
            self._ops.pop(tag, None)
            if self._closed:
                raise Unavailable("RADOS aio client is closed")
            op.finish(*self._outcome(op, rv))
        return op

    def _outcome(self, op, rv):
        try:
            return op.then(rv), None
        except Exception as e:
            return None, e

    def _drain(self):
        tags = ffi.new("uint64_t[]", BATCH)
        rvs = ffi.new("int64_t[]", BATCH)
        ops, cbs = self._ops, self._cbs
        while True:
            n = lib.ra_wait(self._cl, tags, rvs, BATCH, WAIT_MS)
            if n < 0:       # closed, nothing left in flight
                lib.ra_destroy(self._cl)
                return
            for i in range(n):
                tag = tags[i]
                lean = cbs.pop(tag, None)
                if lean is not None:
                    try:
                        lean[0](rvs[i])
                    except Exception:  # a callback's error must not stop the drainer
                        log.exception("RADOS aio completion callback failed")
                    continue
                op = ops.pop(tag)
                op.finish(*self._outcome(op, rvs[i]))
            if self._after:
                after, self._after = self._after, []
                for fn in after:
                    try:
                        fn()
                    except Exception:
                        log.exception("RADOS aio after-batch callback failed")

    def close(self):
        """Refuse new requests; those in flight complete (each bounded by op_timeout),
        then the drainer drops the cluster handle. Waits for that unless called from
        a completion callback (the drainer itself)."""
        if self._closed:
            return
        self._closed = True
        lib.ra_close(self._cl)
        if threading.get_ident() != self._drainer:
            self._thread.join()
