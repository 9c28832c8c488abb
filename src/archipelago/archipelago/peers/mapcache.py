"""vlmcd's per-volume cache of write mappings (see vlmcd.py for when it is valid).

A MAPW reply says: for this epoch, these byte ranges of the volume live in these
objects, and the chunks they touch are recorded in the map (dirty and present in
the object). The cache keeps, per object index, that object and the bitmap of
chunks known so; a later write -- or read -- of only known chunks of the same
epoch needs no mapperd round trip. Memory is one small entry per object written
(not per chunk), and vlmcd bounds the total across volumes.
"""
import time


def chunk_mask(off, n, chunk):
    """Bitmap of the chunks [off, off+n) touches inside one object."""
    first, last = off // chunk, (off + n - 1) // chunk
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


class MapCache:
    __slots__ = ("chunk_size", "confirmed", "entries", "epoch", "object_size", "seen")

    def __init__(self, object_size, chunk_size):
        self.object_size = object_size
        self.chunk_size = chunk_size or object_size
        self.epoch = None
        self.entries = {}        # object index -> [object name, chunk bitmap]
        self.confirmed = 0.0     # when a MAPW last confirmed it (writes: lease checked)
        self.seen = 0.0          # when mapperd last showed the same epoch (reads)

    def __len__(self):
        return len(self.entries)

    def lookup(self, offset, length, ttl, write=True):
        """[[obj, obj_offset, n], ...] for the range if every chunk is known and the
        cache is fresh enough, else None. A write needs a recent MAPW (which checked
        the volume lease); a read only needs the epoch seen recently to be ours."""
        since = self.confirmed if write else max(self.confirmed, self.seen)
        if not self.entries or time.monotonic() - since > ttl:
            return None
        osz = self.object_size
        idx, off = divmod(offset, osz)
        if 0 < length <= osz - off:             # one object (most requests): no loop
            e = self.entries.get(idx)
            if e is None:
                return None
            cs = self.chunk_size
            m = (2 << ((off + length - 1) // cs)) - (1 << (off // cs))   # chunk_mask
            return [[e[0], off, length]] if e[1] & m == m else None
        out, pos, end = [], offset, offset + length
        while pos < end:
            idx, off = divmod(pos, osz)
            n = min(osz - off, end - pos)
            e = self.entries.get(idx)
            m = chunk_mask(off, n, self.chunk_size)
            if e is None or e[1] & m != m:
                return None
            out.append([e[0], off, n])
            pos += n
        return out

    def learn(self, offset, reply):
        """Record a MAPW reply {"epoch", "extents"} for the range starting at offset."""
        if reply["epoch"] != self.epoch:
            self.entries.clear()
            self.epoch = reply["epoch"]
        osz, pos = self.object_size, offset
        for obj, ooff, n in reply["extents"]:
            idx, off = divmod(pos, osz)
            if obj is not None and ooff == off:
                m = chunk_mask(off, n, self.chunk_size)
                e = self.entries.get(idx)
                if e is not None and e[0] == obj:
                    e[1] |= m
                else:
                    self.entries[idx] = [obj, m]
            pos += n
        self.confirmed = time.monotonic()

    def saw_epoch(self, epoch):
        """A MAPR reply showed the volume at `epoch`: reads may trust the cache again."""
        if epoch == self.epoch:
            self.seen = time.monotonic()
