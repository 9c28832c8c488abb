"""vlmcd's per-volume cache of write mappings (see vlmcd.py for when it is valid).

A MAPW reply says: for this epoch, these byte ranges of the volume live in these
objects, and the chunks they touch are recorded in the map (dirty and present in
the object). The cache keeps, per object index, that object and the bitmap of
chunks known so; a later write -- or read -- of only known chunks of the same
epoch needs no mapperd round trip. Memory is one small entry per object written
(not per chunk), and vlmcd bounds the total across volumes.

Reads also learn, from a MAPR of whole objects that mapperd answered while it
held the volume's lease ("held"): where each chunk of the object lives now (its
own object, an origin's or a snapshot's object, or nowhere: zeros). That stays
true until this node changes the map -- nobody else can while the lease is held
here -- so a later read of the object needs no round trip either (after a
snapshot, or in a clone, most reads are of such chunks). Every MAPW learned drops
the read mappings of the objects it touched, and a MAPR that a MAPW overtook is
not learned (`wgen`). They are trusted for the TTL after the lease was last seen
held (a MAPW or such a MAPR), as writes are.
"""
import time

MAX_READ_EXTENTS = 16384    # read mappings kept per volume (~150 bytes each)


def chunk_mask(off, n, chunk):
    """Bitmap of the chunks [off, off+n) touches inside one object."""
    first, last = off // chunk, (off + n - 1) // chunk
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


def clip(extents, skip, length):
    """The part [skip, skip+length) of a range mapped as `extents` [[obj, off, n], ...]."""
    out, pos, end = [], 0, skip + length
    for obj, ooff, n in extents:
        lo, hi = max(pos, skip), min(pos + n, end)
        if lo < hi:
            out.append([obj, ooff + lo - pos, hi - lo])
        pos += n
        if pos >= end:
            break
    return out


class MapCache:
    __slots__ = ("chunk_size", "confirmed", "entries", "epoch", "held", "lease",
                 "nread", "object_size", "reads", "seen", "size", "wgen")

    def __init__(self, object_size, chunk_size, size=None):
        self.object_size = object_size
        self.chunk_size = chunk_size or object_size
        self.size = size         # the volume's (None: reads learn nothing)
        self.epoch = None
        self.entries = {}        # object index -> [object name, chunk bitmap]
        self.reads = {}          # object index -> its whole mapping [[obj, off, n], ...]
        self.nread = 0           # extents in `reads` (what their memory grows with)
        self.wgen = 0            # MAPW replies learned (a MAPR they overtook is stale)
        self.confirmed = 0.0     # when a MAPW last confirmed it (writes: lease checked)
        self.seen = 0.0          # when mapperd last showed the same epoch (reads)
        self.held = 0.0          # when mapperd last answered a MAPR holding the lease
        self.lease = 0.0         # the same, whatever the epoch (when to widen MAPRs)

    def __len__(self):
        return len(self.entries) + self.nread

    def _forget_reads(self):
        self.reads.clear()
        self.nread = 0

    def lookup(self, offset, length, ttl, write=True):
        """[[obj, obj_offset, n], ...] for the range if every chunk is known and the
        cache is fresh enough, else None. A write needs a recent MAPW (which checked
        the volume lease); a read of written chunks only needs the epoch seen
        recently to be ours, and one served from the read mappings the lease seen
        held recently (a MAPW, or a MAPR mapperd answered holding it)."""
        now = time.monotonic()
        osz = self.object_size
        idx, off = divmod(offset, osz)
        if 0 < length <= osz - off:             # one object (most requests): no loop
            e = self.entries.get(idx)
            if e is not None and now - (self.confirmed if write else
                                        max(self.confirmed, self.seen)) <= ttl:
                cs = self.chunk_size
                m = (2 << ((off + length - 1) // cs)) - (1 << (off // cs))   # chunk_mask
                if e[1] & m == m:
                    return [[e[0], off, length]]
            if write:
                return None
            r = self.reads.get(idx)
            if r is None or now - max(self.confirmed, self.held) > ttl:
                return None
            return clip(r, off, length)
        entries = self.entries if now - (self.confirmed if write else
                                         max(self.confirmed, self.seen)) <= ttl else {}
        reads = (self.reads if not write and now - max(self.confirmed, self.held) <= ttl
                 else {})
        out, pos, end = [], offset, offset + length
        while pos < end:
            idx, off = divmod(pos, osz)
            n = min(osz - off, end - pos)
            e = entries.get(idx)
            m = chunk_mask(off, n, self.chunk_size)
            if e is not None and e[1] & m == m:
                out.append([e[0], off, n])
            else:
                r = reads.get(idx)
                if r is None:
                    return None
                out.extend(clip(r, off, n))
            pos += n
        return out

    def learn(self, offset, reply):
        """Record a MAPW reply {"epoch", "extents"} for the range starting at offset."""
        if reply["epoch"] != self.epoch:
            self.entries.clear()
            self._forget_reads()
            self.epoch = reply["epoch"]
        self.wgen += 1
        osz, pos = self.object_size, offset
        for obj, ooff, n in reply["extents"]:
            idx, off = divmod(pos, osz)
            for i in range(idx, (pos + n - 1) // osz + 1):
                gone = self.reads.pop(i, None)  # the map changed there: ask again
                if gone is not None:
                    self.nread -= len(gone)
            if obj is not None and ooff == off:
                m = chunk_mask(off, n, self.chunk_size)
                e = self.entries.get(idx)
                if e is not None and e[0] == obj:
                    e[1] |= m
                else:
                    self.entries[idx] = [obj, m]
            pos += n
        self.confirmed = time.monotonic()

    def saw_epoch(self, epoch, held=False):
        """A MAPR reply showed the volume at `epoch` (`held`: mapperd answered it
        holding the lease): reads may trust the cache again."""
        now = time.monotonic()
        if held:
            self.lease = now
        if epoch == self.epoch:
            self.seen = now
            if held:
                self.held = now

    def lease_seen(self, ttl):
        """mapperd held the lease lately (a MAPW, or a MAPR that said so): a read's
        MAPR is worth widening to whole objects, whose mappings will be kept."""
        return time.monotonic() - max(self.confirmed, self.lease) <= ttl

    def whole(self, offset, length):
        """The object-aligned range around [offset, offset+length) that a read's MAPR
        asks for so that reads learn whole objects (None: the volume size unknown)."""
        if self.size is None:
            return None
        osz = self.object_size
        start = offset - offset % osz
        return start, min(-(-(offset + length) // osz) * osz, self.size) - start

    def learn_read(self, start, reply, wgen):
        """Record a MAPR reply for whole objects from `start`, answered while mapperd
        held the lease (reply["held"]), unless a MAPW was learned since it was asked
        (`wgen`, read before asking): its answer may predate that change."""
        if not reply.get("held") or wgen != self.wgen:
            return
        if self.epoch is not None and reply["epoch"] < self.epoch:
            return                              # overtaken by a newer epoch's answer
        if reply["epoch"] != self.epoch:
            self.entries.clear()
            self._forget_reads()
            self.epoch = reply["epoch"]
        if self.nread + len(reply["extents"]) > MAX_READ_EXTENTS:
            self._forget_reads()                # a fragmented volume: start over
        osz, pos = self.object_size, start
        cur, idx = [], start // osz
        for obj, ooff, n in reply["extents"]:
            while n:
                k = min(n, osz - pos % osz)
                cur.append([obj, ooff, k])
                pos, n = pos + k, n - k
                ooff += k
                if pos % osz == 0 or pos >= self.size:
                    gone = self.reads.get(idx)
                    self.nread += len(cur) - (len(gone) if gone is not None else 0)
                    self.reads[idx] = cur
                    cur, idx = [], idx + 1
        self.seen = self.held = self.lease = time.monotonic()
