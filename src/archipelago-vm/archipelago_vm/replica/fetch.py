"""Copy-on-read from the NAS: a local replica that fills itself.

The replica is a local volume plus a presence map (one byte per chunk in a file,
made durable before anything that depends on it is acknowledged). A chunk not
yet present is read from the NAS's NBD export and written locally before it is
served; a write first makes every chunk it touches present, so the background
copy can never overwrite data the VM wrote. A background thread fetches the
rest in order (rate-limited; paused while `paused` is set).

The background copy first asks the NAS export for block status (base:allocation)
of the next WINDOW chunks: a chunk the NAS reports as reading zeros (no object in
the volume's map: never written) is marked present without being read or
written -- the local replica is a fresh volume, it reads zeros there too. The
presence byte says which: 1 = read from the NAS, 2 = a hole the NAS reported
(progress: bytes read vs bytes skipped). A NAS without block status gets every
chunk read, as before. Reads and writes of the VM (copy on read) read the chunk
from the NAS as ever; a hole comes back as zeros and is not written locally.
"""
import logging
import os
import threading
import time

from archipelago.errors import ArchipelagoError
from archipelago.nbd import proto
from archipelago.nbd.client import Client as NbdClient
from archipelago.nbd.engine import EngineBackend
from archipelago.sync.ratelimit import limiter

log = logging.getLogger(__name__)
STRIPES = 64
WINDOW = 256          # chunks the background copy asks the NAS's block status about at once
READ, HOLE = 1, 2     # presence bytes: read from the NAS / a hole the NAS reported


class Presence:
    """One byte per chunk in `path` (non-zero = the local copy is authoritative:
    READ, fetched from the NAS, or HOLE, reported empty by the NAS and skipped)."""

    def __init__(self, path, n):
        self.n = n
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self.fd).st_size < n:
            os.ftruncate(self.fd, n)
        self.bits = bytearray(os.pread(self.fd, n, 0))
        self.holes = self.bits.count(HOLE)
        self.count = n - self.bits.count(0)
        self._lock = threading.Lock()

    def __contains__(self, c):
        return bool(self.bits[c])

    def mark(self, c):
        with self._lock:
            if not self.bits[c]:
                os.pwrite(self.fd, bytes([READ]), c)
                os.fdatasync(self.fd)
                self.bits[c] = READ
                self.count += 1

    def mark_holes(self, chunks):
        """Mark the chunks of `chunks` not yet present as holes, durable (one
        fdatasync) before any of them reads as present: a VM write to one of them
        is acknowledged only after that, so the copy can never redo it."""
        with self._lock:
            todo = sorted(c for c in chunks if not self.bits[c])
            if not todo:
                return 0
            i = 0
            while i < len(todo):                       # one pwrite per run of chunks
                j = i + 1
                while j < len(todo) and todo[j] == todo[j - 1] + 1:
                    j += 1
                os.pwrite(self.fd, bytes([HOLE]) * (j - i), todo[i])
                i = j
            os.fdatasync(self.fd)
            for c in todo:
                self.bits[c] = HOLE
            self.count += len(todo)
            self.holes += len(todo)
            return len(todo)

    def close(self):
        os.close(self.fd)


class Fetcher:
    """Keeps `volume` of `engine` filled from the NBD export `uri`."""

    def __init__(self, engine, volume, uri, presence_path, size, chunk, rate=None,
                 paused=False, on_done=None):
        self.engine, self.volume, self.uri = engine, volume, uri
        self.size, self.chunk = size, chunk
        self.n = (size + chunk - 1) // chunk
        self.present = Presence(presence_path, self.n)
        self.locks = [threading.Lock() for _ in range(STRIPES)]
        self._conn_lock = threading.Lock()
        self._conn = None
        self.rate = rate
        self.set_rate(rate)
        self.paused = threading.Event()
        if paused:
            self.paused.set()
        self.stopping = threading.Event()
        self.on_done = on_done
        self.error = None
        self.thread = None

    def set_rate(self, rate):
        self.rate = rate
        self._limit = limiter(rate) or (lambda n: None)

    # -- progress ----------------------------------------------------------------------
    @property
    def done(self):
        return self.present.count >= self.n

    def _bytes(self, chunks, last):
        """Bytes of `chunks` chunks, the last chunk (maybe short) among them if `last`."""
        short = self.n * self.chunk - self.size if last else 0
        return max(0, chunks * self.chunk - short)

    def progress(self):
        """fetched: bytes local (read from the NAS or skipped as holes; what the NAS's
        "copied" percentage is made of); read: bytes read from the NAS; skipped:
        bytes the NAS reported as holes, never read nor written."""
        p, last = self.present, self.present.bits[-1] if self.n else 0
        skipped = self._bytes(p.holes, last == HOLE)
        fetched = self._bytes(p.count, bool(last))
        return {"fetched": fetched, "read": fetched - skipped, "skipped": skipped,
                "total": self.size, "done": self.done,
                "percent": round(100.0 * p.count / self.n, 1) if self.n else 100.0,
                "paused": self.paused.is_set(), "error": self.error}

    # -- the NAS side ------------------------------------------------------------------
    def _read_remote(self, offset, length):
        return self._remote(lambda c: c.read(offset, length))

    def _status_remote(self, offset, length):
        """The NAS export's base:allocation [(length, flags)] from `offset`, or None
        when the NAS does not answer block status."""
        return self._remote(lambda c: c.block_status(offset, length)
                            if proto.META_BASE_ALLOCATION in c.meta else None)

    def _remote(self, op):
        with self._conn_lock:
            for attempt in range(5):
                try:
                    if self._conn is None:
                        c = NbdClient.connect_uri(self.uri, timeout=30)
                        c.go(self.uri.rsplit("/", 1)[-1], meta=[proto.META_BASE_ALLOCATION])
                        self._conn = c
                    return op(self._conn)
                except (OSError, ArchipelagoError) as e:
                    if self._conn is not None:
                        try:
                            self._conn.close()
                        except OSError:
                            pass
                    self._conn = None
                    if attempt == 4:
                        raise
                    log.warning("replica %s: NAS read failed (%s); retrying", self.volume, e)
                    time.sleep(0.2 * (attempt + 1))

    def ensure(self, c):
        """Make chunk `c` present locally (fetching it now if needed)."""
        if c in self.present:
            return
        with self.locks[c % STRIPES]:
            if c in self.present:
                return
            off = c * self.chunk
            n = min(self.chunk, self.size - off)
            data = self._read_remote(off, n)
            if data != bytes(n):                  # memcmp, not a Python loop
                self.engine.write(self.volume, off, data)
                self.engine.flush(self.volume)
            self.present.mark(c)

    def holes(self, first, count):
        """The chunks of [first, first+count) that the NAS reports as reading zeros
        (one BLOCK_STATUS for the range, more if the server describes less); [] when
        the NAS has no block status."""
        start, end = first * self.chunk, min((first + count) * self.chunk, self.size)
        zeros, pos = [], start                 # [start, end) runs that read as zeros
        while pos < end:
            ext = self._status_remote(pos, end - pos)
            if ext is None:
                return []
            for n, flags in ext:
                if n <= 0 or pos >= end:
                    break
                if flags & proto.STATE_ZERO:
                    if zeros and zeros[-1][1] == pos:
                        zeros[-1][1] = pos + n
                    else:
                        zeros.append([pos, pos + n])
                pos += n
            else:
                continue
            break                                # a zero-length extent: no progress
        out = []
        for lo, hi in zeros:
            c = -(-lo // self.chunk)                           # first whole chunk
            while c < first + count and c < self.n and \
                    min((c + 1) * self.chunk, self.size) <= hi:
                out.append(c)
                c += 1
        return out

    def skip_holes(self, first, count):
        """Mark the NAS's holes among [first, first+count) present; returns how many."""
        return self.present.mark_holes(self.holes(first, count))

    def ensure_range(self, offset, length):
        if length <= 0:
            return
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        for c in range(first, min(last, self.n - 1) + 1):
            self.ensure(c)

    # -- background ----------------------------------------------------------------------
    def start(self):
        if self.done:
            return
        self.thread = threading.Thread(target=self._run, name=f"fetch-{self.volume}",
                                       daemon=True)
        self.thread.start()

    def _run(self):
        c, asked = 0, 0                 # block status asked up to chunk `asked`
        while c < self.n and not self.stopping.is_set():
            if self.paused.is_set():
                self.stopping.wait(0.2)
                continue
            if c not in self.present:
                try:
                    if c >= asked:
                        self.skip_holes(c, WINDOW)
                        asked = c + WINDOW
                    if c in self.present:
                        c += 1
                        continue
                    self._limit(min(self.chunk, self.size - c * self.chunk))
                    self.ensure(c)
                except Exception as e:        # keep serving; retry this chunk later
                    self.error = str(e)
                    log.warning("replica %s: background copy: %s", self.volume, e)
                    self.stopping.wait(2)
                    continue
            c += 1
        if self.done:
            self.error = None
            log.info("replica %s: every chunk is local", self.volume)
            if self.on_done:
                self.on_done(self.volume)

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        with self._conn_lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except OSError:
                    pass
                self._conn = None
        self.present.close()


class ReplicaBackend(EngineBackend):
    """The replica as an NBD backend: reads and writes make their chunks local first.
    Block status: a chunk not yet local is data (the NAS's answer is not asked); a
    local one is what the replica's own map says."""

    def __init__(self, engine, name, fetcher, writes=None):
        super().__init__(engine, name, size=fetcher.size,
                         description=f"archipelago replica {name}")
        self.fetcher = fetcher
        self.writes = writes            # written.WriteTracker: what a sync must send

    def pread(self, buf, offset):
        self.fetcher.ensure_range(offset, len(buf))
        super().pread(buf, offset)

    def extents(self, offset, length):
        f = self.fetcher
        end = min(offset + length, f.size)
        c = offset // f.chunk
        local = c in f.present
        stop = c + 1
        while stop * f.chunk < end and stop - c < WINDOW and (stop in f.present) == local:
            stop += 1
        n = min(stop * f.chunk, end) - offset
        return super().extents(offset, n) if local else [(n, 0)]

    def pwrite(self, buf, offset):
        self.fetcher.ensure_range(offset, len(buf))
        if self.writes is None:
            super().pwrite(buf, offset)
        else:
            self.writes.write(offset, len(buf), lambda: super(ReplicaBackend, self)
                              .pwrite(buf, offset))
