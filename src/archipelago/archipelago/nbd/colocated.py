"""The co-located volume data path: nbdd *is* the node's vlmcd (`[nbd] datapath = colocated`).

With the peers data path (the default provider, volume.py) an NBD request goes
nbdd -> xseg -> vlmcd -> xseg -> mapperd (MAPR/MAPW) and -> xseg -> blocker ->
store, three processes and up to four segment hops. Co-located, nbdd runs the
vlmcd role in its own process instead of a separate `vlmcd` peer:

* it binds vlmcd's ports on the node's segment with the very same `Vlmcd`
  handler (peers/vlmcd.py), so every other client of the node (`vlmc snapshot`,
  `archipelago.client`, a second nbdd on the peers path, import/export) talks to
  the *same* object as nbdd's own I/O: one per-volume freeze (a snapshot, close,
  resize, rename or remove drains nbdd's in-flight writes exactly as it drains
  anybody's), one write-mapping cache dropped on the same epoch changes, the
  same `map_cache_ttl` bound for changes made by another host, and the locks
  taken the same way (mapperd takes the node's lock on MAPW; vlmcd holds none);
* nbdd's requests call that handler directly (no segment hop, no copy: the
  NBD buffer is the request buffer) and mapping requests go to mapperd over
  the segment as vlmcd's do;
* object I/O on the data blocker's port (`blocker_port`: READ, WRITE, FLUSH)
  runs on an in-process ObjectStore of the blocker's type and settings
  (FileStore: preadv/pwrite on its own fd cache straight into the NBD buffers;
  RadosStore: its own cluster handle, aio for multi-object requests). Every
  other request to the blocker (mapperd's copy-ups, hash, gc) still goes to the
  blocker peer, which shares the store: object names are never reused (fresh
  uids; copies land on new names), so two fd caches over one directory agree.

So the node does not run vlmcd as its own process: `archipelago start` runs
nbdd as the vlmcd role's process (peers/config.py `processes`; same pid file,
log and stop as the role). vlmcd stays in `[PEERS] ROLES` (clients find its
port there). If vlmcd's port is already bound, nbdd refuses to start and says so.
"""
import contextlib
import functools
import logging
import threading

from .. import config as C
from ..errors import ArchipelagoError, BackendError, InvalidArgument, NotFound, Unavailable
from ..peers import protocol as P
from ..peers.transport import Done, Reply, Request, Transport
from ..peers.vlmcd import FANOUT, zeros
from .backend import Backend
from .registry import Provider

log = logging.getLogger(__name__)

_DIRECT = {P.X_READ, P.X_WRITE, P.X_FLUSH, P.X_SYNC}


class DirectTransport(Transport):
    """vlmcd's transport: object I/O on `blocker_port` goes to `store` in this process,
    everything else (mapperd calls, other ports) through `inner`."""

    def __init__(self, inner, blocker_port, store):
        self.inner = inner
        self.blocker = blocker_port
        self.store = store
        self.aio = hasattr(store, "aio_readinto") and hasattr(store, "aio_write")
        # memd keeps its objects in the blocker's memory: nothing to share, so its
        # object I/O stays with the blocker peer (store None)

    def _direct(self, port, op, flags):
        return (port == self.blocker and op in _DIRECT and not flags & P.XF_CALL
                and self.store is not None)

    def request(self, port, op, target, *, offset=0, size=0, flags=0, data=b"",
                out=None, reply_cap=0):
        if not self._direct(port, op, flags):
            return self.inner.request(port, op, target, offset=offset, size=size,
                                      flags=flags, data=data, out=out, reply_cap=reply_cap)
        s = self.store
        if op == P.X_READ:
            s.readinto(target, offset, out[:size])
            return Reply(size)
        if op == P.X_WRITE:
            if flags & P.XF_FLUSH:
                s.flush()
            s.write(target, offset, data[:size], fua=bool(flags & P.XF_FUA))
            return Reply(size)
        s.flush()
        return Reply(0)

    def start(self, port, op, target, **fields):
        flags = fields.get("flags", 0)
        if not self._direct(port, op, flags):
            return self.inner.start(port, op, target, **fields)
        if self.aio and op in (P.X_READ, P.X_WRITE) and not flags & P.XF_FLUSH:
            off, size = fields.get("offset", 0), fields.get("size", 0)
            try:
                if op == P.X_READ:
                    fut = self.store.aio_readinto(target, off, fields["out"][:size])
                else:
                    fut = self.store.aio_write(target, off, fields["data"][:size],
                                               fua=bool(flags & P.XF_FUA))
            except ArchipelagoError as e:
                return _Failed(e)
            return _Aio(fut, size)
        return Done(self.request, port, op, target, **fields)


class _Aio:
    __slots__ = ("fut", "size")

    def __init__(self, fut, size):
        self.fut, self.size = fut, size

    def wait(self):
        self.fut.result()
        return Reply(self.size)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error

    def wait(self):
        raise self.error


class ColocatedBackend(Backend):
    """One volume or snapshot, served by the in-process vlmcd.

    A request whose extents are all on the in-process store takes vlmcd's own
    steps (its public enter/map_read/map_write/cached) without its transport:
    enter the volume (waits while it is frozen; counted for the next freeze),
    map the range (vlmcd's cache, or MAPR/MAPW to mapperd), the object I/O on the
    store, leave. Anything else
    (no direct store: memd) is vlmcd.read/write itself."""

    def __init__(self, vlmcd, spec, size, readonly, parallel):
        self.vlmcd = vlmcd
        self.spec = spec
        self.vol = spec.partition("@")[0]
        self._size = size
        self._ro = readonly
        self._parallel = parallel
        t = vlmcd.t
        self.store = t.store if isinstance(t, DirectTransport) else None
        self.aio = self.store is not None and t.aio
        # the store's lean asynchronous path (RadosStore.submit_io), and its hook to
        # send the replies of completions that arrive together at once (defer)
        self._io = getattr(self.store, "submit_io", None) if self.aio else None
        after = getattr(self.store, "after_batch", None) if self.aio else None
        if after is not None:
            self.defer = after
        self.description = f"archipelago volume {spec} (co-located)"

    def size(self):
        return self._size

    def pread(self, buf, offset):
        store, vd = self.store, self.vlmcd
        if store is None:
            vd.read(Request(P.X_READ, self.spec, offset, len(buf), 0, buf))
            return
        v = vd.enter(self.vol)
        try:
            ext = vd.map_read(v, self.spec, offset, len(buf))
            if len(ext) == 1 and ext[0][0] is not None:
                store.readinto(ext[0][0], ext[0][1], buf)
                return
            jobs, pos = [], 0
            for obj, ooff, n in ext:
                part = buf[pos:pos + n]
                pos += n
                if obj is None:
                    part[:] = zeros(n)
                else:
                    jobs.append((obj, ooff, part))
            self._run(store.readinto, store.aio_readinto if self.aio else None, jobs)
        finally:
            v.leave()

    def pwrite(self, buf, offset):
        self._write(buf, offset, False)

    def pwrite_fua(self, buf, offset):
        """A FUA write: durable when it returns. The MAPW that mapped it committed
        the map change already, so only the objects written need syncing (a
        fdatasync each), not the whole volume frozen and flushed."""
        self._write(buf, offset, True)

    def _write(self, buf, offset, fua):
        store, vd = self.store, self.vlmcd
        n = len(buf)
        if store is None:
            vd.write(Request(P.X_WRITE, self.spec, offset, n, P.XF_FUA if fua else 0,
                             memoryview(buf), n))
            return
        v = vd.enter(self.spec)
        try:
            ext = vd.map_write(v, self.spec, offset, n)
            if len(ext) == 1 and ext[0][0] is not None:       # the common case
                store.write(ext[0][0], ext[0][1], buf, fua=fua)
                return
            if any(obj is None for obj, _, _ in ext):
                raise BackendError(f"mapperd mapped a write of {self.spec} to no object")
            view, jobs, pos = memoryview(buf), [], 0
            for obj, ooff, k in ext:
                jobs.append((obj, ooff, view[pos:pos + k]))
                pos += k
            write = functools.partial(store.write, fua=fua)
            aio = (functools.partial(store.aio_write, fua=fua) if self.aio else None)
            self._run(write, aio, jobs)
        finally:
            v.leave()

    def submit_pread(self, buf, offset, done):
        """Asynchronous READ (transmission's optional hook) on a store with aio: a
        cached mapping, then one aio read; `done(exc)` when it is complete, the
        volume left only then (a freeze waits for it). False: use pread instead."""
        return self._submit(self.vol, buf, offset, done, False)

    def submit_pwrite(self, buf, offset, done):
        """Asynchronous WRITE, as submit_pread: a cached write mapping (MAPW done for
        this chunk and epoch), then one aio write; the volume is left when it is
        committed."""
        return self._submit(self.spec, buf, offset, done, True)

    def _submit(self, spec, buf, offset, done, write):
        # the per-request hot path of nbdd on RADOS: one frame for the backend, one
        # closure, the store's lean submit_io (no Future)
        if not self.aio:
            return False
        vd = self.vlmcd
        v = vd.enter(spec)
        try:
            # vlmcd's cached mapping only: the asynchronous path never waits for a
            # round trip on the connection's loop; a miss goes to a worker instead
            ext = vd.cached(v, self.spec, offset, len(buf), write)
            if ext is None or len(ext) != 1 or ext[0][0] is None:
                v.leave()
                return False
            obj, ooff, _n = ext[0]
            leave = v.leave
            io = self._io
            if io is not None:
                def finished_io(exc):
                    leave()
                    done(exc)
                if io(write, obj, ooff, buf, finished_io):
                    return True
            aio = self.store.aio_write if write else self.store.aio_readinto
            fut = aio(obj, ooff, buf)
        except BaseException:
            v.leave()
            raise

        def finished(f):
            leave()
            done(f.exception())
        fut.add_done_callback(finished)
        return True

    @staticmethod
    def _run(sync, aio, jobs):
        """The object I/O of one request: all in flight at once where the store has
        aio (RADOS), else one after the other (a local file: no waiting to overlap);
        every one finishes before the buffer is given back, the first error raised."""
        if aio is None or len(jobs) < 2:
            for obj, ooff, part in jobs:
                sync(obj, ooff, part)
            return
        error = None
        for i in range(0, len(jobs), FANOUT):
            futs = [aio(obj, ooff, part) for obj, ooff, part in jobs[i:i + FANOUT]]
            for f in futs:
                try:
                    f.result()
                except ArchipelagoError as e:
                    error = error or e
        if error is not None:
            raise error

    def flush(self):
        if not self._ro:
            self.vlmcd.flush(self.spec)

    def trim(self, offset, length):
        return None                # the engine has no discard yet

    def extents(self, offset, length):
        """base:allocation: holes where the map has no object (never written, nor
        anywhere in the snapshot/clone chain the map's view resolves), from one MAPR
        to mapperd for the range (at most volume.EXTENTS_SPAN of it). mapperd is
        the authority: every write of this node was mapped there (MAPW) first."""
        from .volume import EXTENTS_SPAN, allocation
        n = min(length, EXTENTS_SPAN, self._size - offset)
        vd = self.vlmcd
        r = vd.retrying(vd.mcall, "map_read", self.spec, offset=offset, length=n)
        return allocation(r["extents"]) or [(n, 0)]

    @property
    def read_only(self):
        return self._ro

    def can_trim(self):
        return False

    def can_extents(self):
        return True

    def can_multi_conn(self):
        return True                # one vlmcd for the node: flush covers every connection

    def parallel(self):
        return self._parallel

    def block_size(self):
        return (1, 4096, 32 << 20)


class ColocatedProvider(Provider):
    """Runs the node's vlmcd role in this process and serves its volumes.

    `conf`: the node's configuration file (default lookup as archipelago.config).
    `store`: the data ObjectStore to use instead of one built from the blocker's
    section (tests)."""

    def __init__(self, conf=None, store=None, start=True, vlmcd=None, parallel=False):
        self.conf = conf
        self._store = store
        self._own_store = store is None
        self.peer = self._seg = None
        self.vlmcd = vlmcd
        self.parallel = parallel
        self._lock = threading.Lock()
        if start and vlmcd is None:
            self.start()

    def start(self):
        import xseg

        from ..peers import config as PC
        from ..peers.blocker import make_store
        from ..peers.runtime import _role_peer_class
        from ..peers.vlmcd import Vlmcd
        from ..peers.xseg_transport import XsegTransport
        cfg = C.load(self.conf)
        xcfg, roles = PC.check(cfg)
        role = PC.find_type(roles, "vlmcd")
        o = role.opts
        blocker = next((r for r in roles if r.is_blocker and r.port == o.blocker_port), None)
        if blocker is None:
            raise InvalidArgument(f"[{role.name}] blocker_port {o.blocker_port} is not a "
                                  "blocker of this node")
        try:
            self._seg = xseg.Segment.join(xcfg.segment_name)
        except xseg.XsegError as e:
            raise Unavailable(f"segment {xcfg.segment_name}: {e.strerror} (start the "
                              "node's other roles first: archipelago start)") from None
        try:
            self._seg.check()   # recover the ports of a crashed predecessor (kill -9)
            ports = range(o.portno_start, o.portno_end + 1)
            try:
                self.peer = _role_peer_class()(self._seg, ports, nr_threads=o.nr_threads,
                                               nr_ops=o.nr_ops, log_level=o.log_level,
                                               name=f"{role.name}@nbdd")
            except xseg.XsegError as e:
                raise Unavailable(
                    f"datapath = colocated: cannot bind [{role.name}] ports "
                    f"{ports.start}-{ports.stop - 1} ({e.strerror}); is {role.name} "
                    "running as its own process? With [nbd] datapath = colocated nbdd "
                    f"serves {role.name}: stop it (archipelago stop {role.name})") from None
            if self._store is None and blocker.type != "memd":
                self._store = make_store(cfg, blocker)
            kind = getattr(self._store, "kind", "memd")
            self.parallel = kind not in ("file", "memory")    # latency-bound (RADOS)
            t = DirectTransport(XsegTransport(self.peer, xcfg.request_timeout),
                                o.blocker_port, self._store)
            self.vlmcd = Vlmcd(t, o.mapper_port, o.blocker_port, o.map_cache_ttl,
                               retry_for=o.retry_for)
            self.peer.handler = self.vlmcd
            self.peer.start()
        except BaseException:
            self.close()
            raise
        log.info("co-located data path: serving %s on ports %s, data on %r", role.name,
                 list(ports), self._store)
        return self

    def _mcall(self, method, target="", **args):
        return self.vlmcd.retrying(self.vlmcd.mcall, method, target, **args)

    def open(self, volume, snapshot):
        spec = volume if snapshot is None else f"{volume}@{snapshot}"
        try:
            g = self._mcall("geometry", spec)
        except NotFound:
            raise
        except ArchipelagoError as e:
            if "not found" in str(e).lower() or "no such" in str(e).lower():
                raise NotFound(str(e)) from None
            raise
        ro = snapshot is not None or bool(g.get("readonly"))
        return ColocatedBackend(self.vlmcd, spec, g["size"], ro, self.parallel)

    def names(self):
        try:
            return [n for n in self._mcall("list") if isinstance(n, str)]
        except ArchipelagoError:
            return []

    def close(self):
        """Unbind vlmcd's ports (requests in flight fail back) and close the store."""
        with self._lock:
            peer, self.peer = self.peer, None
            seg, self._seg = self._seg, None
            store = self._store if self._own_store else None
            self._store = None if self._own_store else self._store
        if peer is not None:
            with contextlib.suppress(Exception):
                peer.close()
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()
        if seg is not None:
            with contextlib.suppress(Exception):
                seg.close()


def local(data_store, map_store=None, **kw):
    """(provider, client) over the in-process peer stack of archipelago.client.local:
    its vlmcd port rebound to a Vlmcd whose object I/O goes straight to `data_store`
    (the co-located path without a segment: tests and benchmarks). The client's
    calls (snapshot, ...) reach that same Vlmcd, so they freeze the NBD I/O too."""
    from ..peers.local import BLOCKERB, MAPPERD, VLMCD, local_stack
    from ..peers.vlmcd import Vlmcd
    c = local_stack(data_store, map_store, **kw)
    vd = Vlmcd(DirectTransport(c.t, BLOCKERB, data_store), MAPPERD, BLOCKERB)
    c.t.bind(VLMCD, vd)
    return ColocatedProvider(vlmcd=vd, parallel=data_store.kind not in ("file", "memory"),
                             start=False), c
