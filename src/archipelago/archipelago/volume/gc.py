"""Garbage collection (mark and sweep) and space figures.

Removal only drops names and headers; GC gives the space back. It never deletes an
object a map references, even with writers running:
  1. candidates = the map nodes, data and content objects and headers listed now;
  2. mark from every header (re-read until no header changes between two passes,
     so a clone made or a snapshot removed meanwhile is seen);
  3. delete unmarked candidates, except map nodes and data objects whose UID says
     they were created less than `grace` seconds before GC started: a writer may
     have created them and not yet linked them into its map (a writer never keeps
     an unlinked object that long: its lease would have expired first).
Content objects have no such window: hashing and GC exclude each other through the
GC lease, so a content object found unreferenced stays unreferenced.
"""
import logging
import time

from ..errors import Busy, NotFound
from . import format as fmt
from .format import uid_time, unhex
from .tree import TreeView

log = logging.getLogger(__name__)

GRACE = 600.0
GC_TTL = 30.0


class GcLease:
    """The store-wide lease held by GC (and by hashing, waiting for it)."""

    def __init__(self, eng, wait=False):
        self.eng, self.wait, self.lease, self._last = eng, wait, None, 0.0

    def __enter__(self):
        try:
            self.lease = self.eng.store.lease_acquire(
                fmt.GC_LEASE, self.eng.owner, GC_TTL, wait=self.wait)
        except Busy:
            cur = self.eng.store.lease_inquire(fmt.GC_LEASE)
            raise Busy("garbage collection or hashing is running"
                       + (f" ({cur.owner})" if cur else "")) from None
        self._last = time.monotonic()
        return self

    def renew(self):
        if time.monotonic() - self._last > GC_TTL / 4:
            self.lease = self.eng.store.lease_renew(self.lease, GC_TTL)
            self._last = time.monotonic()

    def __exit__(self, *exc):
        self.eng.store.lease_release(self.lease)


def _trees(hdr):
    """(root, depth, owner, gen) of the head and every snapshot in a header."""
    vid = None if hdr.get("read_only") else hdr["id"]
    yield hdr["root"], hdr["depth"], vid, hdr["gen"]
    for rec in hdr["snapshots"]:
        yield rec["root"], rec["depth"], None, None


class Marker:
    def __init__(self, eng, gcl):
        self.eng, self.gcl = eng, gcl
        self.nodes, self.objects = set(), set()

    def mark(self, hdr):
        for root, depth, vid, gen in _trees(hdr):
            if root is None:
                continue
            view = TreeView(self.eng.cache, root, depth, vid, gen)
            stack = [(view.root, depth)]
            while stack:
                uid, level = stack.pop()
                if uid in self.nodes:
                    continue              # a shared subtree: marked already
                self.nodes.add(uid)
                node = view.node(uid)
                if level:
                    stack.extend((c, level - 1) for _, c in node.children())
                    continue
                for _, e in node.entries():
                    self.objects.add(e.own_name())
                    base = e.base_name()
                    if base:
                        self.objects.add(base)
                self.gcl.renew()


def _headers(store):
    out = {}
    for name in store.list(fmt.HEADER_PREFIX):
        try:
            out[name[len(fmt.HEADER_PREFIX):]] = store.get(name)
        except NotFound:
            continue                       # removed meanwhile
    return out


def collect(eng, dry_run=False, grace=None):
    grace = GRACE if grace is None else grace
    store = eng.store
    with GcLease(eng) as gcl:
        start = time.time()
        prefixes = (fmt.NODE_PREFIX, fmt.DATA_PREFIX, fmt.CONTENT_PREFIX, fmt.HEADER_PREFIX)
        candidates = [n for n in store.list("v") if n.startswith(prefixes)]
        marker, seen = Marker(eng, gcl), {}
        for _ in range(8):
            headers = _headers(store)
            changed = [vid for vid, raw in headers.items() if seen.get(vid) != raw]
            if not changed:
                break
            for vid in changed:
                marker.mark(fmt.decode_header(headers[vid], vid))
            seen.update(headers)
        else:
            log.warning("gc: headers kept changing; nothing deleted this time")
            return {"dry_run": dry_run, "candidates": len(candidates), "garbage": 0,
                    "deleted": 0, "freed_bytes": 0, "skipped_recent": 0, "aborted": True}
        named = {hdr["id"] for _, hdr in eng.catalog.volumes()}
        garbage, recent = _sweep_list(eng, candidates, marker, named, start - grace)
        freed = 0
        cleanup = getattr(store, "cleanup_temp", None)
        if cleanup is not None and not dry_run:
            cleanup()                      # temp files of writes a crash interrupted
        for name in garbage:
            freed += store.stat(name) or 0
            if not dry_run:
                store.delete(name)
            gcl.renew()
    result = {"dry_run": dry_run, "candidates": len(candidates), "garbage": len(garbage),
              "deleted": 0 if dry_run else len(garbage), "freed_bytes": freed,
              "skipped_recent": recent, "live_nodes": len(marker.nodes),
              "live_objects": len(marker.objects), "aborted": False}
    log.info("gc: %s", result)
    return result


def _sweep_list(eng, candidates, marker, named, horizon):
    garbage, recent = [], 0
    for name in candidates:
        key = name[len(fmt.NODE_PREFIX):]
        if name.startswith(fmt.CONTENT_PREFIX):
            if name not in marker.objects:
                garbage.append(name)
            continue
        try:
            uid = unhex(key)
        except ValueError:
            continue                       # not ours
        if len(uid) != fmt.UID_SIZE:
            continue
        if uid_time(uid) >= horizon:
            recent += 1
            continue
        if name.startswith(fmt.HEADER_PREFIX):
            if key not in named and eng.locks.inquire(key) is None:
                garbage.append(name)       # orphan: crash inside create or remove
        elif name.startswith(fmt.NODE_PREFIX):
            if uid not in marker.nodes:
                garbage.append(name)
        elif name not in marker.objects:
            garbage.append(name)
    return garbage, recent


def disk_usage(eng):
    from . import usage
    vols = images = snaps = logical = allocated = 0
    for _, hdr in eng.catalog.volumes():
        osize = hdr["object_size"]
        if hdr.get("image"):
            images += 1
        else:
            vols += 1
        logical += hdr["size"]
        for root, depth, vid, gen in _trees(hdr):
            allocated += usage.allocated(TreeView(eng.cache, root, depth, vid, gen), osize)
        snaps += len(hdr["snapshots"])
    info = eng.store.info()
    return {"volumes": vols, "images": images, "snapshots": snaps, "logical_bytes": logical,
            "allocated_bytes": allocated, "store_used_bytes": info.used,
            "store_free_bytes": info.free}
