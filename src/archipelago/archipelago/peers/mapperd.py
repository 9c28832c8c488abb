"""mapperd: the VolumeEngine as a role -- volume metadata, maps and locks.

Its engine keeps maps and locks in the map blocker (blockerm) and volume data in
the data blocker (blockerb), both reached through XsegStore, so mapperd itself
holds no state a kill -9 could lose: every map update is durable in a blocker
before mapperd answers.

Every request is a call (envelope); the method names are the engine's:
  create clone snapshot remove resize rename adopt list info hash diff du gc
  open close lock unlock map_read map_write map_read_batch map_write_batch flush
MAPR/MAPW reply {"epoch": E, "extents": [[object|null, offset, length], ...]}
(null object = reads as zeros); a MAPR of a live volume whose lease this mapperd
held throughout, or of a read-only image, adds "held": true (vlmcd may then keep
the mappings: nobody else can change that map meanwhile). map_write_batch
(ranges [[offset, length], ...], whole) is MAPW of many ranges with one group
commit (volume/batch.py) and replies
{"epoch": E, "extents": [[[object, offset, length], ...] per range]};
map_read_batch (ranges) is MAPR of many ranges alike (vlmcd keeps each mapping
for one READ); map_read_extents is the same call that vlmcd passes through
untouched (a sync send reading a snapshot's objects in-process). The engine's
lock owner is "NODE:ROLE", so all clients of one node share the node's lock, as in
the original archipelago.
"""
import contextlib
import errno
import logging
import threading

from .. import config as C
from ..errors import (
    ArchipelagoError,
    BackendError,
    Fenced,
    InvalidArgument,
    Timeout,
    Unavailable,
    Unsupported,
)
from . import protocol as P

log = logging.getLogger(__name__)

# [mapperd] options (type = mapperd), besides the common ones.
OPTIONS = [
    C.Option("blockerb_port", 1000, C.integer(0, 65535), "the data blocker's port"),
    C.Option("blockerm_port", 1002, C.integer(0, 65535), "the map blocker's port"),
    C.Option("lease_ttl", 30.0, float, "seconds a volume lock lives without renewal"),
]

BATCH_MAX = 4096        # ranges in one map_read_batch (as volume/batch.py's writes)
STORE_FAILURES = (Unavailable, Timeout, BackendError)
STORE_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                errno.ETIMEDOUT, errno.EIO}


def store_failure(e):
    """True for errors that mean "a blocker failed", not "the request was wrong"."""
    return isinstance(e, STORE_FAILURES) or e.errno in STORE_ERRNOS

# method -> the xseg op a client sends it with (for traces and port statistics)
OPS = {
    "create": P.X_CREATE, "clone": P.X_CLONE, "snapshot": P.X_SNAPSHOT,
    "remove": P.X_DELETE, "resize": P.X_TRUNCATE, "rename": P.X_RENAME,
    "adopt": P.X_RENAME,
    "list": P.X_INFO, "info": P.X_INFO, "hash": P.X_HASH, "diff": P.X_INFO,
    "du": P.X_INFO, "gc": P.X_DELETE, "open": P.X_OPEN, "close": P.X_CLOSE,
    "lock": P.X_ACQUIRE, "unlock": P.X_RELEASE, "map_read": P.X_MAPR,
    "map_write": P.X_MAPW, "map_write_batch": P.X_MAPW, "map_read_batch": P.X_MAPR,
    "map_read_extents": P.X_MAPR,
    "flush": P.X_FLUSH, "geometry": P.X_INFO,
}


def chunk_size(object_size):
    """The engine's dirty-bitmap granule: a write may be cached per chunk only."""
    try:
        from ..volume.format import chunk_size as cs
    except ImportError:
        return object_size
    return cs(object_size)


def extents_json(epoch, extents):
    return {"epoch": epoch,
            "extents": [[e.obj, e.obj_offset, e.length] for e in extents]}


def info_json(info):
    return info.to_json() if hasattr(info, "to_json") else dict(info)


class Mapperd:
    """Request handler around one VolumeEngine."""

    def __init__(self, engine):
        self.eng = engine
        self._suspect = set()       # volumes to reload after a store failure
        self._lock = threading.Lock()

    def __call__(self, req):
        if not req.flags & P.XF_CALL:
            raise Unsupported(f"mapperd: raw op {P.OP_NAMES.get(req.op, req.op)} is not "
                              "served; send a call")
        h, _payload = P.unpack(req.data)
        method = str(h.pop("m", ""))
        fn = getattr(self, "c_" + method, None)
        if fn is None:
            raise Unsupported(f"mapperd: unknown call {method!r}")
        log.debug("%s %s %s", method, req.target, h)
        vol = req.target.partition("@")[0] if req.target != "-" else ""
        self._reload_if_suspect(vol)
        try:
            result = fn(req.target, **h)
        except Fenced:
            if method in ("close", "unlock") or not vol:
                raise
            # Our lock was broken (unlock -f elsewhere) or expired; the engine keeps
            # the stale hold until it is dropped, so drop it and try once more: the
            # retry takes the lock again (or fails/waits as any other node would).
            log.warning("lost the lock of volume %s; dropping our hold, retrying %s",
                        vol, method)
            with contextlib.suppress(ArchipelagoError):
                self.eng.close(vol)
            result = fn(req.target, **h)
        except ArchipelagoError as e:
            if not store_failure(e):
                raise
            # A blocker died or hung mid-operation: what the engine holds in memory for
            # the volume may be ahead of the store (e.g. a snapshot record never
            # written). Reload it from the store before the next call on it.
            if vol:
                with self._lock:
                    self._suspect.add(vol)
            raise
        return P.pack({"r": result})

    def _reload_if_suspect(self, vol):
        with self._lock:
            if vol not in self._suspect:
                return
        try:
            self.eng.close(vol)     # drops the held state; the next call reloads it
        except ArchipelagoError as e:
            if store_failure(e):
                return              # the store is still away: stay suspect
        with self._lock:
            self._suspect.discard(vol)
        log.info("volume %s reloaded from the store after a store failure", vol)

    # -- volumes ------------------------------------------------------------------
    def c_create(self, name, size, object_size=None):
        kw = {"object_size": object_size} if object_size else {}
        self.eng.create(name, size, **kw)

    def c_clone(self, name, source, size=None):
        self.eng.clone(source, name, size)

    def c_snapshot(self, name, snap, guid=None):
        self.eng.snapshot(name, snap, **({"guid": guid} if guid else {}))

    def c_remove(self, spec):
        self.eng.remove(spec)

    def c_resize(self, name, size):
        self.eng.resize(name, size)

    def c_rename(self, name, new):
        self.eng.rename(name, new)

    def c_adopt(self, name, source):
        self.eng.adopt(name, source)

    def c_list(self, _target, details=False):
        items = [info_json(i) if not isinstance(i, str) else {"name": i}
                 for i in self.eng.list()]
        if not details:
            return [i["name"] for i in items]
        return [i if "size" in i else info_json(self.eng.info(i["name"])) for i in items]

    def c_info(self, spec, usage=True):
        return info_json(self.eng.info(spec, usage=bool(usage)))

    def c_geometry(self, spec):
        """What vlmcd and clients need to split I/O, without the space accounting."""
        t, _view = self.eng.view(spec)
        return {"name": spec, "size": t.size, "object_size": t.object_size,
                "chunk_size": chunk_size(t.object_size), "readonly": t.read_only,
                "epoch": t.epoch}

    def c_hash(self, spec):
        return self.eng.hash(spec)

    def c_diff(self, _target, from_spec, to_spec):
        return [[o, n] for o, n in self.eng.diff(from_spec, to_spec)]

    def c_du(self, _target):
        return _plain(self.eng.du())

    def c_gc(self, _target, dry_run=False):
        return _plain(self.eng.gc(dry_run=dry_run))

    # -- locks and opens ---------------------------------------------------------
    def c_open(self, name):
        self.eng.open(name)

    def c_close(self, name):
        self.eng.close(name)

    def c_lock(self, name, wait=False):
        self.eng.lock(name, wait=wait)

    def c_unlock(self, name, force=False):
        self.eng.unlock(name, force=force)

    # -- the data path's maps --------------------------------------------------------
    def c_map_read(self, spec, offset, length):
        epoch, extents, held = self.eng.map_read_held(spec, offset, length)
        r = extents_json(epoch, extents)
        if held:
            r["held"] = True        # vlmcd may keep these mappings (vlmcd.py)
        return r

    def c_map_write(self, name, offset, length):
        return extents_json(*self.eng.map_write(name, offset, length))

    def c_map_read_batch(self, spec, ranges):
        if len(ranges) > BATCH_MAX:
            raise InvalidArgument(f"{len(ranges)} ranges in one batch (at most {BATCH_MAX})")
        epoch, out = None, []
        for offset, length in ranges:
            epoch, extents = self.eng.map_read(spec, int(offset), int(length))
            out.append([[e.obj, e.obj_offset, e.length] for e in extents])
        return {"epoch": epoch, "extents": out}

    def c_map_read_extents(self, spec, ranges):
        return self.c_map_read_batch(spec, ranges)

    def c_map_write_batch(self, name, ranges, whole=False):
        epoch, per_range = self.eng.map_write_batch(name, ranges, bool(whole))
        return {"epoch": epoch,
                "extents": [[[e.obj, e.obj_offset, e.length] for e in exts]
                            for exts in per_range]}

    def c_flush(self, name):
        self.eng.flush(name)


def _plain(obj):
    """Engine reports (dataclasses, objects with to_json, tuples) as JSON-able data."""
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj
