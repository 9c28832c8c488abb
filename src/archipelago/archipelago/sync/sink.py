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
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import BackendError
from . import format as F

DEPTH = 4
COMMIT_DEPTH = 16           # writes in flight while a spool is applied
GROUP_BYTES = 64 << 20      # a group of records whose map updates commit together
GROUP_RANGES = 1024
VERIFIERS = 2               # threads re-verifying a group's checksums
_ZEROS = memoryview(bytes(F.MAX_PAYLOAD))


class _Writes:
    """Volume writes, at most DEPTH in flight."""

    def __init__(self, vol, depth=DEPTH):
        self.vol = vol
        self.depth = depth
        self.pool = ThreadPoolExecutor(depth)
        self.inflight = deque()

    def submit(self, fn, *args):
        while len(self.inflight) >= self.depth:
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
    def __init__(self, path, size, version=F.VERSION):
        """Append to spool `path`, cut back to `size` (the last checkpoint) first; the
        records keep the stream's digests, so the spool has the stream's `version`."""
        self.path = path
        with _io(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self.f = os.fdopen(fd, "r+b")
            if size == 0:
                self.f.truncate(0)
                self.f.write(F.PREAMBLE.pack(F.MAGIC, version, 0))
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


def _prepare(vol, group):
    """One group commit of the map updates for the writes in `group` (a sync commit
    writes every byte of them, and writes them again if it is interrupted); the
    mappings per range (None where the volume has no prepare)."""
    prepare = getattr(vol, "prepare", None)
    if prepare is None:
        return None
    return prepare([(off, n) for off, n, _ in group], whole=True)


def _direct_store(vol):
    """The node's data store in this process (Client.direct_store), or None."""
    get = getattr(vol, "direct_store", None)
    return get() if get is not None else None


def _write_extents(store, extents, data):
    """Write `data` into the objects `extents` ([object, offset, length], as prepare
    mapped the range) on the in-process store."""
    data = memoryview(data)
    pos = 0
    for obj, ooff, n in extents:
        if obj is None:
            raise BackendError("mapperd mapped a write to no object")
        store.write(obj, ooff, data[pos:pos + n])
        pos += n
    if pos != len(data):
        raise BackendError(f"mapperd mapped {pos} bytes of a {len(data)}-byte write")


def apply_spool(path, size, vol, times=None, verified=False):
    """Write the records of spool `path` (its first `size` bytes) into Volume `vol`;
    records re-sent after a resume from an older checkpoint simply overwrite.

    `verified`: this process wrote the whole spool moments ago, from records it
    verified on arrival (Job.spooled_here), so their checksums are not computed a
    third time (sender, arrival, here: format 1's BLAKE2b runs at ~330 MB/s a core
    here, a third of a second per 100 MiB; format 2's SHA-256 about 2.4x that). A
    spool from another process (a resumed receive, a commit run again after a
    crash) is always verified.

    Records go in groups (GROUP_BYTES / GROUP_RANGES): the map updates of a group
    are committed together (Volume.prepare), then its writes run COMMIT_DEPTH at a
    time, each finding its object ready. Every record is verified again first, a
    group at a time, before its map changes. `times` (a dict) gets the seconds
    spent in "verify", "map" (the group commits), "write" (reading the spool, the
    writes) and "flush"."""
    times = {} if times is None else times
    clock = _Clock(times)
    store = _direct_store(vol)
    writers = ThreadPoolExecutor(COMMIT_DEPTH)
    hashers = ThreadPoolExecutor(VERIFIERS)
    written = deque()                # the futures of the groups still being written
    group, nbytes = [], 0

    def flush_group():
        nonlocal nbytes
        if not verified:
            with clock("verify"):
                # The group's checksums, in parallel (hashlib releases the GIL), before
                # its map changes: a spool damaged on disk stops the commit here.
                list(hashers.map(F.Record.verify,
                                 [r for _, _, r in group if r is not None]))
        with clock("map"):
            mapped = _prepare(vol, group)
        # At most two groups' writes queued: this one's verify and group commit ran
        # while the previous one's writes were going on.
        while len(written) > 1:
            for fut in written.popleft():
                fut.result()
        if store is not None and mapped is not None:
            written.append([writers.submit(_write_extents, store, exts,
                                           _ZEROS[:n] if rec is None else rec.payload)
                            for (_off, n, rec), exts in zip(group, mapped, strict=True)])
        else:
            written.append([writers.submit(vol.pwrite,
                                           _ZEROS[:n] if rec is None else rec.payload, off)
                            for off, n, rec in group])
        group.clear()
        nbytes = 0

    try:
        with clock("write"), _io(path), open(path, "rb") as f:
            r = F.Reader(f)
            r.preamble()
            while r.bytes < size:
                r.seq = None                 # a resume may restart the numbering
                rec = r.next(defer=True)
                if rec.type == F.DATA:
                    rec.payload = bytes(rec.payload)     # the reader reuses its buffer
                    group.append((rec.offset, rec.length, rec))
                else:
                    rec.verify()
                    if rec.type != F.ZERO:
                        continue
                    end = rec.offset + rec.length
                    group.extend((o, min(F.MAX_PAYLOAD, end - o), None)
                                 for o in range(rec.offset, end, F.MAX_PAYLOAD))
                nbytes += rec.length
                if nbytes >= GROUP_BYTES or len(group) >= GROUP_RANGES:
                    flush_group()
            if group:
                flush_group()
            while written:
                for fut in written.popleft():
                    fut.result()
        with clock("flush"):
            if store is not None:
                store.flush()
            vol.flush()
    finally:
        writers.shutdown(wait=True, cancel_futures=True)
        hashers.shutdown(wait=True, cancel_futures=True)
        vol.close()
    times["write"] -= times.get("map", 0.0) + times.get("verify", 0.0)
    return times


class _Clock:
    """`with clock("what"):` adds the seconds spent to times["what"]."""

    def __init__(self, times):
        self.times = times

    @contextlib.contextmanager
    def __call__(self, what):
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.times[what] = self.times.get(what, 0.0) + time.monotonic() - t0
