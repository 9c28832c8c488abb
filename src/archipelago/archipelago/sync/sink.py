"""Where a receive puts verified records until the commit: a staging volume or a
spool file.

VolumeSink writes them into the staging volume (a few writes in flight); a fresh
volume skips zero records (it reads zeros already). SpoolSink appends the records
verbatim to a local file (`STATE/recv-VOL.spool`), fsynced at each checkpoint,
and the commit applies them to the target in one pass: incremental streams are
written through the volume engine once instead of twice (stage, then copy).
`apply_spool` replays a spool (verifying every record again) into a volume.
"""
import contextlib
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import BackendError
from . import format as F

DEPTH = 4
_ZEROS = memoryview(bytes(F.MAX_PAYLOAD))


class _Writes:
    """Volume writes, at most DEPTH in flight."""

    def __init__(self, vol):
        self.vol = vol
        self.pool = ThreadPoolExecutor(DEPTH)
        self.inflight = deque()

    def submit(self, fn, *args):
        while len(self.inflight) >= DEPTH:
            self.inflight.popleft().result()
        self.inflight.append(self.pool.submit(fn, *args))

    def data(self, offset, payload):
        self.submit(self.vol.pwrite, bytes(payload), offset)

    def zero(self, offset, length):
        for off in range(offset, offset + length, F.MAX_PAYLOAD):
            self.submit(self.vol.pwrite, _ZEROS[:min(F.MAX_PAYLOAD, offset + length - off)],
                        off)

    def drain(self):
        while self.inflight:
            self.inflight.popleft().result()

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.inflight.clear()
        self.vol.close()


class VolumeSink:
    def __init__(self, vol, fresh):
        self.w = _Writes(vol)
        self.fresh = fresh

    def put(self, rec):
        if rec.type == F.DATA:
            self.w.data(rec.offset, rec.payload)
        elif not self.fresh:
            self.w.zero(rec.offset, rec.length)

    def sync(self):
        """Everything put so far is durable; returns nothing to remember."""
        self.w.drain()
        self.w.vol.flush()
        return {}

    def close(self):
        self.w.close()


@contextlib.contextmanager
def _io(path):
    try:
        yield
    except OSError as e:
        raise BackendError(f"receive spool {path}: {e.strerror or e}", errno=e.errno) \
            from None


class SpoolSink:
    def __init__(self, path, size):
        """Append to spool `path`, cut back to `size` (the last checkpoint) first."""
        self.path = path
        with _io(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self.f = os.fdopen(fd, "r+b")
            if size == 0:
                self.f.truncate(0)
                self.f.write(F.PREAMBLE.pack(F.MAGIC, F.VERSION, 0))
            else:
                self.f.truncate(size)
                self.f.seek(size)

    def put(self, rec):
        head = F.HEAD.pack(rec.type, 0, 0, rec.seq, rec.offset, rec.length,
                           len(rec.payload), 0)
        with _io(self.path):
            self.f.write(head + rec.digest)
            if rec.payload:
                self.f.write(rec.payload)

    def sync(self):
        with _io(self.path):
            self.f.flush()
            os.fsync(self.f.fileno())
            return {"spool_size": self.f.tell()}

    def close(self):
        with contextlib.suppress(OSError):
            self.f.close()


def apply_spool(path, size, vol):
    """Write the records of spool `path` (its first `size` bytes) into Volume `vol`;
    records re-sent after a resume from an older checkpoint simply overwrite."""
    w = _Writes(vol)
    try:
        with _io(path), open(path, "rb") as f:
            r = F.Reader(f)
            r.preamble()
            while r.bytes < size:
                r.seq = None                 # a resume may restart the numbering
                rec = r.next()
                if rec.type == F.DATA:
                    w.data(rec.offset, rec.payload)
                elif rec.type == F.ZERO:
                    w.zero(rec.offset, rec.length)
        w.drain()
        vol.flush()
    finally:
        w.close()
