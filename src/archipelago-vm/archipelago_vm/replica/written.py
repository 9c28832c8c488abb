"""What the VM wrote to a replica since a snapshot: the ranges a sync must send.

The engine's diff between the replica's base and a new snapshot also shows every
chunk the copy fetched from the NAS (they were written into the local volume), so
a sync that trusted the diff alone would send the NAS its own data back. Each
replica therefore keeps, per snapshot S, a file `written/<volume>/<S>`: one bit per
GRAIN of the volume, set before a VM write to that grain reaches the engine. A sync
from base B to a new snapshot N sends diff(B, N) intersected with the grains of
`written/<volume>/<B>`; N's file starts empty at the instant N is taken.

Durability without an fsync per write: the bits are written to the file (page
cache) as they are set, and the file says OPEN while a daemon writes to it; a clean
close (rotation, shutdown) fdatasyncs it and says CLEAN. A file found OPEN was
being written when its daemon died, so it may miss grains whose data did reach the
disk: it is then taken as "everything written" (that interval's sync sends the
whole diff once). A crash costs bytes, never a lost write.

WriteGate makes "snapshot N + start N's file" atomic with respect to VM writes: a
write marks its grains and reaches the engine inside the shared side, the snapshot
is taken inside the exclusive side, so every write is in exactly one interval.
A missing file (a replica made by an older vmd) means "no record": send the diff.
"""
import contextlib
import os
import shutil
import threading

GRAIN = 64 << 10            # bytes per bit: a 4 KiB write sends at most 64 KiB
_MAGIC = b"ARCHWRT2"
_HEAD = 24                  # magic, grain, state
_CLEAN, _OPEN = 0, 1


def log_dir(root, volume):
    return os.path.join(root, "written", volume)


def log_path(root, volume, snap):
    return os.path.join(log_dir(root, volume), snap)


class WriteLog:
    """The bitmap file of one interval (writes made after snapshot `snap`)."""

    def __init__(self, path, size, grain=GRAIN, create=False, writer=False):
        """`writer`: this daemon records into it (else it is only read)."""
        self.path, self.size, self.grain = path, size, grain
        self.n = (size + grain - 1) // grain
        nbytes = (self.n + 7) // 8
        self.lock = threading.Lock()
        self.writer = writer or create
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o600)
        if create:
            os.pwrite(self.fd, self._head(_OPEN) + bytes(nbytes), 0)
            os.fsync(self.fd)
            _fsync_dir(os.path.dirname(path))
            self.bits = bytearray(nbytes)
            self.crashed = False
            return
        head = os.pread(self.fd, _HEAD, 0)
        if head[:8] != _MAGIC or int.from_bytes(head[8:16], "little") != grain:
            os.close(self.fd)
            raise ValueError(f"{path}: not a write log with grain {grain}")
        self.crashed = int.from_bytes(head[16:24], "little") == _OPEN
        self.bits = bytearray(os.pread(self.fd, nbytes, _HEAD).ljust(nbytes, b"\0"))
        if self.writer:
            if self.crashed:               # it may miss grains: take them all
                self.bits = bytearray(b"\xff" * nbytes)
                os.pwrite(self.fd, bytes(self.bits), _HEAD)
            os.pwrite(self.fd, self._head(_OPEN), 0)
            os.fdatasync(self.fd)
            self.crashed = False

    def _head(self, state):
        return _MAGIC + self.grain.to_bytes(8, "little") + state.to_bytes(8, "little")

    def mark(self, offset, length):
        """Record a write of `length` bytes at `offset` (before it reaches the engine;
        durable at close, see the module docstring)."""
        if length <= 0:
            return
        first, last = offset // self.grain, min(self.n - 1, (offset + length - 1) // self.grain)
        with self.lock:
            lo = hi = None
            for g in range(first, last + 1):
                byte, bit = g >> 3, 1 << (g & 7)
                if not self.bits[byte] & bit:
                    self.bits[byte] |= bit
                    lo = byte if lo is None else lo
                    hi = byte
            if lo is None:
                return                     # already recorded: no I/O on the hot path
            os.pwrite(self.fd, bytes(self.bits[lo:hi + 1]), _HEAD + lo)

    def __contains__(self, g):
        return bool(self.bits[g >> 3] & (1 << (g & 7)))

    def clip(self, ranges):
        """The parts of [(offset, length)] that lie in written grains (merged)."""
        out = []
        for off, n in ranges:
            end = off + n
            g = off // self.grain
            while g * self.grain < end and g < self.n:
                if g in self:
                    a, b = max(off, g * self.grain), min(end, (g + 1) * self.grain)
                    if out and out[-1][0] + out[-1][1] == a:
                        out[-1] = (out[-1][0], b - out[-1][0])
                    else:
                        out.append((a, b - a))
                g += 1
        return out

    def close(self):
        """Close; a writer makes the record durable and marks it CLEAN first."""
        try:
            if self.writer:
                with self.lock:
                    os.fdatasync(self.fd)
                    os.pwrite(self.fd, self._head(_CLEAN), 0)
                    os.fdatasync(self.fd)
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)


class WriteGate:
    """A shared/exclusive lock: VM writes share it, taking a snapshot excludes them."""

    def __init__(self):
        self._cond = threading.Condition()
        self._writers = 0
        self._closed = False

    @contextlib.contextmanager
    def shared(self):
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._writers += 1
        try:
            yield
        finally:
            with self._cond:
                self._writers -= 1
                if not self._writers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._closed = True            # new writers wait; running ones drain
            while self._writers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class WriteTracker:
    """The live record of one replica: the current interval's log and the gate."""

    def __init__(self, root, volume, size, since):
        self.root, self.volume, self.size = root, volume, size
        self.gate = WriteGate()
        os.makedirs(log_dir(root, volume), exist_ok=True)
        self.current = self._open(since, create=not os.path.exists(
            log_path(root, volume, since)))

    def _open(self, snap, create=False):
        return WriteLog(log_path(self.root, self.volume, snap), self.size, create=create,
                        writer=True)

    def write(self, offset, length, do):
        """Record then perform a VM write (`do()`), atomically w.r.t. rotate()."""
        with self.gate.shared():
            self.current.mark(offset, length)
            do()

    @contextlib.contextmanager
    def rotating(self, snap):
        """Inside: no VM write runs; take snapshot `snap` there. On a clean exit the
        new interval (writes after `snap`) starts with an empty log."""
        with self.gate.exclusive():
            yield
            new = self._open(snap, create=True)
            old, self.current = self.current, new
            old.close()

    def clip(self, snap, ranges):
        """`ranges` clipped to what was written in the interval that started at
        `snap`; None when there is no record of it (send them all)."""
        path = log_path(self.root, self.volume, snap)
        if self.current.path == path:
            with self.current.lock:
                return self.current.clip(ranges)
        try:
            wlog = WriteLog(path, self.size)
        except (OSError, ValueError):
            return None
        try:
            # OPEN: its writer died before rotating it cleanly; it may miss grains
            return None if wlog.crashed else wlog.clip(ranges)
        finally:
            wlog.close()

    def forget_before(self, keep):
        """Remove the logs of every interval but `keep`'s and the current one."""
        d = log_dir(self.root, self.volume)
        keep_paths = {log_path(self.root, self.volume, keep), self.current.path}
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if p not in keep_paths:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)

    def close(self):
        self.current.close()


def remove_all(root, volume):
    shutil.rmtree(log_dir(root, volume), ignore_errors=True)


def _fsync_dir(path):
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
