"""Spare object files for a FileStore: empty files made ahead of time and renamed
into place on a new object's first write, so that the write does not allocate an
inode (on this project's journal-less ext4 a new inode costs up to ~0.6 ms of
kernel CPU while other work deletes files: the `recently_deleted` scan).

Spares live in `ROOT/spares/#spare-<hex>` (the store's filesystem; outside
`objects/`, so list(), info() and the layout check never see them). Any process
may make them and any may take one: a spare is claimed by
renameat2(RENAME_NOREPLACE) straight onto the object's path, one metadata call
that (a) fails with ENOENT if another process took it first (then try the next)
and (b) fails with EEXIST if the object exists (never overwrites it). Without
renameat2 (an old libc, a filesystem without RENAME_NOREPLACE) the pool switches
itself off and objects are created as before.

Crash rules, as for the O_CREAT they replace: a spare is empty, so a crash after
the rename leaves an empty object -- what a crash between open(O_CREAT) and the
first pwrite leaves -- and reads of it are zeros; no acknowledged write can be in
a spare. The rename dirties both directories; FileStore's flush fsyncs them with
its other new entries, so after a flush the object's name is durable and the
spare's gone. A spare nobody took is harmless (empty, under '#') and taken by the
next receive; FileStore.cleanup_temp removes spares older than its horizon.

`reserve(n)` (a receive about to write ~n new objects) takes the spares already
in the directory and makes the missing ones on a background thread, while the
receive checks the target and makes its staging clone; a write that finds the
pool empty creates its object as before, and spares made too late stay for the
next receive.
"""
import contextlib
import ctypes
import errno
import logging
import os
import threading
import time
import uuid
from collections import deque

log = logging.getLogger(__name__)

PREFIX = "#spare-"
DIRNAME = "spares"
MAX = 4096                  # spares one reserve() makes at most
RENAME_NOREPLACE = 1
_AT_FDCWD = -100

_renameat2 = None
with contextlib.suppress(OSError, AttributeError):
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint)
    _renameat2.restype = ctypes.c_int


def rename_noreplace(src, dst):
    """rename(src, dst) that fails with FileExistsError if dst exists (atomic)."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                  RENAME_NOREPLACE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


class SparePool:
    """The spares of one store as this process knows them (see the module doc)."""

    def __init__(self, root):
        self.dir = os.path.join(root, DIRNAME)
        self._ready = deque()       # spare paths, oldest first (deque: thread-safe)
        self._want = 0              # spares the running filler still makes
        self._lock = threading.Lock()
        self._filler = None
        self._stop = False
        self.enabled = _renameat2 is not None
        self.made = self.taken = 0  # counters (tests, benchmarks)
        self.cpu = 0.0              # the filler thread's CPU seconds

    def __len__(self):
        return len(self._ready)

    # -- filling --------------------------------------------------------------------
    def reserve(self, n):
        """Have ~n spares ready: the directory's own now, the rest made on a background
        thread (returns at once). False where the pool is off."""
        if not self.enabled or n <= 0:
            return False
        try:
            os.makedirs(self.dir, exist_ok=True)
            with os.scandir(self.dir) as it:
                have = [e.path for e in it if e.name.startswith(PREFIX)]
        except OSError as e:
            log.info("no spare object files (%s)", e)
            return False
        with self._lock:
            known = set(self._ready)
            self._ready.extend(p for p in have if p not in known)
            self._want = max(self._want, min(n, MAX) - len(self._ready))
            if self._want > 0 and (self._filler is None or not self._filler.is_alive()):
                self._stop = False
                self._filler = threading.Thread(target=self._fill, name="spares",
                                                daemon=True)
                self._filler.start()
        return True

    def counts(self):
        """{"made", "taken", "cpu"}: spares this process made and took, the CPU
        seconds its filler thread spent making them."""
        return {"made": self.made, "taken": self.taken, "cpu": round(self.cpu, 3)}

    def _fill(self):
        made, t0 = 0, time.thread_time()
        try:
            while True:
                with self._lock:
                    if self._stop or self._want <= 0:
                        return
                    self._want -= 1
                path = os.path.join(self.dir, PREFIX + uuid.uuid4().hex)
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o644))
                with self._lock:
                    self._ready.append(path)
                made += 1
        except OSError as e:            # a full disk, a removed store: writes create
            log.info("making spare object files stopped: %s", e)
        finally:
            self.made += made
            self.cpu += time.thread_time() - t0

    def stop(self):
        with self._lock:
            self._stop = True
            t, self._filler = self._filler, None
        if t is not None:
            t.join()

    # -- taking -----------------------------------------------------------------------
    def claim(self, path):
        """Rename a spare onto `path`: True if `path` is now a new empty object; False
        if there is no spare to take (create it as usual). FileExistsError if `path`
        exists (nothing changed)."""
        while self.enabled:
            try:
                spare = self._ready.popleft()
            except IndexError:
                return False
            try:
                rename_noreplace(spare, path)
            except FileExistsError:
                self._ready.appendleft(spare)
                raise
            except FileNotFoundError:
                if not os.path.isdir(os.path.dirname(path)):
                    self._ready.appendleft(spare)
                    raise
                continue                # taken by another process, or cleaned up
            except OSError as e:
                if e.errno in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EPERM,
                               errno.ENOTSUP):
                    log.info("spare object files off: %s", e)
                    self.enabled = False
                    self._ready.appendleft(spare)
                    return False
                raise
            self.taken += 1
            return True
        return False


def cleanup(root, horizon):
    """Remove the spares under store `root` made before `horizon` (epoch seconds);
    returns the count."""
    d, removed = os.path.join(root, DIRNAME), 0
    try:
        it = os.scandir(d)
    except FileNotFoundError:
        return 0
    with it:
        for e in it:
            if not e.name.startswith(PREFIX):
                continue
            with contextlib.suppress(FileNotFoundError):
                if e.stat().st_mtime < horizon:
                    os.unlink(e.path)
                    removed += 1
    return removed

