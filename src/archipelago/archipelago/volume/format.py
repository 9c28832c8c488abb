"""On-store format of volume maps (format 1).

Store objects (all names fit the store alphabet; a volume name never becomes a path):
  vn.<NAME>   name index: {"id": ID} for a volume or image NAME (put_if_absent: the
              one atomic claim of a name across every engine on the store);
  vh.<ID>     volume header (JSON): size, object size, generation, epoch, root of the
              map tree, snapshot records, origin; written whole with `replace`;
  vm.<UID>    one map-tree node (binary, below);
  vd.<UID>    a data object written by a volume (sparse: holes read as zeros);
  vc.<SHA256> a content-addressed object (hashed images; stored once per content).
UIDs are 12 bytes: 4 bytes of creation time (seconds) + 8 random bytes, in hex. The
time prefix lets GC leave alone anything created after it started (minus a grace),
which covers objects written but not yet linked into a map.

Map tree: a radix tree; leaves hold LEAF_ENTRIES entries, interior nodes FANOUT child
UIDs; `depth` levels of interior nodes above the leaves (depth 0: the root is a leaf).
A missing child is an unallocated range (zeros). A node records the volume that
wrote it and that volume's generation: it is mutable only for that volume while its
generation is unchanged. A snapshot bumps the generation, so every node becomes
shared and is copied on its first modification (copy-on-write of map blocks): the
snapshot and every clone keep their own root and never read through a parent.
Node encoding: NODE_HDR (magic, format, level, generation, owner volume, the node it
was copied from and a bitmap of the slots changed since, CRC-32 of the body), then
the body: a presence bitmap of the slots and the non-empty slots.

Entry (ENTRY_SIZE bytes): flags, gen, own, base, src, own_bm, dirty_bm
  own      the object holding this object's data (vd UID or vc hash)
  base     optional read-only object the unwritten chunks fall through to: after a
           snapshot or clone the first write does not copy the whole object, only
           the touched chunks go into a new sparse `own` (one hop, never a chain:
           a base is always a self-contained object)
  src      UID (or hash prefix) of the `own` this entry was derived from at copy-up
  own_bm   chunks present in `own` (meaningful with a base)
  dirty_bm chunks written since this `own` was created (sub-object diff)
"""
import binascii
import json
import os
import struct
import time
import zlib

from ..errors import BackendError

FORMAT = 1
LEAF_ENTRIES = 128
FANOUT = 512
CHUNKS = 64                      # bits in own_bm / dirty_bm
MIN_CHUNK = 4096
MIN_OBJECT, MAX_OBJECT = 64 << 10, 32 << 20
DEFAULT_OBJECT = 4 << 20
MAX_SIZE = 1 << 63

# entry flags
OWN = 1            # own object present (else the entry is zero: never written)
OWN_CONTENT = 2    # own is a content hash (vc.)
BASE = 4           # a base object backs the chunks not in own_bm
BASE_CONTENT = 8   # base is a content hash
SHARED = 16        # own belongs to an older generation or another volume: copy-up

ENTRY = struct.Struct("<BxxxI32s32s12sQQ")
ENTRY_SIZE = ENTRY.size
ZERO_ENTRY = bytes(ENTRY_SIZE)
# magic, version, level, gen, owner, src (node copied from), modified slots, crc
NODE_HDR = struct.Struct("<4sBBxxI12s12s64sI")
NODE_MAGIC = b"AVMN"
BITMAP_BYTES = max(LEAF_ENTRIES, FANOUT) // 8
UID_SIZE = 12
NO_UID = bytes(UID_SIZE)

NAME_PREFIX, HEADER_PREFIX, NODE_PREFIX = "vn.", "vh.", "vm."
DATA_PREFIX, CONTENT_PREFIX = "vd.", "vc."
LEASE_PREFIX = "vl."
GC_LEASE = "vgc"


def new_uid():
    return struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + os.urandom(8)


def uid_time(uid):
    return struct.unpack(">I", uid[:4])[0]


def hexuid(uid):
    return binascii.hexlify(uid).decode()


def unhex(text):
    return binascii.unhexlify(text)


def chunk_size(object_size):
    return max(object_size // CHUNKS, MIN_CHUNK)


def nchunks(object_size):
    return object_size // chunk_size(object_size)


def full_bitmap(object_size):
    return (1 << nchunks(object_size)) - 1


def depth_for(nobjects):
    """Interior levels needed to address `nobjects` objects."""
    depth, cap = 0, LEAF_ENTRIES
    while cap < nobjects:
        depth, cap = depth + 1, cap * FANOUT
    return depth


def span(level):
    """Objects covered by one node at `level`."""
    return LEAF_ENTRIES * FANOUT ** level if level >= 0 else 1


# -- entries --------------------------------------------------------------------------------
class Entry:
    """A decoded map entry (mutable; pack() to store)."""

    __slots__ = ("base", "dirty_bm", "flags", "gen", "own", "own_bm", "src")

    def __init__(self, flags=0, gen=0, own=b"", base=b"", src=NO_UID, own_bm=0, dirty_bm=0):
        self.flags, self.gen, self.own, self.base = flags, gen, own, base
        self.src, self.own_bm, self.dirty_bm = src, own_bm, dirty_bm

    @classmethod
    def unpack(cls, raw):
        flags, gen, own, base, src, own_bm, dirty_bm = ENTRY.unpack(raw)
        own = own if flags & OWN_CONTENT else own[:UID_SIZE]
        base = base if flags & BASE_CONTENT else base[:UID_SIZE]
        return cls(flags, gen, own, base, src, own_bm, dirty_bm)

    def pack(self):
        return ENTRY.pack(self.flags, self.gen, self.own, self.base, self.src,
                          self.own_bm, self.dirty_bm)

    @property
    def zero(self):
        return not self.flags & OWN

    def own_name(self):
        return object_name(self.own, self.flags & OWN_CONTENT)

    def base_name(self):
        return object_name(self.base, self.flags & BASE_CONTENT) if self.flags & BASE else None


def object_name(key, content):
    return (CONTENT_PREFIX if content else DATA_PREFIX) + binascii.hexlify(key).decode()


# -- nodes ----------------------------------------------------------------------------------
class Node:
    """One map-tree node. `data` is the raw array of entries (leaf) or child UIDs."""

    __slots__ = ("data", "gen", "level", "modified", "owner", "src", "uid")

    def __init__(self, uid, level, gen, owner, data=None, src=NO_UID, modified=0):
        self.uid, self.level, self.gen, self.owner = uid, level, gen, owner
        # A copy-on-write copy remembers its source and which slots changed since:
        # a diff against the source then looks at those slots only.
        self.src, self.modified = src, modified
        if data is None:
            data = bytearray((ENTRY_SIZE * LEAF_ENTRIES) if level == 0 else UID_SIZE * FANOUT)
        self.data = data

    @property
    def name(self):
        return NODE_PREFIX + hexuid(self.uid)

    # leaf access
    def entry(self, i):
        return Entry.unpack(self.data[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE])

    def raw_entry(self, i):
        return bytes(self.data[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE])

    def set_entry(self, i, entry):
        self.data[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE] = entry.pack() if entry else ZERO_ENTRY
        self.modified |= 1 << i

    # interior access
    def child(self, i):
        uid = bytes(self.data[i * UID_SIZE:(i + 1) * UID_SIZE])
        return None if uid == NO_UID else uid

    def set_child(self, i, uid):
        self.data[i * UID_SIZE:(i + 1) * UID_SIZE] = uid or NO_UID
        self.modified |= 1 << i

    def modified_slots(self):
        m, i = self.modified, 0
        while m:
            if m & 1:
                yield i
            m >>= 1
            i += 1

    def children(self):
        for i in range(FANOUT):
            uid = self.child(i)
            if uid is not None:
                yield i, uid

    def entries(self):
        """(index, Entry) of every allocated entry of a leaf."""
        data = self.data
        for i in range(LEAF_ENTRIES):
            if data[i * ENTRY_SIZE] & OWN:
                yield i, self.entry(i)

    def _slot(self):
        return ENTRY_SIZE if self.level == 0 else UID_SIZE

    def encode(self):
        """Header, then a presence bitmap and only the non-empty slots (sparse leaves
        stay small without spending CPU on compression)."""
        slot, data = self._slot(), self.data
        present, parts = 0, []
        for i in range(len(data) // slot):
            piece = data[i * slot:(i + 1) * slot]
            if piece.count(0) != slot:
                present |= 1 << i
                parts.append(piece)
        body = present.to_bytes(BITMAP_BYTES, "little") + b"".join(parts)
        return NODE_HDR.pack(NODE_MAGIC, FORMAT, self.level, self.gen, self.owner, self.src,
                             self.modified.to_bytes(BITMAP_BYTES, "little"),
                             zlib.crc32(body)) + body

    @classmethod
    def decode(cls, uid, raw):
        try:
            magic, version, level, gen, owner, src, modified, crc = NODE_HDR.unpack_from(raw)
            body = raw[NODE_HDR.size:]
            if magic != NODE_MAGIC or version != FORMAT or zlib.crc32(body) != crc:
                raise ValueError("bad magic, version or checksum")
            node = cls(uid, level, gen, owner, None, src, int.from_bytes(modified, "little"))
            slot = node._slot()
            present = int.from_bytes(body[:BITMAP_BYTES], "little")
            pos, i = BITMAP_BYTES, 0
            if len(body) == BITMAP_BYTES + len(node.data):     # every slot present
                node.data[:] = body[BITMAP_BYTES:]
                pos, present = len(body), 0
            while present:
                if present & 1:
                    node.data[i * slot:(i + 1) * slot] = body[pos:pos + slot]
                    pos += slot
                present >>= 1
                i += 1
            if pos != len(body) or i * slot > len(node.data):
                raise ValueError("bad length")
        except (ValueError, struct.error) as e:
            raise BackendError(f"map node {hexuid(uid)} is corrupt: {e}") from None
        return node


# -- headers --------------------------------------------------------------------------------
def header_name(vid):
    return HEADER_PREFIX + vid


def encode_header(hdr):
    return json.dumps(hdr, sort_keys=True, separators=(",", ":")).encode()


def decode_header(raw, what):
    try:
        hdr = json.loads(raw)
    except ValueError:
        raise BackendError(f"header of {what} is corrupt") from None
    if hdr.get("format") != FORMAT:
        raise BackendError(f"header of {what} has unknown format {hdr.get('format')!r}")
    return hdr
