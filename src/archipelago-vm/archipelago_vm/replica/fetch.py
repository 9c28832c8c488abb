"""Copy-on-read from the NAS: a local replica that fills itself.

The replica is a local volume plus a presence map (one byte per chunk in a file,
made durable before anything that depends on it is acknowledged). A chunk not
yet present is read from the NAS's NBD export and written locally before it is
served; a write first makes every chunk it touches present, so the background
copy can never overwrite data the VM wrote. A background thread fetches the
rest in order (rate-limited; paused while `paused` is set).
"""
import logging
import os
import threading
import time

from archipelago.errors import ArchipelagoError
from archipelago.nbd.client import Client as NbdClient
from archipelago.nbd.engine import EngineBackend
from archipelago.sync.ratelimit import limiter

log = logging.getLogger(__name__)
STRIPES = 64


class Presence:
    """One byte per chunk in `path` (1 = the local copy is authoritative)."""

    def __init__(self, path, n):
        self.n = n
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self.fd).st_size < n:
            os.ftruncate(self.fd, n)
        self.bits = bytearray(os.pread(self.fd, n, 0))
        self.count = sum(1 for b in self.bits if b)

    def __contains__(self, c):
        return bool(self.bits[c])

    def mark(self, c):
        if not self.bits[c]:
            os.pwrite(self.fd, b"\1", c)
            os.fdatasync(self.fd)
            self.bits[c] = 1
            self.count += 1

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

    def progress(self):
        fetched = min(self.size, self.present.count * self.chunk)
        return {"fetched": fetched, "total": self.size, "done": self.done,
                "percent": round(100.0 * self.present.count / self.n, 1) if self.n else 100.0,
                "paused": self.paused.is_set(), "error": self.error}

    # -- the NAS side ------------------------------------------------------------------
    def _read_remote(self, offset, length):
        with self._conn_lock:
            for attempt in range(5):
                try:
                    if self._conn is None:
                        c = NbdClient.connect_uri(self.uri, timeout=30)
                        c.go(self.uri.rsplit("/", 1)[-1])
                        self._conn = c
                    return self._conn.read(offset, length)
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
        c = 0
        while c < self.n and not self.stopping.is_set():
            if self.paused.is_set():
                self.stopping.wait(0.2)
                continue
            if c not in self.present:
                try:
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
    """The replica as an NBD backend: reads and writes make their chunks local first."""

    def __init__(self, engine, name, fetcher, writes=None):
        super().__init__(engine, name, size=fetcher.size,
                         description=f"archipelago replica {name}")
        self.fetcher = fetcher
        self.writes = writes            # written.WriteTracker: what a sync must send

    def pread(self, buf, offset):
        self.fetcher.ensure_range(offset, len(buf))
        super().pread(buf, offset)

    def pwrite(self, buf, offset):
        self.fetcher.ensure_range(offset, len(buf))
        if self.writes is None:
            super().pwrite(buf, offset)
        else:
            self.writes.write(offset, len(buf), lambda: super(ReplicaBackend, self)
                              .pwrite(buf, offset))
