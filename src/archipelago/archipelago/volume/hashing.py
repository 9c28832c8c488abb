"""Hashing a snapshot into a content-addressed image (dedup).

Every object of the snapshot is read, stripped of trailing zeros and stored as
vc.<SHA-256> with put_if_absent: identical objects of every volume and image are
stored once. The result is a read-only image volume named by the hash of its
object list (64 hex digits); hashing the same content twice gives the same image.
Clones of an image copy up from the shared content objects.

The snapshot itself is left as it is (its tree stays diffable against its
neighbours); its own objects are freed by GC once it is removed. Hashing holds the
GC lease: a content object GC found unreferenced cannot be re-referenced under it.
"""
import hashlib
import logging
import struct

from ..errors import Exists, InvalidArgument, NotFound
from . import format as fmt
from .format import FANOUT, LEAF_ENTRIES, OWN, OWN_CONTENT, Entry, Node, hexuid, new_uid
from .gc import GcLease
from .mapping import read_extents

log = logging.getLogger(__name__)


def _object_data(store, entry, object_size):
    buf = bytearray(object_size)
    view = memoryview(buf)
    for ext in read_extents(entry, 0, object_size, object_size):
        if ext.obj is not None:
            store.readinto(ext.obj, ext.obj_offset, view[ext.obj_offset:
                                                         ext.obj_offset + ext.length])
    return bytes(buf).rstrip(b"\0")


def _build_tree(store, owner, items, depth):
    """Write a tree for sorted (index, Entry) items; returns the root UID (or None)."""
    level_nodes = {}                       # node index at level 0 -> Node
    for idx, entry in items:
        node = level_nodes.get(idx // LEAF_ENTRIES)
        if node is None:
            node = level_nodes[idx // LEAF_ENTRIES] = Node(new_uid(), 0, 0, owner)
        node.set_entry(idx % LEAF_ENTRIES, entry)
    for level in range(0, depth + 1):
        for node in level_nodes.values():
            store.replace(node.name, node.encode())
        if level == depth:
            break
        parents = {}
        for i, node in level_nodes.items():
            parent = parents.get(i // FANOUT)
            if parent is None:
                parent = parents[i // FANOUT] = Node(new_uid(), level + 1, 0, owner)
            parent.set_child(i % FANOUT, node.uid)
        level_nodes = parents
    return next(iter(level_nodes.values())).uid if level_nodes else None


def hash_spec(eng, spec):
    t, view = eng.view(spec)
    if not t.read_only:
        raise InvalidArgument(f"{spec} is writable: hash a snapshot ({spec}@SNAP) or an image")
    if t.rec is None and t.hdr.get("image"):
        return t.hdr["name"]
    osize, size = t.object_size, t.size
    full = fmt.full_bitmap(osize)
    digest = hashlib.sha256(b"archipelago-image-v1" + struct.pack("<QQ", osize, size))
    items, stored = [], 0
    with GcLease(eng, wait=True) as gcl:
        for idx, entry in view.entries():
            data = _object_data(eng.store, entry, osize)
            if not data:
                continue                       # all zeros: no object at all
            h = hashlib.sha256(data).digest()
            if eng.store.put_if_absent(fmt.CONTENT_PREFIX + h.hex(), data):
                stored += len(data)
            items.append((idx, Entry(OWN | OWN_CONTENT, 0, h, own_bm=full)))
            digest.update(struct.pack("<Q", idx) + h)
            gcl.renew()
        name = digest.hexdigest()
        try:
            existing = eng.catalog.lookup(name)
        except NotFound:
            existing = None
        if existing is not None:
            if not existing.get("image"):
                raise Exists(f"a volume named {name} exists; it is not the image of {spec}")
            return name
        hdr = eng._new_header(name, size, osize, read_only=True, image=True, origin=spec)
        root = _build_tree(eng.store, fmt.unhex(hdr["id"]), items, hdr["depth"])
        hdr["root"] = hexuid(root) if root else None
        try:
            eng._publish(hdr)
        except Exists:
            return name                        # hashed at the same time elsewhere
    log.info("hashed %s into image %s (%d objects, %d new bytes)", spec, name, len(items),
             stored)
    return name
