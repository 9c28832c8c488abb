"""RadosStore: the ObjectStore (API v1) on a Ceph RADOS pool -- the radosd backend.

One RADOS object per store object, in the configured pool and (optional) namespace;
lease records live in a namespace of their own (`lease_namespace`, default
`<namespace>.leases`; give a node's two blockers the same one to share the records), so `list()`
never sees them. Every request takes one of `queue_depth` slots (a bounded queue:
callers beyond that wait). Data reads and unleased writes (readinto, write,
aio_readinto, aio_write) go through the C extension of rados_aio.py when it is
built (no copies, completions drained in batches; its own `queue_depth` slots);
everything else makes blocking python-rados calls, which release the GIL while
they wait. The aio methods return futures for callers that keep many requests going
from one thread.

Semantics on RADOS:
  * reads of a missing object or past its end are zeros;
  * a write returns when the OSDs committed it (RADOS acknowledges on commit), so
    `flush()` and `fua` have nothing left to do;
  * `replace` is write_full (atomic), `put_if_absent` an exclusive create plus
    write_full in one op, `copy` a consistent whole-object read plus write_full;
  * a full cluster or pool answers ENOSPC/EDQUOT (the ioctx sets FULL_TRY, so writes
    are not parked until space appears) -> NoSpace; a stopped OSD makes requests wait
    up to `op_timeout`, then Timeout.
Leases and fencing: see rados_lease.py. rados.Error never leaves this package.

Config (the radosd role section, e.g. `[blockerb]` with `type = rados`):
    RadosStore.from_config(archipelago.config.load(), "blockerb")
"""
import atexit
import collections
import errno
import logging
import threading
import weakref
from concurrent.futures import Future

from ..config import Option, Section, boolean, integer, path, string
from ..errors import (
    ArchipelagoError,
    BackendError,
    Busy,
    ConfigError,
    Exists,
    Fenced,
    InvalidArgument,
    NoSpace,
    NotFound,
    Timeout,
    Unavailable,
)
from . import rados_aio
from .base import ObjectStore, StoreInfo
from .leasing import check_name
from .rados_lease import FENCE_KEY, RadosLeases, gen_key

try:
    import rados
except ImportError:  # pragma: no cover - reported when a store is made
    rados = None

log = logging.getLogger(__name__)

RADOS = Section("blockerb", "RADOS object store (radosd)", [
    Option("type", "rados", string, "blocker backend of this role (rados)"),
    Option("pool", "archipelago", string, "RADOS pool holding the objects (must exist)"),
    Option("namespace", "", string, "RADOS namespace inside the pool (share a pool)"),
    Option("lease_namespace", "", string,
           "namespace of the lease records (default: NAMESPACE.leases); the same on "
           "blockerb and blockerm lets data writes be checked against the volume leases"),
    Option("cephx_id", "admin", string, "cephx user (client.ID) the peer connects as"),
    Option("ceph_conf", "/etc/ceph/ceph.conf", path, "ceph.conf with mon host and keyring"),
    Option("connect_timeout", 30, integer(1, 3600), "seconds to reach the monitors"),
    Option("op_timeout", 30, integer(1, 3600),
           "seconds before an OSD request fails with Timeout (0 would block forever)"),
    Option("queue_depth", 64, integer(1, 4096), "RADOS requests in flight per store"),
    Option("native_aio", True, boolean,
           "data reads/writes through the librados C extension (src/rados-aio, built "
           "by make build) when it is built; no: python-rados' aio (slower)"),
    Option("fence_blocklist", True, boolean,
           "blocklist a lease holder's client when its lease is broken or taken over"),
    Option("blocklist_expire", 3600, integer(60, 30 * 86400),
           "seconds a fenced client stays blocklisted"),
], strict=False)   # the role section also holds the peer's own settings

_ERRNO = {
    errno.ENOENT: NotFound, errno.EEXIST: Exists, errno.ETIMEDOUT: Timeout,
    errno.ENOSPC: NoSpace, errno.EDQUOT: NoSpace, errno.EBUSY: Busy,
    errno.EINVAL: InvalidArgument, errno.EFBIG: InvalidArgument,
    errno.ENAMETOOLONG: InvalidArgument, errno.ESHUTDOWN: Fenced,
    errno.ENOTCONN: Unavailable, errno.ECONNREFUSED: Unavailable,
}


# librados aborts the process ("terminate called without an active exception") when a
# cluster handle is still open at interpreter exit: close what the caller forgot.
_OPEN = weakref.WeakSet()


@atexit.register
def _close_all():
    for store in list(_OPEN):
        try:
            store.close()
        except Exception:  # best effort at exit
            pass


class Blocklisted(Fenced):
    """The cluster refused this client: another holder fenced it (ESHUTDOWN)."""


def error(err, what):
    """The ArchipelagoError for a RADOS errno (positive) while doing `what`."""
    if err == errno.ESHUTDOWN:
        return Blocklisted(f"{what}: this client was fenced by the cluster (blocklisted); "
                           "its leases must be renewed", errno=err)
    if err == errno.ECANCELED:
        return Fenced(f"{what}: refused by the cluster: the object was written under a newer "
                      "lease generation", errno=errno.ESTALE)
    if err in (errno.EPERM, errno.EACCES):
        return BackendError(f"{what}: permission denied (cephx caps)", errno=err)
    cls = _ERRNO.get(err, BackendError)
    return cls(f"{what}: {errno.errorcode.get(err, err)} ({_strerror(err)})", errno=err)


def _strerror(err):
    import os
    return os.strerror(err)


def wrap(e, what):
    """An ArchipelagoError for a rados.Error (or anything librados raised)."""
    if isinstance(e, ArchipelagoError):
        return e
    err = getattr(e, "errno", None)
    if isinstance(err, int) and err:
        return error(abs(err), what)
    return BackendError(f"{what}: {e}")


class _Conn:
    """One cluster handle: data ioctx, lease ioctx, our client address."""

    def __init__(self, cfg, epoch):
        self.epoch = epoch
        self.dead = False
        self.cluster = rados.Rados(conffile=str(cfg.ceph_conf), rados_id=cfg.cephx_id)
        try:
            for key, val in (("rados_osd_op_timeout", cfg.op_timeout),
                             ("rados_mon_op_timeout", cfg.op_timeout),
                             ("client_mount_timeout", cfg.connect_timeout)):
                self.cluster.conf_set(key, str(val))
            self.cluster.connect(timeout=cfg.connect_timeout)
            self.io = self._open(cfg, cfg.namespace)
            self.lio = self._open(cfg, cfg.lease_namespace or f"{cfg.namespace}.leases")
            self.addr = self.cluster.get_addrs()
            # the fast data path: a second cluster handle (rados_aio.py), fenced with
            # this one (both addresses go into the lease records)
            self.aio = None
            if cfg.native_aio and rados_aio.available():
                self.aio = rados_aio.AioClient(cfg, cfg.namespace, _aio_failed)
            self.addrs = (self.addr,) if self.aio is None else (self.addr, self.aio.addr)
        except BaseException:
            self.close()
            raise

    def _open(self, cfg, namespace):
        try:
            io = self.cluster.open_ioctx(cfg.pool)
        except rados.ObjectNotFound:
            raise ConfigError(f"RADOS pool {cfg.pool!r} does not exist "
                              f"(ceph osd pool create {cfg.pool})") from None
        io.set_namespace(namespace)
        io.set_osdmap_full_try()      # a full cluster answers ENOSPC instead of parking
        return io

    def close(self):
        if getattr(self, "aio", None) is not None:
            self.aio.close()
        for io in (getattr(self, "io", None), getattr(self, "lio", None)):
            if io is not None:
                io.close()
        self.cluster.shutdown()


def _aio_failed(rv, what):
    return error(-rv, what)


class RadosStore(RadosLeases, ObjectStore):
    """The ObjectStore on a RADOS pool. See the module docstring."""

    kind = "rados"

    def __init__(self, *, conf="/etc/ceph/ceph.conf", pool="archipelago", namespace="",
                 lease_namespace="",
                 cephx_id="admin", connect_timeout=30, op_timeout=30, queue_depth=64,
                 fence_blocklist=True, blocklist_expire=3600, lease_margin=1.0,
                 native_aio=True):
        if rados is None:
            raise Unavailable("python3-rados is not installed (apt-get install python3-rados)")
        from pathlib import Path
        from types import SimpleNamespace
        self.cfg = SimpleNamespace(
            ceph_conf=Path(conf), pool=pool, namespace=namespace,
            lease_namespace=lease_namespace, cephx_id=cephx_id,
            connect_timeout=connect_timeout, op_timeout=op_timeout, queue_depth=queue_depth,
            fence_blocklist=fence_blocklist, blocklist_expire=blocklist_expire,
            native_aio=native_aio)
        self._slots = threading.BoundedSemaphore(queue_depth)
        self._conn_lock = threading.Lock()
        self._epoch = 0
        self._conn = None
        self._retired = []          # blocklisted handles, closed with the store
        self._closed = False
        RadosLeases.__init__(self, lease_margin)
        self._connect()
        _OPEN.add(self)
        log.info("RADOS store on pool %s%s as client.%s (%s)", pool,
                 f" namespace {namespace}" if namespace else "", cephx_id,
                 ", ".join(self._conn.addrs))

    @classmethod
    def from_config(cls, cfg, section="blockerb", namespace=None):
        """The store of a config section; `namespace` (a NAS volume pool) goes below
        the section's own namespace, if any."""
        v = cfg.section(RADOS, section)
        if v.type != "rados":
            raise ConfigError(f"{cfg.source}: [{section}] type = {v.type!r}, not rados")
        if namespace is not None:
            namespace = f"{v.namespace}.{namespace}" if v.namespace else namespace
        return cls(conf=v.ceph_conf, pool=v.pool,
                   namespace=v.namespace if namespace is None else namespace,
                   lease_namespace=v.lease_namespace, cephx_id=v.cephx_id,
                   connect_timeout=v.connect_timeout, op_timeout=v.op_timeout,
                   queue_depth=v.queue_depth, fence_blocklist=v.fence_blocklist,
                   blocklist_expire=v.blocklist_expire, native_aio=v.native_aio)

    def __repr__(self):
        return f"RadosStore(pool={self.cfg.pool!r}, namespace={self.cfg.namespace!r})"

    # -- connection -------------------------------------------------------------
    def _connect(self):
        self._epoch += 1
        what = f"connect to Ceph ({self.cfg.ceph_conf}, client.{self.cfg.cephx_id})"
        if not self.cfg.ceph_conf.exists():
            raise ConfigError(f"{what}: {self.cfg.ceph_conf} does not exist")
        try:
            self._conn = _Conn(self.cfg, self._epoch)
        except rados.Error as e:
            err = wrap(e, what)
            if isinstance(err, Timeout):
                raise Unavailable(f"{what}: no answer in {self.cfg.connect_timeout}s") from None
            raise err from None

    def conn(self):
        """The live cluster handle; a new one after this client was blocklisted."""
        c = self._conn
        if c is not None and not c.dead:
            return c
        with self._conn_lock:
            if self._closed:
                raise Unavailable(f"{self!r} is closed")
            old = self._conn
            if old is not None and old.dead:
                log.warning("RADOS client %s was blocklisted; reconnecting", ", ".join(old.addrs))
                self._connect()
                # Not closed yet: another thread may still be using it, and librados
                # aborts the process on a request to a shut-down handle. Closed with
                # the store (a blocklisted handle only gets errors meanwhile).
                self._retired.append(old)
            return self._conn

    def _mark_dead(self, conn):
        conn.dead = True

    def close(self):
        _OPEN.discard(self)
        with self._conn_lock:
            self._closed = True
            c, self._conn = self._conn, None
            retired, self._retired = self._retired, []
        for old in [*retired, c]:
            if old is not None:
                old.close()

    # -- the bounded aio queue ----------------------------------------------------
    def _submit(self, what, start):
        """Run start(conn, oncomplete) under a queue slot; a Future of (rv, data)."""
        fut = Future()
        conn = self.conn()
        self._slots.acquire()

        def done(comp, *args):
            data = args[0] if args else None
            try:
                rv = comp.get_return_value()
                if rv < 0:
                    if rv == -errno.ESHUTDOWN:
                        self._mark_dead(conn)
                    fut.set_exception(error(-rv, what))
                else:
                    fut.set_result((rv, data))
            except BaseException as e:  # never lose a completion
                fut.set_exception(wrap(e, what))
            finally:
                self._slots.release()

        try:
            start(conn, done)
        except Exception as e:
            self._slots.release()
            fut.set_exception(wrap(e, what))
        return fut

    def _sync(self, what, fn, *, retry=True):
        """fn(conn) on the live handle under a queue slot, errors mapped; once more on a
        new handle after a blocklist when `retry`. (A blocking librados call releases
        the GIL while it waits: cheaper than a completion callback per request.)"""
        conn = self.conn()
        try:
            with self._slots:
                return fn(conn)
        except rados.Error as e:
            err = wrap(e, what)
        if isinstance(err, Blocklisted):
            self._mark_dead(conn)
            if retry:
                return self._sync(what, fn, retry=False)
        raise err

    # -- data objects -------------------------------------------------------------
    def aio_readinto(self, name, offset, buf):
        """A Future that fills memoryview `buf` from `name` at `offset` (zero fill)."""
        check_name(name)
        _check_range(offset, len(buf))
        c = self.conn()
        if c.aio is not None and buf:       # the hot path: nothing else first
            return self._native_read(c, name, offset, memoryview(buf).cast("B"))
        out = Future()
        if not buf:
            out.set_result(0)
            return out
        inner = self._submit(f"read {name}", lambda c, cb: c.io.aio_read(
            name, len(buf), offset, oncomplete=cb))

        def fill(f):
            try:
                rv, data = f.result()
                # python3-rados 16 hands back an uninitialised buffer for a 0-byte read:
                # only the first rv bytes are data.
                data = (data or b"")[:rv]
            except NotFound:
                data = b""
            except ArchipelagoError as e:
                out.set_exception(e)
                return
            n = len(data)
            buf[:n] = data
            if n < len(buf):
                buf[n:] = bytes(len(buf) - n)
            out.set_result(len(buf))
        inner.add_done_callback(fill)
        return out

    def readinto(self, name, offset, buf):
        check_name(name)
        buf = memoryview(buf).cast("B")
        _check_range(offset, len(buf))
        if not buf:
            return 0
        if self.conn().aio is not None:     # straight into buf, no bytes copy
            return self._native_retry(lambda c: self._native_read(c, name, offset, buf))
        try:
            data = self._sync(f"read {name}", lambda c: c.io.read(name, len(buf), offset))
        except NotFound:
            data = b""
        n = len(data)
        buf[:n] = data
        if n < len(buf):
            buf[n:] = bytes(len(buf) - n)
        return len(buf)

    def aio_write(self, name, offset, data, *, fua=False, lease=None):
        """A Future that completes when the write is committed by the OSDs. `data`
        must stay unchanged until then (the native path sends it without a copy)."""
        check_name(name)
        _check_range(offset, len(data))
        if lease is None:
            c = self.conn()
            if c.aio is not None:
                return self._native_write(c, name, offset, data)
        data = bytes(data)
        if lease is None:
            return self._submit(f"write {name}", lambda c, cb: c.io.aio_write(
                name, data, offset, oncomplete=cb))
        return self._guarded(name, lease, f"write {name}", lambda w: w.write(data, offset))

    def write(self, name, offset, data, *, fua=False, lease=None):
        check_name(name)
        _check_range(offset, len(data))
        if lease is None and self.conn().aio is not None:
            return self._native_retry(lambda c: self._native_write(c, name, offset, data))
        data = bytes(data)
        if lease is None:
            self._sync(f"write {name}", lambda c: c.io.write(name, data, offset))
        else:
            self._guarded_sync(name, lease, f"write {name}", lambda w: w.write(data, offset))
        return len(data)

    def flush(self):
        # Writes are acknowledged on commit; wait for any aio still on its way.
        self._sync("flush", lambda c: c.io.aio_flush())
        c = self.conn()
        if c.aio is not None:
            c.aio.flush()

    # -- the native data path (rados_aio.py) ------------------------------------------
    def _native_read(self, c, name, offset, buf):
        n = len(buf)

        def then(rv):
            if rv >= 0:
                if rv < n:                  # past the end: zeros
                    buf[rv:] = bytes(n - rv)
                return n
            if rv == -errno.ENOENT:
                buf[:] = bytes(n)
                return n
            raise self._native_error(c, rv, f"read {name}")
        return c.aio.read(name, offset, buf, then)

    def _native_write(self, c, name, offset, data):
        n = len(data)

        def then(rv):
            if rv < 0:
                raise self._native_error(c, rv, f"write {name}")
            return n
        return c.aio.write(name, offset, data, then)

    def submit_io(self, write, name, offset, buf, cb):
        """The lean asynchronous data path of an in-process frontend (nbd/colocated.py):
        read object `name` at `offset` into memoryview `buf` (zero fill past its end
        or for a missing object), or write `buf` there; cb(None or exception) runs
        on the completion thread (or at once when it could not be started). Unlike
        aio_readinto/aio_write the name and range are not checked (the caller's
        come from mapperd's maps) and there is no Future. False: no native aio
        (use those)."""
        c = self._conn
        if c is None or c.dead:
            c = self.conn()
        aio = c.aio
        if aio is None:
            return False
        n = len(buf)
        if write:
            def done(rv):
                cb(None if rv >= 0 else self._native_error(c, rv, f"write {name}"))
        else:
            def done(rv):
                if rv >= 0:
                    if rv < n:                  # past the end: zeros
                        buf[rv:] = bytes(n - rv)
                    cb(None)
                elif rv == -errno.ENOENT:
                    buf[:] = bytes(n)
                    cb(None)
                else:
                    cb(self._native_error(c, rv, f"read {name}"))
        aio.start(write, name.encode(), offset, buf, done)
        return True

    def after_batch(self, fn):
        """In a submit_io callback: run fn() once the completions that arrived with it
        are handled, and True (else False: call it yourself)."""
        c = self._conn
        return c is not None and c.aio is not None and c.aio.after_batch(fn)

    def _native_error(self, c, rv, what):
        if rv == -errno.ESHUTDOWN:
            self._mark_dead(c)
        return error(-rv, what)

    def _native_retry(self, start):
        """start(conn).result(), once more on a new handle after a blocklist (the
        synchronous reads and unleased writes, as _sync)."""
        c = self.conn()
        try:
            return start(c).result()
        except Blocklisted:
            self._mark_dead(c)
        return start(self.conn()).result()

    def stat(self, name):
        check_name(name)
        try:
            return self._sync(f"stat {name}", lambda c: c.io.stat(name))[0]
        except NotFound:
            return None

    def delete(self, name, *, lease=None):
        check_name(name)
        try:
            if lease is None:
                self._sync(f"delete {name}", lambda c: c.io.remove_object(name))
            else:
                self._guarded_sync(name, lease, f"delete {name}", lambda w: w.remove(),
                                   create=False)
        except NotFound:
            return False
        return True

    def copy(self, src, dst, *, lease=None):
        check_name(src)
        check_name(dst)
        try:
            data = self._read_whole(src)
        except NotFound:
            data = b""
        self.replace(dst, data, lease=lease)

    # -- whole objects ------------------------------------------------------------
    def _read_whole(self, name):
        """The whole object, read consistently in one op (NotFound if missing)."""
        def read(c):
            size = c.io.stat(name)[0]
            want = max(size + 4096, 65536)
            while True:
                data = c.io.read(name, want, 0)
                if len(data) < want:
                    return data
                want *= 2
        return self._sync(f"read {name}", read)

    def get(self, name):
        check_name(name)
        return self._read_whole(name)

    def replace(self, name, data, *, lease=None):
        check_name(name)
        data = bytes(data)
        if lease is None:
            self._sync(f"replace {name}", lambda c: c.io.write_full(name, data))
        else:
            self._guarded_sync(name, lease, f"replace {name}", lambda w: w.write_full(data))

    def put_if_absent(self, name, data):
        check_name(name)
        data = bytes(data)

        def put(c):
            w = c.io.create_write_op()
            try:
                w.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
                w.write_full(data)
                c.io.operate_write_op(w, name)
            finally:
                c.io.release_write_op(w)
        try:
            self._sync(f"put {name}", put)
        except Exists:
            return False
        return True

    def list(self, prefix=""):
        try:
            for obj in self.conn().io.list_objects():
                if obj.key.startswith(prefix):
                    yield obj.key
        except rados.Error as e:
            raise wrap(e, f"list pool {self.cfg.pool}") from None

    def info(self):
        """used: the bytes of this store's objects (exact: pool statistics lag behind
        and cover the whole pool, so this stats every object -- O(objects), through
        the aio queue); free: the cluster's available bytes (needs a ceph-mgr)."""
        used, window = 0, collections.deque()

        def settle(f):
            try:
                return f.result()[1] or 0
            except NotFound:       # deleted meanwhile
                return 0
        for n in self.list():
            window.append(self._submit(f"stat {n}", lambda c, cb, n=n: c.io.aio_stat(n, cb)))
            if len(window) >= 4 * self.cfg.queue_depth:   # bounded memory
                used += settle(window.popleft())
        used += sum(settle(f) for f in window)
        cluster = self._sync("cluster stats", lambda c: c.cluster.get_cluster_stats())
        return StoreInfo(used=used, free=cluster["kb_avail"] * 1024)

    # -- fencing: every leased mutation carries a generation guard -------------------
    def _guarded(self, name, lease, what, build, *, create=True):
        """Submit build(write_op) on `name` under `lease`: the op first asserts, in the
        same atomic RADOS op, that the object was never written under a newer generation
        of the lease, and records ours. Refused -> Fenced."""
        self.check_lease(lease, self.conn())

        def start(c, cb):
            w = _guard_op(c, lease, build, create)
            try:
                return c.io.operate_aio_write_op(w, name, oncomplete=cb)
            finally:
                c.io.release_write_op(w)
        return self._submit(what, start)

    def _guarded_sync(self, name, lease, what, build, *, create=True):
        """_guarded, waiting for the commit (no retry: a blocklisted holder is fenced)."""
        self.check_lease(lease, self.conn())

        def run(c):
            w = _guard_op(c, lease, build, create)
            try:
                c.io.operate_write_op(w, name)
            finally:
                c.io.release_write_op(w)
        self._sync(what, run, retry=False)


def _guard_op(c, lease, build, create):
    """A write op: [create,] assert fence key < generation+1, set it, build(op)."""
    key = FENCE_KEY + lease.name
    w = c.io.create_write_op()
    try:
        if create:
            w.new(rados.LIBRADOS_CREATE_IDEMPOTENT)
        w.omap_cmp(key, gen_key(lease.generation + 1), rados.LIBRADOS_CMPXATTR_OP_LT)
        c.io.set_omap(w, (key,), (gen_key(lease.generation).encode(),))
        build(w)
    except BaseException:
        c.io.release_write_op(w)
        raise
    return w


def _check_range(offset, length):
    if offset < 0 or length < 0:
        raise InvalidArgument(f"bad range: offset {offset}, length {length}")
