"""The generic blocker role: any ObjectStore served over xseg.

The store comes from the role's `type` (BLOCKER_TYPES): `filed` = FileStore on
archip_dir with an fd cache, `rados` (radosd) = RadosStore on a pool, `memd` =
MemoryStore (tests; nothing survives). Adding a backend is one entry in STORES.

Raw requests (the data path, and what `xseg` tools send):
  READ  target, offset, size -> the bytes (zeros where nothing was written)
  WRITE target, offset, size, data; XF_FUA: durable on reply; XF_FLUSH: flush first
  FLUSH / SYNC               -> every acknowledged write durable
  DELETE target              -> removed (idempotent)
  COPY  target=dst, data=src name -> dst a full copy of src
  HASH  target               -> content-addressed copy; reply = its name
  INFO  target               -> JSON {"size": n|null}; empty target: store used/free
Calls (envelope, XF_CALL) reach every other ObjectStore method -- get, replace,
put_if_absent, stat, list, lease_* and mutations carrying a lease -- so that
XsegStore (xsegstore.py) is a complete ObjectStore on the far side of a port.
"""
import hashlib
import json
import logging

from .. import config as C
from ..errors import InvalidArgument, NotFound, Unsupported
from . import protocol as P

log = logging.getLogger(__name__)

# [ROLE] options of a filed blocker (type = filed), besides the common ones.
OPTIONS = [
    C.Option("archip_dir", None, C.path, "filed: directory holding one file per object"),
    C.Option("fdcache", 256, C.integer(1, 1 << 20), "filed: open file descriptors kept"),
    C.Option("syncfs_min", 64, C.integer(0, 1 << 20),
             "filed: a flush with this many files to sync makes one syncfs(2) of the "
             "store's filesystem instead of one fdatasync per file (0 = never)"),
]



def _filed(cfg, role):
    from ..store.file import FileStore
    return FileStore(role.opts.archip_dir, fdcache=role.opts.fdcache,
                     syncfs_min=role.opts.syncfs_min)


def _rados(cfg, role):
    from ..store.rados import RadosStore
    return RadosStore.from_config(cfg, role.name)


def _memd(cfg, role):
    from ..store.memory import MemoryStore
    return MemoryStore()


# role type -> factory(cfg, role) of its ObjectStore
STORES = {"filed": _filed, "rados": _rados, "memd": _memd}
LIST_PAGE = 4096       # names per `list` reply page


def make_store(cfg, role):
    """The ObjectStore for a blocker Role (peers.config.Role) of configuration `cfg`."""
    return STORES[role.type](cfg, role)


class Blocker:
    """Request handler for one store. Thread-safe as far as the store is."""

    def __init__(self, store):
        self.store = store
        self._raw = {P.X_READ: self._read, P.X_WRITE: self._write, P.X_FLUSH: self._flush,
                     P.X_SYNC: self._flush, P.X_DELETE: self._delete, P.X_COPY: self._copy,
                     P.X_HASH: self._hash, P.X_INFO: self._info, P.X_PING: lambda r: 0}

    def __call__(self, req):
        if req.flags & P.XF_CALL:
            return self._call(req)
        fn = self._raw.get(req.op)
        if fn is None:
            raise Unsupported(f"blocker: op {P.OP_NAMES.get(req.op, req.op)} is not served")
        return fn(req)

    # -- raw ops ------------------------------------------------------------------
    def _read(self, req):
        self.store.readinto(req.target, req.offset, req.buf[:req.size])
        return req.size

    def _write(self, req):
        if req.flags & P.XF_FLUSH:
            self.store.flush()
        self.store.write(req.target, req.offset, req.buf[:req.size],
                         fua=bool(req.flags & P.XF_FUA))
        return req.size

    def _flush(self, req):
        self.store.flush()
        return 0

    def _delete(self, req):
        self.store.delete(req.target)
        return 0

    def _copy(self, req):
        src = bytes(req.data).decode()
        self.store.copy(src, req.target)
        return 0

    def _hash(self, req):
        return hash_object(self.store, req.target).encode()

    def _info(self, req):
        if req.target:
            return json.dumps({"size": self.store.stat(req.target)}).encode()
        i = self.store.info()
        return json.dumps({"kind": self.store.kind, "used": i.used, "free": i.free}).encode()

    # -- calls ----------------------------------------------------------------------
    def _call(self, req):
        h, payload = P.unpack(req.data)
        fn = getattr(self, "c_" + str(h.pop("m", "")), None)
        if fn is None:
            raise Unsupported(f"blocker: unknown call {h!r}")
        result, body = fn(req.target, payload, **h)
        return P.pack({"r": result}, body)

    def c_get(self, name, payload):
        return None, self.store.get(name)

    def c_replace(self, name, payload, lease=None):
        self.store.replace(name, bytes(payload), lease=P.lease_from_json(lease))
        return None, b""

    def c_put_if_absent(self, name, payload):
        return self.store.put_if_absent(name, bytes(payload)), b""

    def c_write(self, name, payload, offset, fua=False, lease=None):
        self.store.write(name, offset, payload, fua=fua, lease=P.lease_from_json(lease))
        return len(payload), b""

    def c_delete(self, name, payload, lease=None):
        return self.store.delete(name, lease=P.lease_from_json(lease)), b""

    def c_copy(self, name, payload, src, lease=None):
        self.store.copy(src, name, lease=P.lease_from_json(lease))
        return None, b""

    def c_stat(self, name, payload):
        return self.store.stat(name), b""

    def c_flush(self, name, payload):
        self.store.flush()
        return None, b""

    def c_list(self, name, payload, prefix="", after=None, limit=LIST_PAGE):
        # Stores list in any order; a page is the next `limit` names after the
        # cursor in sorted order, so a client can walk millions of names in pages.
        names = sorted(n for n in self.store.list(prefix) if after is None or n > after)
        return names[:limit], b""

    def c_info(self, name, payload):
        i = self.store.info()
        return {"used": i.used, "free": i.free, "kind": self.store.kind}, b""

    def c_lease_acquire(self, name, payload, owner, ttl, wait=False, timeout=None,
                        version=None):
        return P.lease_to_json(self.store.lease_acquire(
            name, owner, ttl, wait=wait, timeout=timeout, version=version)), b""

    def c_lease_renew(self, name, payload, lease, ttl):
        return P.lease_to_json(self.store.lease_renew(P.lease_from_json(lease), ttl)), b""

    def c_lease_release(self, name, payload, lease):
        self.store.lease_release(P.lease_from_json(lease))
        return None, b""

    def c_lease_break(self, name, payload):
        self.store.lease_break(name)
        return None, b""

    def c_lease_inquire(self, name, payload):
        return P.lease_to_json(self.store.lease_inquire(name)), b""

    def c_hash(self, name, payload):
        return hash_object(self.store, name), b""


def hash_object(store, name):
    """Store a content-addressed copy of object `name`; return its name.

    As the original blocker HASH: trailing zeros are stripped first (they read back
    as zeros anyway), so an object and its zero-padded twin share one copy.
    """
    if store.stat(name) is None:
        raise NotFound(f"object {name} does not exist")
    data = store.get(name).rstrip(b"\0")
    digest = "sha256-" + hashlib.sha256(data).hexdigest()
    if len(digest) > 123:
        raise InvalidArgument("hash name too long")
    store.put_if_absent(digest, data)
    return digest
