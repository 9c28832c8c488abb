"""VolumeEngine: the volume library hosted by mapperd (and used in-process by tests).

Thread-safe. Metadata operations follow DESIGN §3 locks: reads are best effort (no
lock), writes wait for the lease holder, snapshot/remove/resize/rename fail at once
if another owner holds the volume, create/clone claim the new name atomically.
Every map change is written with the volume lease (fenced at the store).
"""
import contextlib
import logging
import threading
import time

from ..errors import ArchipelagoError, Busy, Exists, Fenced, InvalidArgument, NotFound, ReadOnly
from ..names import split_snapshot, validate_name
from . import format as fmt
from . import usage
from .catalog import Catalog
from .checks import check_object_size, check_range, check_size
from .format import LEAF_ENTRIES, hexuid, new_uid
from .identity import new_guid, snapshot_guid
from .locks import LeaseKeeper
from .mapping import CopyUp, Extent, chunk_mask, needs_update, read_extents, split
from .state import VolumeState
from .tree import NodeCache, TreeView

log = logging.getLogger(__name__)


class Target:
    """A resolved spec: the volume header, the snapshot record (or None) and our
    state if we hold the volume."""

    __slots__ = ("hdr", "rec", "spec", "state")

    def __init__(self, spec, hdr, rec, state):
        self.spec, self.hdr, self.rec, self.state = spec, hdr, rec, state

    @property
    def read_only(self):
        return self.rec is not None or bool(self.hdr.get("read_only"))

    @property
    def size(self):
        return (self.rec or self.hdr)["size"]

    @property
    def object_size(self):
        return self.hdr["object_size"]

    @property
    def epoch(self):
        return self.rec["gen"] if self.rec else self.hdr["epoch"]


class VolumeEngine:
    def __init__(self, store, owner="local:engine", lease_ttl=30.0, *, write_wait=None,
                 node_cache=1024, gc_grace=None, private_nodes=8):
        self.store = store
        self.owner = owner
        self.cache = NodeCache(store, node_cache)
        self.locks = LeaseKeeper(store, owner, lease_ttl)
        self.catalog = Catalog(store)
        self.write_wait = write_wait          # seconds a write waits for the lock (None: ever)
        self.gc_grace = gc_grace              # seconds; None: gc.GRACE (tests use 0)
        self.private_nodes = private_nodes    # mutable map nodes cached per held volume
        self._states = {}                     # vid -> VolumeState (we hold the lease)
        self._lock = threading.RLock()

    # -- resolution -----------------------------------------------------------------------
    def _held_state(self, name):
        with self._lock:
            st = next((s for s in self._states.values() if s.name == name), None)
        if st is not None and self.locks.fenced(st.vid):
            # Lost the lease (renewal failed or it was broken): our copy of the map may
            # be stale now; forget it so the next call starts from the store.
            self._drop(st.vid, release=False)
            return None
        return st

    def _check(self, st, name):
        """The current lease of a held volume; on Fenced, forget our state."""
        try:
            lease = self.locks.check(st.vid, name)
        except Fenced:
            self._drop(st.vid, release=False)
            raise
        if lease is None:
            raise Fenced(f"volume {name}: not holding its lock any more")
        st.lease = lease
        return lease

    def _resolve(self, spec):
        if not isinstance(spec, str):
            raise InvalidArgument(f"volume name must be a string, not {spec!r}")
        vol, snap = split_snapshot(spec)
        state = self._held_state(vol)
        hdr = state.hdr if state is not None else self.catalog.lookup(vol)
        rec = None
        if snap is not None:
            rec = next((r for r in hdr["snapshots"] if r["name"] == snap), None)
            if rec is None:
                raise NotFound(f"snapshot {spec} does not exist")
        return Target(spec, hdr, rec, state)

    def _view(self, t):
        if t.rec is not None:
            return TreeView(self.cache, t.rec["root"], t.rec["depth"])
        if t.state is not None:
            return t.state.view()
        h = t.hdr
        if h.get("read_only"):
            return TreeView(self.cache, h["root"], h["depth"])
        return TreeView(self.cache, h["root"], h["depth"], h["id"], h["gen"])

    def view(self, spec):
        """(Target, TreeView) of a spec; for diff, hash and GC helpers."""
        t = self._resolve(spec)
        return t, self._view(t)

    # -- holding volumes -------------------------------------------------------------------
    def _hold(self, name, *, wait=False, timeout=None, temporary=False, version=None):
        """Our VolumeState for `name`, taking its lease (waiting if asked). A
        `temporary` hold (one metadata operation) is given back at its end unless a
        writer or open/lock has claimed the state meanwhile."""
        with self._lock:
            st = self._held_state(name)
            if st is not None and not temporary:
                st.temporary = False
        if st is not None:
            self._check(st, name)
            return st
        hdr = self.catalog.lookup(name)
        lease = self.locks.acquire(hdr["id"], name, wait=wait, timeout=timeout,
                                   version=version)
        with self._lock:
            st = self._states.get(hdr["id"])
            if st is not None:
                if not temporary:
                    st.temporary = False
                return st
            # Re-read: the previous holder may have changed it before releasing.
            hdr = self.catalog.header(hdr["id"], name)
            if hdr is None or hdr["name"] != name:
                self.locks.release(lease.name[len(fmt.LEASE_PREFIX):])
                raise NotFound(f"volume {name} does not exist")
            st = self._states[hdr["id"]] = VolumeState(self.store, self.cache, hdr, lease)
            st.temporary = temporary
            return st

    def _drop(self, vid, release=True):
        with self._lock:
            st = self._states.pop(vid, None)
        if st is not None:
            # Not into the shared cache: the next holder may still change these nodes.
            st.mutable.clear()
        if release:
            self.locks.release(vid)
        else:
            self.locks.forget(vid)

    @contextlib.contextmanager
    def _exclusive(self, name):
        """Hold `name` for a metadata operation: fail at once if another owner has it;
        give the lease back afterwards unless we held it before."""
        st = self._hold(name, temporary=True)
        try:
            with st.lock:
                self._check(st, name)
                try:
                    yield st
                except BaseException as e:
                    self._reload(st, e)
                    raise
        finally:
            with self._lock:
                if st.temporary and self._states.get(st.vid) is st:
                    self._drop(st.vid)

    def _reload(self, st, err=None):
        """After a failed update the in-memory header and map may be ahead of the
        store: take the header back from the store. If the store fenced us, cannot be
        read now, or no longer names the volume, forget the volume altogether (the next
        call loads it afresh; a call never sees a change the store does not hold)."""
        if isinstance(err, Fenced):
            log.warning("volume %s: lease lost (%s); forgetting its map", st.name, err)
            self._drop(st.vid, release=False)
            return
        st.mutable.clear()
        try:
            hdr = self.catalog.header(st.vid, st.name)
            live = hdr is not None and self.catalog.index_id(hdr["name"]) == st.vid
        except ArchipelagoError as e:          # the store is still away
            log.warning("volume %s: cannot re-read its header after a failed update "
                        "(%s); forgetting its map", st.name, e)
            hdr, live = None, False
        if live:
            st.hdr = hdr
        else:
            self._drop(st.vid, release=False)

    def _writable(self, name):
        if isinstance(name, str) and "@" in name:
            split_snapshot(name)           # a bad name is still InvalidArgument
            raise ReadOnly(f"{name} is a snapshot; snapshots are read-only")
        validate_name(name)
        with self._lock:
            st = self._held_state(name)
            if st is not None:
                st.temporary = False       # a writer keeps the lease
        if st is None:
            hdr = self.catalog.lookup(name)
            if hdr.get("read_only"):
                raise ReadOnly(f"{name} is a read-only image")
            st = self._hold(name, wait=True, timeout=self.write_wait)
        if st.hdr.get("read_only"):
            raise ReadOnly(f"{name} is a read-only image")
        return st

    # -- create / clone / snapshot / remove ----------------------------------------------
    def _new_header(self, name, size, object_size, **extra):
        now = time.time()
        hdr = {"format": fmt.FORMAT, "id": hexuid(new_uid()), "name": name, "size": size,
               "object_size": object_size, "gen": 1, "epoch": 1, "root": None, "depth":
               fmt.depth_for(-(-size // object_size)), "snapshots": [], "origin": None,
               "read_only": False, "image": False, "created": now}
        hdr.update(extra)
        return hdr

    def _publish(self, hdr):
        """Write a new header, then claim its name (an unnamed header is an orphan)."""
        self.store.replace(fmt.header_name(hdr["id"]), fmt.encode_header(hdr))
        try:
            self.catalog.claim(hdr["name"], hdr["id"])
        except Exists:
            self.store.delete(fmt.header_name(hdr["id"]))
            raise

    def create(self, name, size, object_size=fmt.DEFAULT_OBJECT):
        validate_name(name)
        check_size(size)
        check_object_size(object_size)
        if self.catalog.index_id(name) and self._exists(name):
            raise Exists(f"volume {name} already exists")
        hdr = self._new_header(name, size, object_size)
        self._publish(hdr)
        log.info("created volume %s (%d bytes, objects of %d)", name, size, object_size)
        return self.info(name, usage=False)

    def _exists(self, name):
        try:
            self.catalog.lookup(name)
            return True
        except NotFound:
            return False

    def clone(self, source, name, size=None):
        validate_name(name)
        src = self._resolve(source)
        if not src.read_only:
            raise InvalidArgument(f"cannot clone writable volume {source}: clone a snapshot "
                                  f"({source}@SNAP) or an image")
        size = src.size if size is None else check_size(size)
        if size < src.size:
            raise InvalidArgument(f"clone size {size} is smaller than {source} "
                                  f"({src.size} bytes)")
        if self._exists(name):
            raise Exists(f"volume {name} already exists")
        root = src.rec["root"] if src.rec else src.hdr["root"]
        depth = src.rec["depth"] if src.rec else src.hdr["depth"]
        hdr = self._new_header(name, src.size, src.object_size, root=root, depth=depth,
                               origin=source, origin_id=src.hdr["id"],
                               origin_snap=src.rec["name"] if src.rec else None)
        if size > src.size:
            # Before the name is claimed: new root levels if needed (O(levels); the
            # tree itself stays shared) and zeros past the source's end.
            self._grow(VolumeState(self.store, self.cache, hdr, None), size)
        self._publish(hdr)
        log.info("cloned %s from %s", name, source)
        return self.info(name, usage=False)

    def snapshot(self, name, snap, guid=None):
        """Snapshot `name` as `name@snap`; `guid` gives it a known identity (sync)."""
        validate_name(name)
        validate_name(snap, "snapshot")
        with self._exclusive(name) as st:
            h = st.hdr
            if h.get("read_only"):
                raise ReadOnly(f"{name} is a read-only image; it needs no snapshot")
            self.store.flush()             # a snapshot is a flush point for its data
            if any(r["name"] == snap for r in h["snapshots"]):
                raise Exists(f"snapshot {name}@{snap} already exists")
            h["snapshots"].append({"name": snap, "root": h["root"], "depth": h["depth"],
                                   "gen": h["gen"], "size": h["size"],
                                   "created": time.time(), "guid": new_guid(h, guid)})
            # One atomic header write: the snapshot appears and every node of the
            # head becomes shared (copied on first modification).
            h["gen"] += 1
            h["epoch"] += 1
            st.save_header()
            st.new_generation()
        log.info("snapshot %s@%s created", name, snap)
        return self.info(f"{name}@{snap}", usage=False)

    def remove(self, spec):
        t = self._resolve(spec)
        vol = t.hdr["name"]
        with self._exclusive(vol) as st:
            if t.rec is not None:
                st.hdr["snapshots"] = [r for r in st.hdr["snapshots"]
                                       if r["name"] != t.rec["name"]]
                st.save_header()
                log.info("snapshot %s removed", spec)
                return
            if st.hdr["snapshots"]:
                names = ", ".join(r["name"] for r in st.hdr["snapshots"])
                raise Busy(f"volume {vol} has snapshots ({names}); remove them first")
            self.catalog.unclaim(vol, st.vid)
            self.store.delete(fmt.header_name(st.vid), lease=st.lease)
            self._drop(st.vid)
        log.info("volume %s removed", vol)

    def resize(self, name, size):
        check_size(size)
        with self._exclusive(name) as st:
            h = st.hdr
            if h.get("read_only"):
                raise ReadOnly(f"{name} is a read-only image")
            osize, old = h["object_size"], h["size"]
            if size < old:
                # Commit first: what lies beyond the new end is invisible at once.
                # Freeing it is cleanup; an interrupted cleanup is finished by a grow.
                h["size"] = size
                h["epoch"] += 1
                st.save_header()
                st.clear_from(-(-size // osize))
            else:
                self._grow(st, size)
        log.info("volume %s resized from %d to %d bytes", name, old, size)
        return self.info(name, usage=False)

    def _grow(self, st, size):
        """Make [old size, size) read as zeros (it may hold what a shrink left), then
        commit the new size with one header write."""
        h = st.hdr
        osize, old = h["object_size"], h["size"]
        st.clear_from(-(-old // osize))
        if old % osize and st.view().lookup(old // osize) is not None:
            end = min(size, (old // osize + 1) * osize)
            self._write_locked(st, old, bytes(end - old), False)
        need = fmt.depth_for(-(-size // osize))
        if need > h["depth"]:
            st.grow_depth(need)
        h["size"] = size
        h["epoch"] += 1
        st.save_header()

    def rename(self, old, new):
        validate_name(new)
        with self._exclusive(old) as st:
            if st.hdr.get("read_only"):
                raise ReadOnly(f"{old} is a read-only image; images are named by content")
            self.catalog.claim(new, st.vid)
            st.hdr["name"] = new
            st.hdr["epoch"] += 1
            try:
                st.save_header()
            except BaseException:
                self.catalog.unclaim(new, st.vid)
                raise
            self.catalog.unclaim(old, st.vid)
        log.info("volume %s renamed to %s", old, new)
        return self.info(new, usage=False)

    def adopt(self, name, source):
        """Make the head of `source`, a clone of a snapshot of `name` with no snapshots
        of its own, the head of `name` (a sync receive staged there; O(1)): first
        every node of `source` becomes shared, as at a snapshot (one header write),
        then `name` points at its tree (one header write; what the head of `name`
        held is dropped, for GC). Both may then be written: copy-on-write. Run
        again after a crash, it finishes; `source` is the caller's to remove."""
        with self._exclusive(source) as ss, self._exclusive(name) as st:
            s, h = ss.hdr, st.hdr
            if s.get("origin_id") != h["id"] or s["snapshots"] or \
                    s["object_size"] != h["object_size"] or h.get("read_only"):
                raise InvalidArgument(f"{source} is not a clone of a snapshot of {name} "
                                      "without snapshots of its own")
            if (h["root"], h["depth"], h["size"]) == (s["root"], s["depth"], s["size"]):
                return self.info(name, usage=False)
            s["gen"] += 1
            s["epoch"] += 1
            ss.save_header()
            ss.new_generation()
            h["root"], h["depth"], h["size"] = s["root"], s["depth"], s["size"]
            h["epoch"] += 1
            st.save_header()
            st.mutable.clear()
        log.info("volume %s adopted the head of %s", name, source)
        return self.info(name, usage=False)

    # -- information ----------------------------------------------------------------------
    def info(self, spec, usage=True):
        """VolumeInfo of a volume, snapshot or image. Allocated and unique bytes walk
        the map (time proportional to what is allocated); with usage=False (what the
        O(1) operations return) they are None."""
        t = self._resolve(spec)
        lock = t.state.lock if t.state is not None else contextlib.nullcontext()
        with lock:
            return self._info(t, spec, usage)

    def _info(self, t, spec, with_usage):
        h = t.hdr
        osize = h["object_size"]
        allocated = unique = None
        if with_usage:
            view = self._view(t)
            allocated = usage.allocated(view, osize)
            unique = usage.unique(view, self._sibling_views(t), osize)
        lease = self.locks.inquire(h["id"])
        return usage.VolumeInfo(
            name=spec, size=t.size, object_size=osize,
            origin=h.get("origin") if t.rec is None else None,
            snapshots=[r["name"] for r in h["snapshots"]] if t.rec is None else [],
            allocated=allocated, unique=unique,
            lock_owner=lease.owner if lease else None,
            lock_generation=lease.generation if lease else None,
            read_only=t.read_only, image=bool(h.get("image")), id=h["id"],
            epoch=t.epoch, created=(t.rec or h)["created"], guid=snapshot_guid(h, t.rec))

    def _sibling_views(self, t):
        h = t.hdr
        views = [TreeView(self.cache, r["root"], r["depth"]) for r in h["snapshots"]
                 if t.rec is None or r["name"] != t.rec["name"]]
        if t.rec is not None and not h.get("read_only"):
            views.append(self._view(Target(h["name"], h, None, t.state)))
        return views

    def list(self):
        return [self.info(name) for name, _ in self.catalog.volumes()]

    # -- the data path: maps ------------------------------------------------------------
    def map_read(self, spec, offset, length):
        t, out = self._map_read(spec, offset, length)
        return t.epoch, out

    def map_read_held(self, spec, offset, length):
        """map_read, and whether the map it read cannot change behind the caller's
        back: a live volume whose lease this engine held from before the read to
        after it (only the holder changes a map), or a read-only image. vlmcd keeps
        such mappings for later reads (peers/mapcache.py). Costs one lease read on a
        held volume, so only mapperd's MAPR asks (not read() and the other in-process
        users of map_read)."""
        t, out = self._map_read(spec, offset, length)
        if t.rec is not None:
            held = False                    # a snapshot's map: vlmcd keeps none
        elif t.hdr.get("read_only"):
            held = True
        else:
            held = self._still_held(t.state, t.hdr["name"])
        return t.epoch, out, held

    def _map_read(self, spec, offset, length):
        t, view = self.view(spec)
        check_range(offset, length, t.size, spec)
        lock = t.state.lock if t.state is not None else contextlib.nullcontext()
        out = []
        with lock:
            for idx, off, n in split(offset, length, t.object_size):
                out.extend(read_extents(view.lookup(idx), off, n, t.object_size))
        return t, out

    def _still_held(self, st, name):
        """`st` is still our state of `name`, and the store shows its lease as ours
        and current: one lease read, so a lease broken by another host (unlock -f)
        is seen at once, not at our next renewal (vlmcd trusts the answer for
        map_cache_ttl)."""
        if st is None or self._held_state(name) is not st:
            return False
        try:
            mine = self._check(st, name)
            now = self.locks.inquire(st.vid)
        except Fenced:
            return False
        return (now is not None and now.owner == mine.owner
                and now.generation == mine.generation
                and (not now.expires or now.expires > time.time()))

    def map_write(self, name, offset, length):
        st = self._writable(name)
        with st.lock:
            self._check(st, name)
            check_range(offset, length, st.hdr["size"], name)
            try:
                return st.hdr["epoch"], self._map_write_locked(st, offset, length)
            except BaseException as e:
                self._reload(st, e)
                raise

    def map_write_batch(self, name, ranges, whole=False):
        """map_write of many (offset, length) ranges with one group commit (batch.py;
        `whole`: the caller overwrites every byte and reruns after a crash).
        Returns (epoch, [[Extent, ...] per range])."""
        from .batch import BATCH_MAX, map_write_batch
        ranges = [(int(o), int(n)) for o, n in ranges]
        if len(ranges) > BATCH_MAX:
            raise InvalidArgument(f"{len(ranges)} ranges in one batch (at most {BATCH_MAX})")
        st = self._writable(name)
        with st.lock:
            self._check(st, name)
            for off, n in ranges:
                check_range(off, n, st.hdr["size"], name)
            st.trim(self.private_nodes)
            try:
                return st.hdr["epoch"], map_write_batch(st, self.store, ranges, whole)
            except BaseException as e:
                self._reload(st, e)
                raise

    def write_batch(self, name, items, whole=False):
        """write() of many (offset, data) with one group commit of their map updates
        (in-process clients; the peers' path is map_write_batch, then the writes)."""
        items = [(off, memoryview(data).cast("B")) for off, data in items]
        st = self._writable(name)
        with st.lock:             # as write(): no snapshot between map and data
            _, extents = self.map_write_batch(name, [(o, len(d)) for o, d in items],
                                              whole)
            for (_, data), exts in zip(items, extents, strict=True):
                pos = 0
                for ext in exts:
                    self.store.write(ext.obj, ext.obj_offset, data[pos:pos + ext.length],
                                     lease=st.lease)
                    pos += ext.length

    def _map_write_locked(self, st, offset, length):
        st.trim(self.private_nodes)
        osize, gen = st.hdr["object_size"], st.hdr["gen"]
        copy = CopyUp(self.store, st.lease, osize)
        extents, dirty = [], None
        for idx, off, n in split(offset, length, osize):
            mask = chunk_mask(off, n, osize)
            entry, private = st.entry(idx)
            if needs_update(entry, mask, private):
                entry = copy.prepare(None if entry is None or entry.zero else entry,
                                     mask, gen, private)
                wleaf = st.writable_leaf(idx)
                if dirty is not None and dirty is not wleaf:
                    st.write_node(dirty)
                wleaf.set_entry(idx % LEAF_ENTRIES, entry)
                dirty = wleaf
            extents.append(Extent(entry.own_name(), off, n))
        if dirty is not None:
            st.write_node(dirty)          # the commit: dirty bits and copy-up durable
        return extents

    def _write_locked(self, st, offset, data, fua):
        extents = self._map_write_locked(st, offset, len(data))
        view = memoryview(data).cast("B")
        pos = 0
        for ext in extents:
            self.store.write(ext.obj, ext.obj_offset, view[pos:pos + ext.length], fua=fua,
                             lease=st.lease)
            pos += ext.length

    # -- the data path: bytes (in-process clients, tests, import/export) ---------------
    def read(self, spec, offset, length):
        _, extents = self.map_read(spec, offset, length)
        buf = bytearray(length)
        view = memoryview(buf)
        pos = 0
        for ext in extents:
            if ext.obj is not None:
                self.store.readinto(ext.obj, ext.obj_offset, view[pos:pos + ext.length])
            pos += ext.length
        return bytes(buf)

    def write(self, name, offset, data, fua=False):
        st = self._writable(name)
        with st.lock:
            self._check(st, name)
            check_range(offset, len(data), st.hdr["size"], name)
            try:
                self._write_locked(st, offset, data, fua)
            except BaseException as e:
                self._reload(st, e)
                raise
        return len(data)

    def flush(self, name=None):
        if name is not None:
            self._resolve(name)
        self.store.flush()

    # -- locks ------------------------------------------------------------------------------
    def open(self, name):
        validate_name(name)
        self._hold(name)
        return self.info(name, usage=False)

    def close(self, name):
        validate_name(name)
        st = self._held_state(name)
        if st is not None:
            self.store.flush()
            self._drop(st.vid)

    def lock(self, name, wait=False, version=None):
        """Take the volume lock. `version` (a lock_generation from info()): take it only
        if nobody took it since -- the migration hand-over (inquire, the source
        releases, acquire with the generation seen)."""
        validate_name(name)
        self._hold(name, wait=wait, version=version)
        return self.info(name, usage=False)

    def unlock(self, name, force=False):
        validate_name(name)
        hdr = self.catalog.lookup(name)
        vid = hdr["id"]
        if force:
            cur = self.locks.inquire(vid)
            if cur is not None and cur.owner != self.owner:
                log.warning("breaking lock of volume %s held by %s (generation %d)",
                            name, cur.owner, cur.generation)
            self.locks.break_lease(vid)
            self._drop(vid, release=False)
            return
        if self._held_state(name) is not None or self.locks.held(vid):
            self._drop(vid)
            return
        cur = self.locks.inquire(vid)
        if cur is not None and cur.owner != self.owner:
            raise Busy(f"volume {name} is locked by {cur.owner} (generation "
                       f"{cur.generation}); use force to break it")

    def shutdown(self):
        """Flush and give every lease back (peer stop)."""
        with contextlib.suppress(Exception):
            self.store.flush()
        with self._lock:
            vids = list(self._states)
        for vid in vids:
            self._drop(vid)
        self.locks.close()

    # -- hashing, diff, space ---------------------------------------------------------------
    def hash(self, spec):
        from .hashing import hash_spec
        return hash_spec(self, spec)

    def diff(self, from_spec, to_spec):
        from .diff import diff_specs
        return diff_specs(self, from_spec, to_spec)

    def du(self):
        from .gc import disk_usage
        return disk_usage(self)

    def gc(self, dry_run=False):
        from .gc import collect
        return collect(self, dry_run=dry_run, grace=self.gc_grace)
