"""A RAM disk backend (tests, the in-memory twin of a volume).

Sparse: an anonymous private mapping whose untouched pages cost nothing;
trimmed whole pages are handed back with MADV_DONTNEED. Allocation is tracked
per PAGE so BLOCK_STATUS can report holes.
"""
import mmap
import threading

from ..errors import InvalidArgument
from . import proto
from .backend import Backend

PAGE = 64 * 1024


class MemoryBackend(Backend):
    """`size` bytes of zeros in memory, shared by all connections of the export."""

    def __init__(self, size, description="memory"):
        if size <= 0:
            raise InvalidArgument(f"memory backend size must be positive, not {size}")
        self._size = size
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._alloc = bytearray((size + PAGE - 1) // PAGE)
        self._lock = threading.Lock()      # guards page state during trim/zero
        self.description = description

    def size(self):
        return self._size

    def pread(self, buf, offset):
        buf[:] = self._map[offset:offset + len(buf)]

    def pwrite(self, buf, offset):
        n = len(buf)
        self._map[offset:offset + n] = buf
        first, last = offset // PAGE, (offset + n - 1) // PAGE
        self._alloc[first:last + 1] = b"\1" * (last - first + 1)

    def trim(self, offset, length):
        self.zero(offset, length)

    def zero(self, offset, length, *, may_trim=True, fast=False):
        end = offset + length
        first_full = (offset + PAGE - 1) // PAGE
        last_full = end // PAGE               # exclusive
        with self._lock:
            if may_trim and first_full < last_full:
                self._clear(offset, first_full * PAGE)
                self._map.madvise(mmap.MADV_DONTNEED, first_full * PAGE,
                                  (last_full - first_full) * PAGE)
                self._alloc[first_full:last_full] = bytes(last_full - first_full)
                self._clear(last_full * PAGE, end)
            else:
                self._clear(offset, end)

    def _clear(self, start, end):
        while start < end:
            n = min(end - start, 1 << 20)
            self._map[start:start + n] = bytes(n)
            first, last = start // PAGE, (start + n - 1) // PAGE
            self._alloc[first:last + 1] = b"\1" * (last - first + 1)
            start += n

    def extents(self, offset, length):
        end = min(offset + length, self._size)
        out = []
        pos = offset
        while pos < end:
            page = pos // PAGE
            state = self._alloc[page]
            nxt = page + 1
            while nxt * PAGE < end and self._alloc[nxt] == state:
                nxt += 1
            stop = min(nxt * PAGE, end)
            flags = 0 if state else proto.STATE_HOLE | proto.STATE_ZERO
            out.append((stop - pos, flags))
            pos = stop
        return out

    def close(self):
        self._map.close()

    def can_trim(self):
        return True

    def can_fast_zero(self):
        return True

    def can_extents(self):
        return True

    def can_multi_conn(self):
        return True
