"""Turning byte ranges into per-object extents (MAPR) and making objects writable
(MAPW): the copy-up of only the touched chunks and the dirty bitmap.

A write to object `idx` needs, before it may be acknowledged by the data path:
  * an entry whose `own` object is this volume's, at its current generation;
  * every touched chunk present in `own` (copied up from `base` first, so that an
    interrupted write leaves the old bytes around it, never zeros);
  * the touched chunks set in `dirty_bm` (diff) and `own_bm` (reads);
all committed by one atomic replace of the leaf before map_write returns.
"""
from typing import NamedTuple

from . import format as fmt
from .format import BASE, BASE_CONTENT, OWN, OWN_CONTENT, SHARED, Entry, new_uid


class Extent(NamedTuple):
    """A piece of a volume range: `length` bytes of object `obj` at `obj_offset`;
    `obj` None means never written (reads as zeros; not valid for writes)."""

    obj: str | None
    obj_offset: int
    length: int


def split(offset, length, object_size):
    """(object index, offset in object, length) pieces of a volume byte range."""
    end = offset + length
    while offset < end:
        idx, off = divmod(offset, object_size)
        n = min(object_size - off, end - offset)
        yield idx, off, n
        offset += n


def chunk_mask(off, length, object_size):
    cs = fmt.chunk_size(object_size)
    first, last = off // cs, (off + length - 1) // cs
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


def read_extents(entry, off, length, object_size):
    """Extents for [off, off+length) of one object described by `entry`."""
    if entry is None or entry.zero:
        return [Extent(None, off, length)]
    own = entry.own_name()
    if not entry.flags & BASE:
        return [Extent(own, off, length)]
    base = entry.base_name()
    cs = fmt.chunk_size(object_size)
    out = []
    pos, end = off, off + length
    while pos < end:
        c = pos // cs
        n = min((c + 1) * cs, end) - pos
        obj = own if entry.own_bm >> c & 1 else base
        if out and out[-1].obj == obj:
            last = out[-1]
            out[-1] = Extent(obj, last.obj_offset, last.length + n)
        else:
            out.append(Extent(obj, pos, n))
        pos += n
    return out


def needs_update(entry, mask, private):
    """False when `entry` is already writable for the chunks in `mask` (fast path)."""
    if entry is None or entry.zero or not private or entry.flags & (SHARED | OWN_CONTENT):
        return True
    if entry.dirty_bm & mask != mask:
        return True
    return bool(entry.flags & BASE) and entry.own_bm & mask != mask


class CopyUp:
    """The data movement of a copy-up, done through the store with the volume lease."""

    def __init__(self, store, lease, object_size, fua=True):
        self.store, self.lease, self.object_size = store, lease, object_size
        self.cs = fmt.chunk_size(object_size)
        self.full = fmt.full_bitmap(object_size)
        # fua=False (group commit, batch.py): the copies are only queued; finish()
        # runs them, many at a time, and the caller flushes the store before the
        # map names them. `copied` says whether there is anything to flush.
        self.fua = fua
        self.copied = False
        self.jobs = []                  # (source object, target object, offset)

    def _queue(self, src, dst, chunks):
        c = 0
        while chunks >> c:
            if chunks >> c & 1:
                self.jobs.append((src, dst, c * self.cs))
            c += 1

    def _copy_one(self, job):
        src, dst, off = job
        data = self.store.read(src, off, self.cs)
        if data.count(0) == len(data):      # a hole reads as zeros already
            return False
        self.store.write(dst, off, data, lease=self.lease)
        return True

    def finish(self, threads=16):
        """Run the queued copies (fua=False), up to `threads` at once."""
        jobs, self.jobs = self.jobs, []
        if len(jobs) <= 1:
            done = [self._copy_one(j) for j in jobs]
        else:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
                done = list(pool.map(self._copy_one, jobs))
        self.copied = self.copied or any(done)

    def _copy_chunks(self, entry, mask, skip=0):
        """Copy the chunks of `mask` not yet in own from base into own, durably (or
        queued for finish()); chunks in `skip` the caller overwrites whole."""
        missing = mask & ~entry.own_bm & ~skip
        base, own = entry.base_name(), entry.own_name()
        if not self.fua:
            self._queue(base, own, missing)
            missing = 0
        pending = None                  # the last chunk is written with FUA: one sync
        c = 0
        while missing >> c:
            if missing >> c & 1:
                data = self.store.read(base, c * self.cs, self.cs)
                if data.count(0) != len(data):      # a hole reads as zeros already
                    if pending is not None:
                        self.store.write(own, pending[0], pending[1], lease=self.lease)
                    pending = (c * self.cs, data)
            c += 1
        if pending is not None:
            self.store.write(own, pending[0], pending[1], fua=self.fua, lease=self.lease)
            self.copied = True
        entry.own_bm |= mask
        if entry.own_bm & self.full == self.full:
            # own now holds the whole object: drop the base (one reference less).
            entry.flags &= ~(BASE | BASE_CONTENT)
            entry.base = b""
            entry.own_bm = self.full

    def _copy_own(self, entry, new, chunks):
        """Queue the copy of the overlay's own `chunks` into the new own object
        (group commit: no durable whole-object copy per entry)."""
        self._queue(entry.own_name(), new.own_name(), chunks)

    def prepare(self, entry, mask, gen, private, skip=0):
        """The new entry for a write of the chunks in `mask`; data copied already
        (except the chunks in `skip`, which the caller overwrites whole)."""
        if entry is None or entry.zero:
            # Never written: a fresh object; holes read as zeros, nothing to copy.
            return Entry(OWN, gen, new_uid(), own_bm=mask, dirty_bm=mask)
        if private and not entry.flags & (SHARED | OWN_CONTENT):
            new = Entry(entry.flags, entry.gen, entry.own, entry.base, entry.src,
                        entry.own_bm, entry.dirty_bm | mask)
            if new.flags & BASE:
                self._copy_chunks(new, mask, skip)
            else:
                new.own_bm |= mask
            return new
        src = entry.own[:fmt.UID_SIZE]
        if entry.flags & BASE:
            # A sparse overlay: copy what it holds (only its chunks), keep its base.
            new = Entry(OWN | BASE | (entry.flags & BASE_CONTENT), gen, new_uid(),
                        entry.base, src, entry.own_bm, mask)
            if self.fua:
                self.store.copy(entry.own_name(), new.own_name(), lease=self.lease)
            else:
                self._copy_own(entry, new, entry.own_bm & ~skip)
        else:
            # A self-contained object becomes the base; nothing is copied up front.
            new = Entry(OWN | BASE | (BASE_CONTENT if entry.flags & OWN_CONTENT else 0),
                        gen, new_uid(), entry.own, src, 0, mask)
        self._copy_chunks(new, mask, skip)
        return new
