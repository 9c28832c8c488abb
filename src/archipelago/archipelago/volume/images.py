"""Importing a raw disk image straight into a named, hashed, read-only image.

    info, stats = import_image(eng, "centos7", fileobj, size, progress=cb)

The same result as `vlmc import` + snapshot + `hash`, in one pass and without a
temporary volume: every object-sized block of the file that holds data is stripped
of trailing zeros and stored as vc.<SHA-256> with put_if_absent (identical blocks
of every image and hashed snapshot are stored once); holes (SEEK_DATA/SEEK_HOLE)
and all-zero blocks get no object at all. The image is published under `name`
(read_only, image=True; `content` is the hash `hash()` would name it by), so
clone(name, ...) provisions volumes from it in O(1). Like hashing, the import holds
the GC lease while it stores content objects that are not referenced yet.

stats: objects (blocks with data), stored (bytes of its content objects),
added (bytes this import wrote to the store; stored - added was already there).
"""
import hashlib
import logging
import os
import struct

from ..errors import Exists, NotFound
from ..names import validate_name
from . import format as fmt
from .checks import check_object_size, check_size
from .format import OWN, OWN_CONTENT, Entry, hexuid
from .gc import GcLease
from .hashing import _build_tree

log = logging.getLogger(__name__)


def _data_blocks(fd, size, osize):
    """Object indexes of `fd` that may hold data (holes skipped), in order."""
    pos, last = 0, -1
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:                       # ENXIO: only a hole remains (or no seek)
            return
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        for idx in range(max(start // osize, last + 1), (end - 1) // osize + 1):
            yield idx
            last = idx
        pos = end


def import_image(eng, name, f, size, *, object_size=fmt.DEFAULT_OBJECT, progress=None):
    """Import `size` bytes of the raw image file object `f` (a regular file) as image
    `name`. `progress(done, total)` is called after each block. Returns (VolumeInfo,
    stats). The image size is `size` rounded up to 512 bytes."""
    validate_name(name)
    check_object_size(object_size)
    vsize = check_size(max(512, -(-size // 512) * 512))
    osize = object_size
    try:
        eng.catalog.lookup(name)
        raise Exists(f"volume or image {name} already exists")
    except NotFound:
        pass
    fd = f.fileno()
    full = fmt.full_bitmap(osize)
    digest = hashlib.sha256(b"archipelago-image-v1" + struct.pack("<QQ", osize, vsize))
    items, seen, stored, added = [], set(), 0, 0
    buf = bytearray(osize)
    with GcLease(eng, wait=True) as gcl:
        for idx in _data_blocks(fd, size, osize):
            n = min(osize, size - idx * osize)
            got = os.preadv(fd, [memoryview(buf)[:n]], idx * osize)
            data = bytes(buf[:got]).rstrip(b"\0")
            if progress is not None:
                progress(idx * osize + n, size)
            if not data:
                continue                      # zeros: no object
            h = hashlib.sha256(data).digest()
            if h not in seen:
                seen.add(h)
                stored += len(data)
                if eng.store.put_if_absent(fmt.CONTENT_PREFIX + h.hex(), data):
                    added += len(data)
            items.append((idx, Entry(OWN | OWN_CONTENT, 0, h, own_bm=full)))
            digest.update(struct.pack("<Q", idx) + h)
            gcl.renew()
        hdr = eng._new_header(name, vsize, osize, read_only=True, image=True,
                              content=digest.hexdigest())
        root = _build_tree(eng.store, fmt.unhex(hdr["id"]), items, hdr["depth"])
        hdr["root"] = hexuid(root) if root else None
        eng._publish(hdr)
    if progress is not None:
        progress(size, size)
    stats = {"objects": len(items), "stored": stored, "added": added}
    log.info("imported image %s (%d bytes): %s", name, vsize, stats)
    return eng.info(name, usage=False), stats
