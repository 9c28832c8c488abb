"""Where a receive puts verified records until the commit: a staging volume or a
spool file.

VolumeSink writes them into the staging volume as they arrive, in groups
(`_Groups`: one group commit of the map updates per group, then the writes,
straight into the prepared objects where the node's store is in this process);
a fresh volume skips zero records (it reads zeros already). The commit of an
incremental stream then makes the staging clone's head the target's
(VolumeEngine.adopt, O(1)). SpoolSink appends the records verbatim to a local
file (`STATE/recv-VOL.spool`), fsynced at each checkpoint, and the commit
applies them to the target in one pass (`apply_spool`, the same groups).
"""
import contextlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import BackendError
from . import format as F

COMMIT_DEPTH = 16           # writes in flight
DIRECT_BATCHES = 4          # tasks a group's writes make on an in-process store
GROUP_BYTES = 64 << 20      # a group of records whose map updates commit together
GROUP_RANGES = 1024
STREAM_GROUP_BYTES = 16 << 20   # smaller groups while the stream arrives: the writes
STREAM_GROUP_RANGES = 256       # start early and little is left at the trailer
IN_FLIGHT = 3               # groups being checked, mapped or written at once
VERIFIERS = 2               # threads re-verifying a group's checksums
_ZEROS = memoryview(bytes(F.MAX_PAYLOAD))


class _Groups:
    """Writes into Volume `vol` in groups of up to `ranges` ranges / `nbytes` bytes,
    a pipeline off the caller's thread: `check(records)` (if given) first, then one
    group commit of the group's map updates (Volume.prepare(whole=True): the writes
    cover every byte and run again after a crash), then its writes COMMIT_DEPTH at a
    time through the peers, or -- into the prepared objects on an in-process store
    -- as DIRECT_BATCHES tasks of consecutive writes. The caller goes on
    filling the next group meanwhile (reading the stream); at most IN_FLIGHT groups
    are in the pipeline. `times` (a dict) gets the seconds spent in "verify" (check),
    "map" (the group commits) and "flush"."""

    def __init__(self, vol, times=None, check=None, ranges=None, nbytes=None):
        self.vol, self.store = vol, _direct_store(vol)
        self.clock = _Clock({} if times is None else times)
        self.check = check
        self.max_ranges = GROUP_RANGES if ranges is None else ranges
        self.max_bytes = GROUP_BYTES if nbytes is None else nbytes
        self.mapper = ThreadPoolExecutor(1)     # checks and group commits, in order
        self.flusher = ThreadPoolExecutor(1)    # flush_then's barriers, in order
        self.writers = ThreadPoolExecutor(COMMIT_DEPTH)
        self.pending = deque()      # futures: [write futures] of each group in flight
        self.group, self.nbytes = [], 0     # [(offset, length, payload|None, record)]

    def data(self, offset, payload, rec=None):
        self._add(offset, len(payload), payload, rec)

    def zero(self, offset, length):
        end = offset + length
        for o in range(offset, end, F.MAX_PAYLOAD):
            self._add(o, min(F.MAX_PAYLOAD, end - o), None, None)

    def _add(self, offset, length, payload, rec):
        self.group.append((offset, length, payload, rec))
        self.nbytes += length
        if self.nbytes >= self.max_bytes or len(self.group) >= self.max_ranges:
            self._commit_group()

    def _commit_group(self):
        group, self.group, self.nbytes = self.group, [], 0
        if not group:
            return
        while len(self.pending) >= IN_FLIGHT:
            self._wait_one()
        self.pending.append(self.mapper.submit(self._run, group))

    def _run(self, group):
        """(mapper thread) check, map and start writing one group."""
        if self.check is not None:
            with self.clock("verify"):
                self.check([r for _, _, _, r in group if r is not None])
        with self.clock("map"):
            mapped = _prepare(self.vol, group)
        sub = self.writers.submit
        if self.store is not None and mapped is not None:
            # In-process store: each write is a pwrite into the page cache, so the
            # writers take DIRECT_BATCHES runs of the group, one task each (not one
            # future per range).
            jobs = [(exts, _ZEROS[:n] if data is None else data)
                    for (_off, n, data, _r), exts in zip(group, mapped, strict=True)]
            step = -(-len(jobs) // DIRECT_BATCHES)
            return [sub(_write_batch, self.store, jobs[i:i + step])
                    for i in range(0, len(jobs), step)]
        return [sub(self.vol.pwrite, _ZEROS[:n] if data is None else data, off)
                for off, n, data, _r in group]

    def _wait_one(self):
        for fut in self.pending.popleft().result():
            fut.result()

    def flush_then(self, done):
        """Make every range added so far durable, then call done(), in the pipeline:
        the caller goes on adding ranges meanwhile (a checkpoint while the stream
        arrives). Errors come out of a later call."""
        self._commit_group()
        before = list(self.pending)

        def barrier():
            for f in before:
                for w in f.result():
                    w.result()
            with self.clock("flush"):
                if self.store is not None:
                    self.store.flush()
                self.vol.flush()
            done()
            return []

        while len(self.pending) >= IN_FLIGHT:
            self._wait_one()
        # Its own thread: the group commits of what follows go on meanwhile.
        self.pending.append(self.flusher.submit(barrier))

    def drain(self):
        """Every range added so far mapped and written (not yet flushed)."""
        self._commit_group()
        while self.pending:
            self._wait_one()

    def flush(self):
        """Every range added so far written and durable."""
        self.drain()
        with self.clock("flush"):
            if self.store is not None:
                self.store.flush()
            self.vol.flush()

    def close(self):
        self.mapper.shutdown(wait=True, cancel_futures=True)
        self.flusher.shutdown(wait=True, cancel_futures=True)
        self.writers.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()
        self.vol.close()


class VolumeSink:
    def __init__(self, vol, fresh, times=None):
        self.g = _Groups(vol, times, ranges=STREAM_GROUP_RANGES, nbytes=STREAM_GROUP_BYTES)
        self.fresh = fresh

    def put(self, rec):
        if rec.type == F.DATA:
            self.g.data(rec.offset, rec.payload)  # a view into the reader's chunk
        elif not self.fresh:
            self.g.zero(rec.offset, rec.length)

    def sync(self):
        """Everything put so far is durable; returns nothing to remember."""
        self.g.flush()
        return {}

    def sync_then(self, done):
        """As sync(), then done({}), while more records are put (_Groups.flush_then)."""
        self.g.flush_then(lambda: done({}))

    def close(self):
        self.g.close()


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
    return prepare([(item[0], item[1]) for item in group], whole=True)


def _direct_store(vol):
    """The node's data store in this process (Client.direct_store), or None."""
    get = getattr(vol, "direct_store", None)
    return get() if get is not None else None


def _write_batch(store, jobs):
    for extents, data in jobs:
        _write_extents(store, extents, data)


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
    crash) is always verified, a group at a time (in parallel), before the group's
    map changes: a spool damaged on disk stops the commit there.

    Records go in groups (_Groups: GROUP_BYTES / GROUP_RANGES). `times` (a dict)
    gets the seconds spent in "verify", "map" (the group commits), "write" (reading
    the spool, the writes) and "flush"."""
    times = {} if times is None else times
    clock = _Clock(times)
    hashers = ThreadPoolExecutor(VERIFIERS)

    def check(recs):
        list(hashers.map(F.Record.verify, recs))

    g = _Groups(vol, times, None if verified else check)
    try:
        with clock("write"), _io(path), open(path, "rb") as f:
            r = F.Reader(f)
            r.preamble()
            while r.bytes < size:
                r.seq = None                 # a resume may restart the numbering
                rec = r.next(defer=True)
                if rec.type == F.DATA:
                    g.data(rec.offset, rec.payload, rec)   # views: never reused
                else:
                    rec.verify()
                    if rec.type == F.ZERO:
                        g.zero(rec.offset, rec.length)
            g.drain()
        g.flush()
    finally:
        hashers.shutdown(wait=True, cancel_futures=True)
        g.close()
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
