"""archipelago.client: volumes of a running node, by name, through its vlmcd.

    from archipelago import client
    with client.connect() as c:                  # the node of -c/ARCHIPELAGO_CONF
        c.create("vm1", 10 << 30)
        with c.volume("vm1") as v:               # I/O through vlmcd
            v.pwrite(b"x" * 4096, 0)
            v.flush()
            data = v.pread(4096, 0)
        c.snapshot("vm1", "s1")
        c.clone("vm1@s1", "vm2")

Every request goes to the node's vlmcd, which serves volume I/O itself and
forwards metadata calls to mapperd (freezing the volume where a call needs its
writes drained). Errors are archipelago.errors types with the peer's message.
A Client and its Volumes are safe to use from several threads. See
docs/volumes.md for the full API.
"""
import logging
import os
import threading

from . import config as C
from .errors import InvalidArgument, ReadOnly
from .peers import config as PC
from .peers import protocol as P
from .peers.mapperd import OPS
from .peers.transport import retrying

RETRY_FOR = 30.0     # seconds volume I/O waits for a restarting vlmcd
DIRECT_ENV = "ARCHIPELAGO_DIRECT_STORE"     # "0": never open the data store in-process
DIRECT_FDCACHE = 4096                       # fds the in-process FileStore keeps open

log = logging.getLogger(__name__)


class Client:
    """Metadata and I/O of one node's volumes (see the module docstring)."""

    def __init__(self, transport, port, retry_for=RETRY_FOR, direct=None):
        self.t = transport
        self.port = port
        self.retry_for = retry_for
        self._direct_open = direct      # () -> ObjectStore or None (connect() sets it)
        self._direct = None
        self._direct_lock = threading.Lock()

    def direct_store(self):
        """The node's data store opened in this process, or None.

        Only where the data blocker is a FileStore on a directory this process owns
        (same user as the peers, so files and fan-out directories it creates stay
        theirs) and not disabled by ARCHIPELAGO_DIRECT_STORE=0. Object names are
        never reused (fresh names for every copy-on-write), so a snapshot's objects
        named by mapperd can be read here without the vlmcd and blocker hops, and
        the objects of a range mapped for writing (Volume.prepare) written here, as
        the co-located data path does (nbd/colocated.py). Callers still ask mapperd
        for every mapping."""
        with self._direct_lock:
            if self._direct_open is not None:
                opener, self._direct_open = self._direct_open, None
                try:
                    self._direct = opener()
                except Exception as e:           # any failure: the peers path
                    log.info("data store not usable in-process (%s); using the peers", e)
                    self._direct = None
            return self._direct

    def _io(self, op, name, **fields):
        # Volume I/O is idempotent: ride out a vlmcd restart instead of failing it.
        return retrying(self.retry_for, self.t.request, self.port, op, name, **fields)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self._direct_lock:
            store, self._direct, self._direct_open = self._direct, None, None
        try:
            if store is not None:
                store.close()
        finally:
            self.t.close()

    def _call(self, method, target="", **args):
        h, _ = self.t.call(self.port, OPS.get(method, P.X_INFO), method, target, **args)
        return h.get("r")

    # -- metadata (mapperd, through vlmcd) ----------------------------------------------
    def create(self, name, size, object_size=None):
        self._call("create", name, size=size, object_size=object_size)

    def clone(self, source, name, size=None):
        """Clone snapshot `source` ("VOL@SNAP") as writable volume `name`."""
        self._call("clone", name, source=source, size=size)

    def snapshot(self, name, snap, guid=None):
        """Take `name@snap`; `guid` sets its identity (archipelago.sync receive)."""
        self._call("snapshot", name, snap=snap, **({"guid": guid} if guid else {}))

    def remove(self, spec):
        self._call("remove", spec)

    def resize(self, name, size):
        self._call("resize", name, size=size)

    def rename(self, old, new):
        self._call("rename", old, new=new)

    def adopt(self, name, source):
        """Make the head of `source` (a clone of a snapshot of `name`, no snapshots of
        its own) the head of `name` (VolumeEngine.adopt; a sync receive's commit)."""
        self._call("adopt", name, source=source)

    def list(self):
        """Names of volumes and snapshots."""
        return self._call("list")

    def list_info(self):
        """info() of every volume and snapshot."""
        return self._call("list", details=True)

    def info(self, spec, usage=True):
        """A dict: name, size, object_size, origin, snapshots, allocated, unique, lock...
        usage=False: allocated and unique None, O(1) (they walk the map: ~10 ms for a
        full 10 GiB volume, in mapperd)."""
        return self._call("info", spec) if usage else self._call("info", spec, usage=False)

    def hash(self, spec):
        return self._call("hash", spec)

    def diff(self, from_spec, to_spec):
        """[(offset, length)] of the bytes that differ between two snapshots/volumes."""
        return [tuple(r) for r in self._call("diff", from_spec=from_spec, to_spec=to_spec)]

    def du(self):
        return self._call("du")

    def gc(self, dry_run=False):
        return self._call("gc", dry_run=dry_run)

    def open(self, name):
        self._call("open", name)

    def close_volume(self, name):
        self._call("close", name)

    def lock(self, name, wait=False):
        self._call("lock", name, wait=wait)

    def unlock(self, name, force=False):
        self._call("unlock", name, force=force)

    # -- I/O -------------------------------------------------------------------------------
    def volume(self, spec, readonly=False):
        """An open Volume for I/O; VOL@SNAP is always read-only."""
        g = self._call("geometry", spec)
        return Volume(self, spec, g["size"], g.get("object_size"),
                      readonly or "@" in spec or bool(g.get("readonly")))


class Volume:
    """Byte-addressed I/O on one volume or snapshot (thread-safe)."""

    def __init__(self, client, name, size, object_size, readonly):
        self.client = client
        self.name = name
        self.size = size
        self.object_size = object_size
        self.readonly = readonly

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Volume({self.name!r}, size={self.size})"

    def readinto(self, buf, offset):
        """Fill writable `buf` from `offset`; unwritten ranges read as zeros."""
        buf = memoryview(buf).cast("B")
        self.client._io(P.X_READ, self.name, offset=offset, size=len(buf), out=buf)
        return len(buf)

    def pread(self, length, offset):
        buf = bytearray(length)
        self.readinto(buf, offset)
        return bytes(buf)

    def pwrite(self, data, offset, fua=False):
        """Write `data` at `offset`; durable across power loss after flush() or with fua."""
        if self.readonly:
            raise ReadOnly(f"{self.name} is read-only")
        data = memoryview(data).cast("B")
        self.client._io(P.X_WRITE, self.name, offset=offset, size=len(data), data=data,
                        flags=P.XF_FUA if fua else 0)
        return len(data)

    def direct_store(self):
        """Client.direct_store() (None: use the peers)."""
        return self.client.direct_store()

    def map_extents(self, ranges):
        """A snapshot's mappings of [(offset, length), ...]: one list of [object|None,
        object offset, length] per range (None reads as zeros), from mapperd in one
        call; vlmcd keeps nothing (for reading the objects in-process)."""
        if "@" not in self.name:
            raise InvalidArgument(f"{self.name}: map_extents is for snapshots only")
        if not ranges:
            return []
        r = retrying(self.client.retry_for, self.client._call, "map_read_extents",
                     self.name, ranges=[[int(o), int(n)] for o, n in ranges])
        return r["extents"]

    def prefetch(self, ranges):
        """Map a snapshot's [(offset, length), ...] ahead of reading exactly those
        ranges: one MAPR for all of them (vlmcd uses each mapping once)."""
        if "@" in self.name and ranges:
            retrying(self.client.retry_for, self.client._call, "map_read_batch",
                     self.name, ranges=[[int(o), int(n)] for o, n in ranges])

    def prepare(self, ranges, whole=False):
        """Make the map ready for writes of [(offset, length), ...] with one group
        commit in mapperd (the writes that follow skip the per-write map update).
        `whole`: every byte of the ranges will be written, and written again after a
        crash (a sync commit); fully covered chunks are then not copied up. Returns
        the mappings: per range a list of [object, object offset, length]."""
        if self.readonly:
            raise ReadOnly(f"{self.name} is read-only")
        if not ranges:
            return []
        # Idempotent (a second run finds the map ready): rides out restarts too.
        r = retrying(self.client.retry_for, self.client._call, "map_write_batch",
                     self.name, ranges=[[int(o), int(n)] for o, n in ranges],
                     whole=bool(whole))
        return r["extents"]

    def flush(self):
        """Make every completed write durable (drains this node's writes to the volume)."""
        if not self.readonly:
            self.client._io(P.X_FLUSH, self.name)

    def trim(self, offset, length):
        """Advisory discard: the engine has no discard yet, so this keeps the data."""
        return None

    def close(self):
        """Nothing to release: the node's lock lives until `close_volume` or lease expiry."""
        return None


def connect(conf=None):
    """A Client of the node configured by `conf` (path; default as archipelago.config)."""
    from .peers.xseg_transport import XsegTransport
    cfg = C.load(conf)
    xseg, roles = PC.check(cfg)
    vlmcd = PC.find_type(roles, "vlmcd")
    return Client(XsegTransport.join(xseg, "client"), vlmcd.port,
                  direct=lambda: _direct_store(roles, vlmcd))


def _direct_store(roles, vlmcd):
    """The FileStore of vlmcd's data blocker, opened here (Client.direct_store), or None."""
    if os.environ.get(DIRECT_ENV, "1") == "0":
        return None
    port = vlmcd.opts.blocker_port
    blocker = next((r for r in roles if r.is_blocker and r.port == port), None)
    if blocker is None or blocker.type != "filed":
        return None                 # RADOS, memd: through the peers
    root = blocker.opts.archip_dir
    objects = os.path.join(root, "objects")
    try:
        st = os.stat(objects)       # the blocker made it
    except FileNotFoundError:
        return None                 # not this machine's store (or not started yet)
    if st.st_uid != os.geteuid() or not os.access(objects, os.R_OK | os.W_OK | os.X_OK):
        return None
    if not os.path.exists(os.path.join(root, "layout")):
        with os.scandir(objects) as it:
            if not any(True for _ in it):
                # an empty store the blocker has not given a layout: it runs older
                # code (one directory level more); leave the choice to it
                return None
    from .store.file import FileStore
    return FileStore(root, fdcache=max(blocker.opts.fdcache, DIRECT_FDCACHE),
                     syncfs_min=blocker.opts.syncfs_min)


def local(data_store, map_store=None, **kw):
    """A Client over the whole peer stack in this process (no segment, no node): the
    same vlmcd, mapperd and blocker code, called directly (peers/local.py)."""
    from .peers.local import local_stack
    return local_stack(data_store, map_store, **kw)
