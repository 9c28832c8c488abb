"""vlmcd: volume I/O split into per-object blocker I/O through mapperd's maps.

Clients send every volume request here (archipelago.client):
  READ  target VOL or VOL@SNAP, offset, size -> MAPR, then one blocker READ per
        extent straight into the reply buffer; unmapped extents are zero-filled
  WRITE target VOL -> MAPW (copy-up done by mapperd), one blocker WRITE per extent
  FLUSH target VOL -> drain the volume's writes, blocker FLUSH, mapperd flush
  calls -> forwarded to mapperd; snapshot, close, remove, resize and rename first
        *freeze* the volume: new I/O waits, in-flight writes drain, then the call
        runs and the volume's cached mappings are dropped.

Mapping cache: mapperd promises that an object returned writable by MAPW stays
writable until the volume's epoch changes, and the map records writes per chunk
(its dirty bitmap), so vlmcd keeps, per volume, the object of every chunk it has
written and answers later writes to those chunks without asking mapperd. Reads
always ask (an unwritten chunk may fall through to a base object). Epoch changes
made through this vlmcd (snapshot, ...) drop the cache; a change vlmcd cannot
see (the lock broken and taken by another host) is bounded by `map_cache_ttl`:
the cache is trusted for that many seconds after mapperd last confirmed it, well
inside the lease TTL.
"""
import logging
import threading
import time

from .. import config as C
from ..errors import BackendError, Unsupported
from . import protocol as P

log = logging.getLogger(__name__)

MAP_CACHE_TTL = 5.0

# [vlmcd] options (type = vlmcd), besides the common ones.
OPTIONS = [
    C.Option("mapper_port", 1001, C.integer(0, 65535), "mapperd's port"),
    C.Option("blocker_port", 1000, C.integer(0, 65535), "the data blocker's port"),
    C.Option("map_cache_ttl", MAP_CACHE_TTL, float,
             "seconds vlmcd trusts a write mapping without asking mapperd again "
             "(keep well below mapperd's lease_ttl)"),
]
FREEZING = {"snapshot", "close", "remove", "resize", "rename"}


_ZERO = memoryview(bytes(4 << 20))


def zeros(n):
    """n zero bytes without allocating (big fresh allocations cost page faults)."""
    global _ZERO
    if n > len(_ZERO):
        _ZERO = memoryview(bytes(n))
    return _ZERO[:n]


class _Volume:
    """Per-volume state: in-flight I/O, freeze, geometry and the mapping cache."""

    def __init__(self):
        self.cond = threading.Condition()
        self.active = 0
        self.frozen = 0
        self.object_size = None
        self.chunk_size = None
        self.epoch = None
        self.writable = {}        # chunk index -> own object name (valid in self.epoch)
        self.confirmed = 0.0      # monotonic time mapperd last confirmed the cache

    def enter(self):
        with self.cond:
            while self.frozen:
                self.cond.wait()
            self.active += 1

    def leave(self):
        with self.cond:
            self.active -= 1
            if self.active == 0:
                self.cond.notify_all()

    def freeze(self):
        with self.cond:
            self.frozen += 1
            while self.active:
                self.cond.wait()

    def thaw(self):
        with self.cond:
            self.frozen -= 1
            self.forget()
            self.cond.notify_all()

    def forget(self):
        self.writable.clear()
        self.epoch = None
        self.object_size = None
        self.chunk_size = None


class Vlmcd:
    """Request handler; `t` reaches mapperd at `mapper_port`, data at `blocker_port`."""

    def __init__(self, transport, mapper_port, blocker_port, map_cache_ttl=MAP_CACHE_TTL):
        self.t = transport
        self.mapper = mapper_port
        self.blocker = blocker_port
        self.ttl = map_cache_ttl
        self._vols = {}
        self._lock = threading.Lock()

    def vol(self, name):
        with self._lock:
            v = self._vols.get(name)
            if v is None:
                v = self._vols[name] = _Volume()
            return v

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
            v = self.vol(vol)
            v.freeze()
            try:
                result = self.mcall(method, req.target, **h)
            finally:
                v.thaw()
        else:
            result = self.mcall(method, req.target, **h)
        return P.pack({"r": result})

    # -- mappings ---------------------------------------------------------------------
    def _geometry(self, v, spec):
        if v.object_size is None:
            g = self.mcall("geometry", spec)
            v.chunk_size = g.get("chunk_size") or g["object_size"]
            v.object_size = g["object_size"]
        return v.object_size

    def _cached(self, v, offset, length):
        """Write extents from the cache if every chunk of the range is in it, else None."""
        osz, cs = v.object_size, v.chunk_size
        if not osz or not v.writable or time.monotonic() - v.confirmed > self.ttl:
            return None
        out, pos, end = [], offset, offset + length
        while pos < end:
            obj = v.writable.get(pos // cs)
            if obj is None:
                return None
            n = min(end, (pos // cs + 1) * cs) - pos
            if out and out[-1][0] == obj and out[-1][1] + out[-1][2] == pos % osz:
                out[-1][2] += n
            else:
                out.append([obj, pos % osz, n])
            pos += n
        return out

    def _learn(self, v, offset, r):
        """Remember the chunks a MAPW made writable (valid in its epoch; module doc)."""
        osz, cs = v.object_size, v.chunk_size
        if r["epoch"] != v.epoch:
            v.writable.clear()
            v.epoch = r["epoch"]
        pos = offset
        for obj, ooff, n in r["extents"]:
            if obj is not None and ooff == pos % osz:
                for c in range(pos // cs, (pos + n - 1) // cs + 1):
                    v.writable[c] = obj
            pos += n
        v.confirmed = time.monotonic()

    def map_write(self, v, name, offset, length):
        ext = self._cached(v, offset, length)
        if ext is None:
            self._geometry(v, name)
            r = self.mcall("map_write", name, offset=offset, length=length)
            with v.cond:
                self._learn(v, offset, r)
            ext = r["extents"]
        return ext

    def map_read(self, v, spec, offset, length):
        # Reads always ask mapperd: a chunk not written since the last snapshot may
        # still fall through to a base object, which only the map knows.
        return self.mcall("map_read", spec, offset=offset, length=length)["extents"]

    # -- I/O ---------------------------------------------------------------------------
    def read(self, req):
        v = self.vol(req.target.partition("@")[0])
        v.enter()
        try:
            pos = 0
            for obj, ooff, n in self.map_read(v, req.target, req.offset, req.size):
                part = req.buf[pos:pos + n]
                if obj is None:
                    part[:] = zeros(n)
                else:
                    self.t.request(self.blocker, P.X_READ, obj, offset=ooff, size=n, out=part)
                pos += n
            return req.size
        finally:
            v.leave()

    def write(self, req):
        v = self.vol(req.target)
        v.enter()
        try:
            flags = req.flags & (P.XF_FUA | P.XF_FLUSH)
            pos = 0
            for obj, ooff, n in self.map_write(v, req.target, req.offset, req.size):
                if obj is None:
                    raise BackendError(f"mapperd mapped a write of {req.target} to no object")
                self.t.request(self.blocker, P.X_WRITE, obj, offset=ooff, size=n,
                               data=req.buf[pos:pos + n], flags=flags)
                pos += n
            return req.size
        finally:
            v.leave()

    def flush(self, name):
        v = self.vol(name)
        v.freeze()
        try:
            self.t.request(self.blocker, P.X_FLUSH, "")
            self.mcall("flush", name)
        finally:
            with v.cond:
                v.frozen -= 1
                v.cond.notify_all()
