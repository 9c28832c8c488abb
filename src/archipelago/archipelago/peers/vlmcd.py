"""vlmcd: volume I/O split into per-object blocker I/O through mapperd's maps.

Clients send every volume request here (archipelago.client):
  READ  target VOL or VOL@SNAP, offset, size -> MAPR, then one blocker READ per
        extent straight into the reply buffer; unmapped extents are zero-filled
  WRITE target VOL -> MAPW (copy-up done by mapperd), one blocker WRITE per extent
  FLUSH target VOL -> drain the volume's writes, blocker FLUSH, mapperd flush
  calls -> forwarded to mapperd; snapshot, close, remove, resize and rename first
        *freeze* the volume: new I/O waits, in-flight writes drain, then the call
        runs and the volume's cached mappings are dropped.

Mapping cache (mapcache.py): mapperd promises that an object returned writable
by MAPW stays writable until the volume's epoch changes, and the map records
writes per chunk (its dirty bitmap), so vlmcd keeps, per volume, the objects and
chunks it has written and serves later writes and reads of those chunks without
asking mapperd. A read it cannot serve so asks for the mappings of the whole
objects it falls in; mapperd says whether it answered holding the volume's lease
(nobody else can change the map then), and if so vlmcd keeps them too, so later
reads of those objects -- base or origin chunks after a snapshot or in a clone,
holes -- need no round trip (mapcache.py has the rules).
The caches of all volumes together hold at most MAX_CACHED objects. Epoch changes
made through this vlmcd (snapshot, ...) drop the cache; a change vlmcd cannot
see (the lock broken and taken by another host) is bounded by `map_cache_ttl`:
the cache is trusted for that many seconds after mapperd last confirmed it, well
inside the lease TTL.
"""
import logging
import threading
import time
from collections import OrderedDict

from .. import config as C
from ..errors import ArchipelagoError, BackendError, Unsupported
from . import protocol as P
from .mapcache import MapCache, clip
from .transport import PEER_GONE, retrying

log = logging.getLogger(__name__)

MAP_CACHE_TTL = 5.0
MAX_CACHED = 65536      # cached object mappings across all volumes (~10 MiB)
MAX_VOLUMES = 4096      # idle per-volume states kept (LRU)
MAX_PREFETCHED = 8192   # snapshot mappings fetched ahead of their reads (map_read_batch)
FANOUT = 16             # object requests in flight per volume request
RETRY_FOR = 30.0        # seconds idempotent requests are retried while a peer restarts

# [vlmcd] options (type = vlmcd), besides the common ones.
OPTIONS = [
    C.Option("mapper_port", 1001, C.integer(0, 65535), "mapperd's port"),
    C.Option("blocker_port", 1000, C.integer(0, 65535), "the data blocker's port"),
    C.Option("retry_for", RETRY_FOR, float,
             "seconds vlmcd retries volume I/O while mapperd or a blocker restarts"),
    C.Option("map_cache_ttl", MAP_CACHE_TTL, float,
             "seconds vlmcd trusts a write mapping without asking mapperd again "
             "(keep well below mapperd's lease_ttl)"),
]
FREEZING = {"snapshot", "close", "remove", "resize", "rename", "adopt"}


_ZERO = memoryview(bytes(4 << 20))


def zeros(n):
    """n zero bytes without allocating (big fresh allocations cost page faults)."""
    global _ZERO
    if n > len(_ZERO):
        _ZERO = memoryview(bytes(n))
    return _ZERO[:n]


class _Volume:
    """Per-volume state: in-flight I/O, freeze, and the write-mapping cache."""

    def __init__(self):
        # a plain Lock under the Condition: `with lock` is one C call per request (the
        # hot enter/leave); `with cond` would add two Python frames and an RLock
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.active = 0
        self.frozen = 0
        self.cache = None         # MapCache once the volume's geometry is known
        self.refreshing = False   # a read-ahead confirmation of the cache is running

    def enter(self):
        with self.cond:
            while self.frozen:
                self.cond.wait()
            self.active += 1

    def leave(self):
        with self.lock:
            self.active -= 1
            if self.active == 0 and self.frozen:    # only a freeze waits for zero
                self.cond.notify_all()

    def freeze(self):
        with self.cond:
            self.frozen += 1
            while self.active:
                self.cond.wait()

    def thaw(self, forget=True):
        with self.cond:
            self.frozen -= 1
            if forget:
                self.cache = None
            self.cond.notify_all()


class Vlmcd:
    """Request handler; `t` reaches mapperd at `mapper_port`, data at `blocker_port`."""

    def __init__(self, transport, mapper_port, blocker_port, map_cache_ttl=MAP_CACHE_TTL,
                 max_cached=MAX_CACHED, retry_for=RETRY_FOR):
        self.t = transport
        self.retry_for = retry_for
        self.mapper = mapper_port
        self.blocker = blocker_port
        self.ttl = map_cache_ttl
        self.max_cached = max_cached
        self._vols = OrderedDict()      # name -> _Volume, least recently used first
        self._lock = threading.Lock()
        # (snapshot spec, offset, length) -> extents from a map_read_batch, used once
        # by the READ of exactly that range (a snapshot's map never changes)
        self._prefetched = {}
        self._forgets = 0               # bumped by _forget_prefetched

    def vol(self, name):
        with self._lock:
            return self._vol_locked(name)

    def _vol_locked(self, name):
        """The volume's state, made if new and marked most recently used (under _lock)."""
        v = self._vols.get(name)
        if v is None:
            v = self._vols[name] = _Volume()
            self._trim()
        else:
            self._vols.move_to_end(name)
        return v

    def _current(self, name, v):
        with self._lock:
            return self._vols.get(name) is v

    def enter(self, name):
        """The volume's state with one request counted in (waits while it is frozen);
        the caller calls `leave()` on it when the request is done. Public for an
        in-process frontend (nbd/colocated.py) that does vlmcd's I/O steps itself.

        Looked up and counted under vlmcd's lock, so _trim (which drops idle
        entries under that lock) cannot drop it in between: a request counted on
        a dropped entry would escape the next freeze."""
        while True:
            with self._lock:
                v = self._vol_locked(name)
                with v.lock:
                    if not v.frozen:
                        v.active += 1
                        return v
            v.enter()               # frozen: wait outside vlmcd's lock, then re-check
            if self._current(name, v):
                return v
            v.leave()

    _entered = enter

    def _frozen(self, name):
        """The volume's state, frozen and drained (re-checked as in enter)."""
        while True:
            v = self.vol(name)
            v.freeze()
            if self._current(name, v):
                return v
            v.thaw(forget=False)

    def _trim(self):
        """Forget idle volumes beyond MAX_VOLUMES (caller holds self._lock): requests
        for any name, even bad ones, must not grow vlmcd's memory without bound."""
        for name in list(self._vols):
            if len(self._vols) <= MAX_VOLUMES:
                return
            v = self._vols[name]
            if not v.active and not v.frozen:
                del self._vols[name]

    def _bound_caches(self):
        """Drop the caches of the least recently used volumes beyond max_cached entries
        (a node may have a thousand volumes open; the cache must not grow with them)."""
        with self._lock:
            total = sum(len(v.cache) for v in self._vols.values() if v.cache is not None)
            for name in list(self._vols):
                if total <= self.max_cached:
                    break
                v = self._vols[name]
                if v.cache is not None:
                    total -= len(v.cache)
                    v.cache = None
                if not v.active and not v.frozen:
                    del self._vols[name]

    def __call__(self, req):
        if req.flags & P.XF_CALL:
            return self._call(req)
        if req.op == P.X_READ:
            return self.read(req)
        if req.op == P.X_WRITE:
            return self.write(req)
        if req.op in (P.X_FLUSH, P.X_SYNC):
            self.flush(req.target)
            return 0
        raise Unsupported(f"vlmcd: op {P.OP_NAMES.get(req.op, req.op)} is not served")

    def retrying(self, fn, *args, **kw):
        """fn(*args, **kw), again while its peer restarts (see transport.retrying).

        Only for idempotent requests -- MAPR, MAPW, geometry, object READ/WRITE,
        FLUSH -- so that a kill -9 and restart of mapperd or a blocker is a pause
        for the volume's users, not an I/O error."""
        return retrying(self.retry_for, fn, *args, **kw)

    # -- mapperd calls -----------------------------------------------------------------
    def mcall(self, method, target="", **args):
        from .mapperd import OPS
        h, _ = self.t.call(self.mapper, OPS.get(method, P.X_INFO), method, target, **args)
        return h.get("r")

    def _call(self, req):
        h, _payload = P.unpack(req.data)
        method = str(h.pop("m", ""))
        vol = req.target.partition("@")[0]
        if method in FREEZING and vol and "@" not in req.target:
            v = self._frozen(vol)
            try:
                result = self.mcall(method, req.target, **h)
            finally:
                v.thaw()
        elif method == "map_write_batch" and vol and "@" not in req.target:
            result = self._map_write_batch(vol, h)
        elif method == "map_read_batch" and "@" in req.target:
            result = self._map_read_batch(req.target, h)
        else:
            result = self.mcall(method, req.target, **h)
        if method in FREEZING and vol:
            self._forget_prefetched(vol)
        return P.pack({"r": result})

    def _map_read_batch(self, spec, h):
        """MAPR of a snapshot's ranges ahead of their reads (a sync send): each READ
        of exactly one of them then needs no MAPR of its own."""
        before = self._forgets
        r = self.mcall("map_read_batch", spec, **h)
        with self._lock:
            if self._forgets != before:         # a removal may have overtaken us
                return {"epoch": r["epoch"], "ranges": 0}
            if len(self._prefetched) + len(h["ranges"]) > MAX_PREFETCHED:
                self._prefetched.clear()        # reads that never came
            for (offset, n), extents in zip(h["ranges"], r["extents"], strict=True):
                self._prefetched[(spec, offset, n)] = extents
        return {"epoch": r["epoch"], "ranges": len(h["ranges"])}

    def _forget_prefetched(self, vol):
        """A snapshot removed (or renamed, ...) through us: drop what we hold of it."""
        with self._lock:
            self._forgets += 1
            for key in [k for k in self._prefetched if k[0].partition("@")[0] == vol]:
                del self._prefetched[key]

    def _map_write_batch(self, name, h):
        """MAPW of many ranges (a sync commit's group): the writes that follow hit
        the cache. Counted as a request, so no snapshot slips in before we learn."""
        v = self._entered(name)
        try:
            c = self._cache(v, name)
            r = self.mcall("map_write_batch", name, **h)
            with v.cond:
                for (offset, _n), extents in zip(h["ranges"], r["extents"], strict=True):
                    c.learn(offset, {"epoch": r["epoch"], "extents": extents})
            self._bound_caches()
            return r
        finally:
            v.leave()

    # -- mappings ---------------------------------------------------------------------
    def _cache(self, v, spec):
        c = v.cache
        if c is None:
            g = self.retrying(self.mcall, "geometry", spec)
            with v.cond:
                # concurrent first writes each asked for the geometry: keep the first
                # cache made, or what the others learned into it would be lost (and
                # reads of those chunks would ask mapperd for the rest of the epoch)
                c = v.cache
                if c is None:
                    c = v.cache = MapCache(g["object_size"], g.get("chunk_size"),
                                           g.get("size"))
        return c

    def map_write(self, v, name, offset, length):
        c = v.cache
        ext = c.lookup(offset, length, self.ttl) if c is not None else None
        if ext is None:
            c = self._cache(v, name)
            r = self.retrying(self.mcall, "map_write", name, offset=offset, length=length)
            with v.cond:
                c.learn(offset, r)
            self._bound_caches()
            ext = r["extents"]
        return ext

    def map_read(self, v, spec, offset, length):
        # Chunks this node wrote in the current epoch are in their own object (the
        # map says so since the MAPW); anything else may fall through to a base
        # object or be unwritten, which only mapperd knows.
        ext = self.cached(v, spec, offset, length, write=False)
        if ext is not None:
            return ext
        if "@" in spec and self._prefetched:
            with self._lock:
                ext = self._prefetched.pop((spec, offset, length), None)
            if ext is not None:
                return ext
        if "@" in spec:
            return self.retrying(self.mcall, "map_read", spec, offset=offset,
                                 length=length)["extents"]
        c = self._cache(v, spec)
        # ask for whole objects only while mapperd holds the lease (else nothing is kept)
        whole = c.whole(offset, length) if c.lease_seen(self.ttl) else None
        if whole is None:
            r = self.retrying(self.mcall, "map_read", spec, offset=offset, length=length)
            c.saw_epoch(r["epoch"], r.get("held", False))
            return r["extents"]
        # the whole objects: what the next reads of them need (learned if held)
        wgen = c.wgen
        r = self.retrying(self.mcall, "map_read", spec, offset=whole[0], length=whole[1])
        with v.cond:
            if v.cache is c:
                c.learn_read(whole[0], r, wgen)
                c.saw_epoch(r["epoch"], r.get("held", False))
        self._bound_caches()
        return clip(r["extents"], offset - whole[0], length)

    def cached(self, v, spec, offset, length, write):
        """The cached extents of the range (map_read/map_write without mapperd), or
        None when a round trip is needed. A read hit on a cache past half its TTL
        confirms the epoch in the background (one MAPR), so a busy volume keeps
        its reads off mapperd instead of stalling one in every TTL on a MAPR; the
        rule stays the same: nothing is served from a cache older than the TTL."""
        c = v.cache
        if c is None or "@" in spec:
            return None
        ext = c.lookup(offset, length, self.ttl, write=write)
        if (ext is not None and not write and not v.refreshing
                and time.monotonic() - max(c.confirmed, min(c.seen, c.held)) > self.ttl / 2):
            v.refreshing = True
            threading.Thread(target=self._confirm, args=(v, spec, c), daemon=True,
                             name="vlmcd-confirm").start()
        return ext

    def _confirm(self, v, spec, c):
        try:
            r = self.mcall("map_read", spec, offset=0, length=1)
            c.saw_epoch(r["epoch"], r.get("held", False))
        except ArchipelagoError as e:
            log.debug("%s: background map confirmation failed: %s", spec, e)
        finally:
            v.refreshing = False

    # -- I/O ---------------------------------------------------------------------------
    def read(self, req):
        v = self._entered(req.target.partition("@")[0])
        try:
            extents = self.map_read(v, req.target, req.offset, req.size)
            self._object_io(P.X_READ, req, extents)
            return req.size
        finally:
            v.leave()

    def write(self, req):
        v = self._entered(req.target)
        try:
            extents = self.map_write(v, req.target, req.offset, req.size)
            self._object_io(P.X_WRITE, req, extents, req.flags & (P.XF_FUA | P.XF_FLUSH))
            return req.size
        finally:
            v.leave()

    def _object_io(self, op, req, extents, flags=0):
        """One blocker request per extent, all in flight at once, straight from/into
        the slices of the volume request's buffer; unmapped read extents are zeros."""
        jobs, pos = [], 0
        for obj, ooff, n in extents:
            part = req.buf[pos:pos + n]
            pos += n
            if obj is None:
                if op == P.X_WRITE:
                    raise BackendError(f"mapperd mapped a write of {req.target} to no object")
                part[:] = zeros(n)
                continue
            io = {"out": part} if op == P.X_READ else {"data": part, "flags": flags}
            jobs.append((obj, ooff, n, io))
        if len(jobs) == 1:
            obj, ooff, n, io = jobs[0]
            self.retrying(self.t.request, self.blocker, op, obj, offset=ooff, size=n, **io)
            return
        error = None
        for i in range(0, len(jobs), FANOUT):
            error = self._fan_out(op, jobs[i:i + FANOUT]) or error
        if error is not None:
            raise error

    def _fan_out(self, op, jobs):
        """Start `jobs` together, wait for all; returns the first error (or None)."""
        started = [self.t.start(self.blocker, op, obj, offset=ooff, size=n, **io)
                   for obj, ooff, n, io in jobs]
        error = None
        for handle, (obj, ooff, n, io) in zip(started, jobs, strict=True):
            try:
                handle.wait()            # every one, even after a failure: buffers in use
            except ArchipelagoError as e:
                if e.errno not in PEER_GONE:
                    error = error or e
                    continue
                try:                     # the blocker is restarting: redo this one
                    self.retrying(self.t.request, self.blocker, op, obj, offset=ooff,
                                  size=n, **io)
                except ArchipelagoError as e2:
                    error = error or e2
        return error

    def flush(self, name):
        v = self._frozen(name)
        try:
            self.retrying(self.t.request, self.blocker, P.X_FLUSH, "")
            self.retrying(self.mcall, "flush", name)
        finally:
            v.thaw(forget=False)
