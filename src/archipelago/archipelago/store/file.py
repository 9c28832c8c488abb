"""FileStore: one file per object under a directory (the store behind filed).

Layout under `root`:
  layout               the object layout's version ("2"), written when the store
                       is created; a store without it is version 1;
  objects/XX/NAME      (version 2) XX = first 2 hex digits of SHA-256(NAME): 256
                       fan-out directories, all there after the first few hundred
                       objects, so a new object costs a file, not a directory too
                       (a new directory and its fsync cost 0.5-1.7 ms here, a file
                       in an existing one ~0.1 ms); ext4/XFS directories are hashed
                       trees, 40,000 entries each at 10 million objects;
  objects/XX/YY/NAME   (version 1, stores made before) XXYY = first 4 hex digits:
                       65,536 directories, most of them new for each new object of
                       a young store;
  leases/st/NAME       lease state (JSON, replaced atomically);
  leases/lk/NAME       flock(2) target that serialises lease changes and fences
                       mutations against them across processes.
NAME is the object name after check_name(); the only escaping needed is a leading
'.', written as '%.' so that '.' and '..' stay ordinary files ('%' is not a name
character, so nothing collides). Temporary files start with '#', also outside the
name alphabet, and are skipped by list().

Durability: `write` is a pwrite (survives a crash of this process); `flush` and
`fua` fdatasync the files written and fsync the directories that gained entries. A
flush with `syncfs_min` or more files to sync makes one syncfs(2) of the store's
filesystem instead (then one fsync of the store's root for a final cache flush),
unless the machine has much more dirty data than the store wrote since its last
flush (syncfs would mostly write other processes' data):
600 new files and their directories take ~0.04 s that way against ~0.1 s file by
file, and a sync receive's checkpoints write hundreds. syncfs also writes whatever
else on that filesystem is dirty; its errors are those of the whole filesystem since
the store opened, so after one failure the store goes back to per-file syncs, whose
errors are each file's own.
`replace`/`copy` write a temp file, fsync it, rename it into place and fsync the
directory; `put_if_absent` links the synced temp file (no-clobber), so a reader sees
the old or the new object, never a torn one. `durable=False` skips every fsync
(benchmark set-up only: like qemu's cache=unsafe).
"""
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ..errors import BackendError, NoSpace, NotFound, Timeout
from . import leasing
from .base import ObjectStore, StoreInfo
from .leasing import check_name

log = logging.getLogger(__name__)


LAYOUT = 2               # the object layout of new stores (see the module docstring)
LAYOUT_FILE = "layout"


def _fname(name):
    return "%" + name if name[0] == "." else name


def _unfname(fn):
    return fn[1:] if fn[0] == "%" else fn


@contextlib.contextmanager
def _oserror(what):
    """Wrap OSError into the project's errors at the one place that calls the OS."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(f"{what}: store is full") from None
        raise BackendError(f"{what}: {e.strerror}", errno=e.errno) from None


SYNC_THREADS = 16       # fsyncs in flight at once: the journal commits them together


def _together(fn, items):
    """fn(item) for every item, up to SYNC_THREADS at once (fsyncs issued together
    share journal commits: 1,000 new files sync in ~0.3 s instead of ~3 s)."""
    if len(items) <= 2:
        for it in items:
            fn(it)
        return
    with ThreadPoolExecutor(min(SYNC_THREADS, len(items))) as pool:
        list(pool.map(fn, items))


_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 8)
SYNCFS_MIN = 64         # default of FileStore(syncfs_min): files a flush syncs with syncfs


_syncfs = None


def _libc_syncfs(fd):
    """syncfs(2) (not in the os module)."""
    global _syncfs
    if _syncfs is None:
        import ctypes
        f = ctypes.CDLL(None, use_errno=True).syncfs
        f.argtypes = [ctypes.c_int]

        def call(fd):
            if f(fd) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
        _syncfs = call
    _syncfs(fd)


FOREIGN_DIRTY_MAX = 64 << 20   # others' dirty bytes a syncfs may write along with ours


def _system_dirty():
    """Bytes of the page cache dirty or under writeback, machine-wide (/proc/meminfo)."""
    n = 0
    with open("/proc/meminfo", "rb") as f:
        for line in f:
            if line.startswith((b"Dirty:", b"Writeback:")):
                n += int(line.split()[1]) << 10
    return n


def _foreign_dirty(ours):
    """True if the machine has much more dirty data than the `ours` bytes this store
    wrote since its last flush: a syncfs would then mostly wait for other writers'
    data (another process's unsynced copy, say), which per-file syncs leave alone."""
    try:
        return _system_dirty() - ours > max(FOREIGN_DIRTY_MAX, ours)
    except (OSError, ValueError):
        return False


class _NotCached(Exception):
    """A RWF_NOWAIT read found bytes not in the page cache (not an OSError, so that
    _oserror leaves it alone)."""


class _Fd:
    __slots__ = ("dirty", "doomed", "fd", "refs")

    def __init__(self, fd):
        self.fd, self.refs, self.dirty, self.doomed = fd, 0, False, False


class FileStore(ObjectStore):
    kind = "file"

    def __init__(self, root, fdcache=256, durable=True, syncfs_min=SYNCFS_MIN):
        self.root = os.path.abspath(root)
        self._objdir = os.path.join(self.root, "objects")
        self._stdir = os.path.join(self.root, "leases", "st")
        self._lkdir = os.path.join(self.root, "leases", "lk")
        with _oserror(f"cannot create store directory {self.root}"):
            for d in (self._objdir, self._stdir, self._lkdir):
                os.makedirs(d, exist_ok=True)
        self._fdcache = max(1, fdcache)
        self._durable = durable
        self.layout = self._layout()
        self._fds = OrderedDict()      # name -> _Fd, LRU order
        self._dirty_dirs = set()       # directories with unsynced new entries
        self._retired = []             # dirty fds evicted from the cache, to sync
        self._retiring = 0             # threads syncing retired fds right now
        self._known_dirs = set()       # fan-out directories seen to exist
        self._misses_create = False    # the last fd cache miss created its object
        self._unsynced = 0             # bytes written since the last flush started
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._synced = threading.Condition(self._lock)
        # syncfs's fd, opened now: syncfs reports the filesystem's writeback errors
        # since this open (errseq), so one opened later would miss earlier ones.
        self._sbfd = None
        if durable and syncfs_min > 0:
            self._sbfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._syncfs_min = syncfs_min
        self._syncfs_lock = threading.Lock()    # one syncfs at a time: they share _sbfd

    def __repr__(self):
        return f"FileStore({self.root!r})"

    # -- paths and syncing --------------------------------------------------------------
    def _layout(self):
        """The store's object layout: its `layout` file; none = version 1 if there are
        objects already, else a new store, which gets version LAYOUT (written without
        clobbering, so processes opening a new store together agree)."""
        path = os.path.join(self.root, LAYOUT_FILE)
        with _oserror(f"layout of store {self.root}"):
            for _ in range(2):
                try:
                    with open(path) as f:
                        v = int(f.read().strip() or 0)
                except FileNotFoundError:
                    pass
                except ValueError:
                    raise BackendError(f"{path}: not a layout version") from None
                else:
                    if v not in (1, 2):
                        raise BackendError(f"{path}: unknown object layout {v}")
                    return v
                with os.scandir(self._objdir) as it:
                    if any(True for _ in it):
                        return 1            # made before layout files: leave it so
                tmp = os.path.join(self.root, f"#layout-{uuid.uuid4().hex}")
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o644)
                    try:
                        os.write(fd, f"{LAYOUT}\n".encode())
                        self._fsync(fd)
                    finally:
                        os.close(fd)
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, path)      # another process may have been first
                    self._fsync_dir(self.root)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
        raise BackendError(f"{path}: cannot settle the object layout")

    def _dir(self, name):
        h = hashlib.sha256(name.encode()).hexdigest()
        if self.layout == 1:
            return os.path.join(self._objdir, h[:2], h[2:4])
        return os.path.join(self._objdir, h[:2])

    def _path(self, name):
        return os.path.join(self._dir(name), _fname(name))

    def _fsync(self, fd):
        if self._durable:
            os.fsync(fd)

    def _fsync_dir(self, d):
        if not self._durable:
            return
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _mkdirs(self, d):
        """Create the fan-out directory `d`, remembering the parents to fsync."""
        if d not in self._known_dirs and not os.path.isdir(d):
            os.makedirs(d, exist_ok=True)
            with self._lock:
                self._dirty_dirs.update((os.path.dirname(d), self._objdir))
        self._known_dirs.add(d)         # (fan-out directories are never removed)

    # -- fd cache -------------------------------------------------------------------------
    def _get_fd(self, name, create):
        """A referenced cache entry for `name` (release with _put_fd), or None if the
        object does not exist and `create` is false."""
        with self._lock:
            e = self._fds.get(name)
            if e is not None:
                self._fds.move_to_end(name)
                e.refs += 1
                return e
        path = self._path(name)
        fd = self._create_new(path) if create and self._misses_create else None
        if fd is None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                self._misses_create = False
            except FileNotFoundError:
                if not create:
                    return None
                self._mkdirs(os.path.dirname(path))
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._misses_create = True
                with self._lock:
                    self._dirty_dirs.add(os.path.dirname(path))
        with self._lock:
            e = self._fds.get(name)
            if e is not None:           # another thread opened it meanwhile
                os.close(fd)
            else:
                e = self._fds[name] = _Fd(fd)
            e.refs += 1
            self._evict()
            too_many = len(self._retired) >= self._fdcache
        if too_many:
            try:
                with _oserror("sync of evicted files"):
                    self._sync_retired()
            except BaseException:
                self._put_fd(e)
                raise
        return e

    def _create_new(self, path):
        """The fd of `path` created new (its directory entry then needs a sync), or
        None if it exists or its directory does not. Tried first while cache misses
        are creating objects (a receive writing new ones): one open per new object
        instead of a failed open, then a create."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except (FileExistsError, FileNotFoundError):
            return None
        with self._lock:
            self._dirty_dirs.add(os.path.dirname(path))
        return fd

    def _put_fd(self, e):
        with self._lock:
            e.refs -= 1
            if e.doomed and e.refs == 0:
                self._close_entry(e)

    def _close_entry(self, e):
        if e.dirty:
            try:
                self._fsync(e.fd)       # an evicted fd must not lose pending durability
            except OSError as err:
                log.error("fsync on close failed: %s", err)
        os.close(e.fd)

    def _evict(self):
        while len(self._fds) > self._fdcache:
            for name, e in self._fds.items():
                if e.refs == 0:
                    del self._fds[name]
                    if e.dirty and self._durable:
                        # Synced later, many together and outside this lock (by the
                        # next flush, or by _get_fd when too many wait).
                        self._retired.append(e)
                    else:
                        os.close(e.fd)
                    break
            else:
                return              # everything in use; the cache may exceed its size

    def _forget(self, name):
        """Drop the cached fd of `name` (deleted or replaced by a rename)."""
        with self._lock:
            e = self._fds.pop(name, None)
            if e is not None:
                e.dirty = False     # the inode is gone from the namespace
                if e.refs == 0:
                    self._close_entry(e)
                else:
                    e.doomed = True

    # -- fencing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _fenced(self, lease):
        """Hold the lease's lock shared while the mutation runs, after checking that
        `lease` is still current: a lease change cannot slip in between."""
        if lease is None:
            yield
            return
        fd = os.open(os.path.join(self._lkdir, _fname(lease.name)),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            leasing.check_fence(self._lease_state(lease.name), lease)
            yield
        finally:
            os.close(fd)

    # -- data objects -------------------------------------------------------------------
    def readinto(self, name, offset, buf):
        check_name(name)
        buf = memoryview(buf).cast("B")
        self._read(name, offset, buf, 0)
        return len(buf)

    def readinto_cached(self, name, offset, buf):
        """readinto() if the whole range is in the page cache (preadv2 RWF_NOWAIT:
        no disk I/O, no waiting), else False with `buf` in an undefined state. Lets
        a caller with reads in a thread pool do the cached ones on its own thread:
        a hand-off costs more than a cached 64 KiB read (futex wake-ups, the GIL)."""
        check_name(name)
        try:
            self._read(name, offset, memoryview(buf).cast("B"), _RWF_NOWAIT)
        except _NotCached:
            return False
        return True

    def _read(self, name, offset, buf, flags):
        """Fill `buf` from object `name` at `offset`: zeros past its end or if it does
        not exist; _NotCached if RWF_NOWAIT (in `flags`) would have to wait."""
        e = self._get_fd(name, create=False)
        n = 0
        if e is not None:
            try:
                with _oserror(f"read {name}"):
                    while n < len(buf):
                        try:
                            got = os.preadv(e.fd, [buf[n:]], offset + n, flags)
                        except BlockingIOError:
                            raise _NotCached from None
                        if got == 0:
                            break
                        n += got
            finally:
                self._put_fd(e)
        if n < len(buf):
            buf[n:] = bytes(len(buf) - n)

    def write(self, name, offset, data, *, fua=False, lease=None):
        check_name(name)
        data = memoryview(data).cast("B")
        with _oserror(f"write {name}"), self._fenced(lease):
            e = self._get_fd(name, create=True)
            try:
                done = 0
                while done < len(data):
                    done += os.pwrite(e.fd, data[done:], offset + done)
                if fua:
                    if self._durable:
                        os.fdatasync(e.fd)
                    self._sync_dirs()
                else:
                    e.dirty = True
                    self._unsynced += len(data)     # (approximate under threads)
            finally:
                self._put_fd(e)
        return len(data)

    def _sync_dirs(self):
        with self._lock:
            dirs, self._dirty_dirs = self._dirty_dirs, set()
        # Deepest first: a file's directory entry before its parents'; one depth at a
        # time, the directories of a depth together.
        by_depth = {}
        for d in dirs:
            by_depth.setdefault(d.count(os.sep), []).append(d)
        for depth in sorted(by_depth, reverse=True):
            _together(self._fsync_dir, by_depth[depth])

    def _sync_retired(self, wait=False):
        """fdatasync and close the dirty fds the cache evicted; with `wait`, also wait
        for other threads doing so (flush: every completed write durable)."""
        with self._lock:
            retired, self._retired = self._retired, []
            self._retiring += 1
        try:
            if self._durable:
                _together(os.fdatasync, [e.fd for e in retired])
        finally:
            with self._lock:
                for e in retired:
                    os.close(e.fd)
                self._retiring -= 1
                self._synced.notify_all()
                while wait and self._retiring:
                    self._synced.wait()

    def flush(self):
        with self._lock:
            unsynced, self._unsynced = self._unsynced, 0
            todo = [e for e in self._fds.values() if e.dirty]
            for e in todo:
                e.dirty = False
                e.refs += 1
        try:
            with _oserror("flush"):
                if self._flush_fs(len(todo), unsynced):
                    return
                if self._durable:
                    _together(os.fdatasync, [e.fd for e in todo])
                self._sync_retired(wait=True)
                self._sync_dirs()
        finally:
            for e in todo:
                self._put_fd(e)

    def _flush_fs(self, ndirty, unsynced):
        """One syncfs for the whole flush if it has enough files to sync; false if
        the flush must go file by file (few files, syncfs off or failed before, or
        most of what syncfs would write is not this store's: see _foreign_dirty)."""
        with self._lock:
            if self._sbfd is None or ndirty + len(self._retired) < self._syncfs_min:
                return False
        if _foreign_dirty(unsynced):
            return False
        with self._lock:
            retired, self._retired = self._retired, []
            dirs, self._dirty_dirs = self._dirty_dirs, set()
        ok = False
        try:
            with self._syncfs_lock:
                if self._sbfd is not None:
                    try:
                        _libc_syncfs(self._sbfd)
                        # on ext4 without a journal syncfs's cache flush can come
                        # before its metadata writes finish; this fsync flushes after
                        os.fsync(self._sbfd)
                        ok = True
                    except OSError as err:
                        log.warning("syncfs of %s failed (%s): syncing file by file "
                                    "from now on", self.root, err)
                        os.close(self._sbfd)
                        self._sbfd = None
        finally:
            with self._lock:
                if ok:
                    for e in retired:
                        os.close(e.fd)
                else:       # the file-by-file path syncs them, with their own errors
                    self._retired.extend(retired)
                    self._dirty_dirs.update(dirs)
        return ok

    def stat(self, name):
        check_name(name)
        try:
            return os.stat(self._path(name)).st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise BackendError(f"stat {name}: {e.strerror}") from None

    def delete(self, name, *, lease=None):
        check_name(name)
        path = self._path(name)
        with _oserror(f"delete {name}"), self._fenced(lease):
            self._forget(name)
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            self._fsync_dir(os.path.dirname(path))
        return True

    def _tmp(self, d):
        if not os.path.isdir(d):
            # A new fan-out directory must be durable before what is published in it.
            os.makedirs(d, exist_ok=True)
            self._fsync_dir(os.path.dirname(d))
            self._fsync_dir(self._objdir)
        return os.path.join(d, "#tmp-" + uuid.uuid4().hex)

    def _publish(self, tmp, path, name):
        """Rename the synced temp file over `path`, durably."""
        os.rename(tmp, path)
        self._forget(name)
        self._fsync_dir(os.path.dirname(path))

    def copy(self, src, dst, *, lease=None):
        check_name(src)
        check_name(dst)
        path = self._path(dst)
        tmp = self._tmp(os.path.dirname(path))
        with _oserror(f"copy {src} to {dst}"), self._fenced(lease):
            try:
                out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    self._copy_sparse(src, out)
                    self._fsync(out)
                finally:
                    os.close(out)
                self._publish(tmp, path, dst)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _copy_sparse(self, src, out):
        """Copy only the data extents of `src` (a copy-up of a sparse overlay object
        costs what was written, not the object size); holes stay holes."""
        try:
            fd = os.open(self._path(src), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            pos = 0
            while pos < size:
                try:
                    start = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError as e:
                    if e.errno != errno.ENXIO:
                        raise
                    break
                end = os.lseek(fd, start, os.SEEK_HOLE)
                while start < end:
                    n = os.copy_file_range(fd, out, end - start, start, start)
                    if n == 0:
                        break
                    start += n
                pos = end
            os.ftruncate(out, size)
        finally:
            os.close(fd)

    # -- whole objects ------------------------------------------------------------------
    def get(self, name):
        check_name(name)
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"object {name} does not exist") from None
        except OSError as e:
            raise BackendError(f"get {name}: {e.strerror}") from None

    def _write_tmp(self, d, data):
        tmp = self._tmp(d)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data).cast("B")
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
            self._fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def replace(self, name, data, *, lease=None):
        check_name(name)
        path = self._path(name)
        with _oserror(f"replace {name}"), self._fenced(lease):
            tmp = self._write_tmp(os.path.dirname(path), data)
            try:
                self._publish(tmp, path, name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def put_if_absent(self, name, data):
        check_name(name)
        path = self._path(name)
        if os.path.exists(path):
            return False
        with _oserror(f"put {name}"):
            tmp = self._write_tmp(os.path.dirname(path), data)
            try:
                os.link(tmp, path)         # fails if present: never clobbers
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            self._fsync_dir(os.path.dirname(path))
        return True

    def list(self, prefix=""):
        with _oserror("list"):
            dirs = [os.path.join(self._objdir, a) for a in sorted(os.listdir(self._objdir))]
            if self.layout == 1:
                dirs = [os.path.join(top, b) for top in dirs for b in os.listdir(top)]
            for d in dirs:
                for fn in os.listdir(d):
                    if fn[0] == "#":
                        continue
                    name = _unfname(fn)
                    if name.startswith(prefix):
                        yield name

    def cleanup_temp(self, older_than=3600.0):
        """Remove temp files a crash left behind (older than `older_than` seconds, so
        a replace in flight in another process is never touched). Returns the count.
        Not part of the ObjectStore interface: GC calls it where a store has it."""
        horizon, removed = time.time() - older_than, 0
        for dirpath, _dirs, files in os.walk(self._objdir):
            for fn in files:
                if not fn.startswith("#tmp-"):
                    continue
                path = os.path.join(dirpath, fn)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_mtime < horizon:
                        os.unlink(path)
                        removed += 1
        if removed:
            log.info("removed %d stale temp files under %s", removed, self.root)
        return removed

    def info(self):
        used = 0
        with _oserror("info"):
            for dirpath, _dirs, files in os.walk(self._objdir):
                for fn in files:
                    with contextlib.suppress(FileNotFoundError):
                        used += os.stat(os.path.join(dirpath, fn)).st_blocks * 512
            st = os.statvfs(self.root)
        return StoreInfo(used=used, free=st.f_bavail * st.f_frsize)

    def close(self):
        with contextlib.suppress(Exception):
            self.flush()
        with self._lock:
            retired, self._retired = self._retired, []
        for e in retired:           # only if the flush failed
            os.close(e.fd)
        with self._lock:
            for e in self._fds.values():
                if e.refs == 0:
                    os.close(e.fd)
                else:
                    e.doomed = True
            self._fds.clear()
        with self._syncfs_lock:
            if self._sbfd is not None:
                os.close(self._sbfd)
                self._sbfd = None

    # -- leases -------------------------------------------------------------------------
    def _lease_state(self, name):
        try:
            with open(os.path.join(self._stdir, _fname(name))) as f:
                return leasing.LeaseState.from_dict(json.load(f))
        except FileNotFoundError:
            return leasing.LeaseState()
        except ValueError:
            raise BackendError(f"lease state of {name} is corrupt") from None

    def _save_lease(self, name, state):
        path = os.path.join(self._stdir, _fname(name))
        tmp = path + ".#tmp"            # under the exclusive flock: one writer at a time
        with open(tmp, "w") as f:
            json.dump(state.to_dict(), f)
            f.flush()
            self._fsync(f.fileno())
        os.rename(tmp, path)
        self._fsync_dir(self._stdir)

    @contextlib.contextmanager
    def _lease_locked(self, name):
        """(state) under an exclusive flock; saved on exit if changed."""
        check_name(name)
        with _oserror(f"lease {name}"):
            fd = os.open(os.path.join(self._lkdir, _fname(name)),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = self._lease_state(name)
                before = state.to_dict()
                yield state
                if state.to_dict() != before:
                    self._save_lease(name, state)
            finally:
                os.close(fd)

    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        delays = leasing.wait_delays(timeout)
        while True:
            try:
                with self._lease_locked(name) as state:
                    return leasing.try_acquire(state, name, owner, ttl, version)
            except leasing.Busy:
                if not wait or version is not None:
                    raise
            delay = next(delays, None)
            if delay is None:
                raise Timeout(f"timed out waiting for lease {name}")
            with self._cond:            # woken early by a release in this process
                self._cond.wait(delay)

    def lease_renew(self, lease, ttl):
        with self._lease_locked(lease.name) as state:
            return leasing.renew(state, lease, ttl)

    def lease_release(self, lease):
        with self._lease_locked(lease.name) as state:
            leasing.release(state, lease)
        with self._cond:
            self._cond.notify_all()

    def lease_break(self, name):
        with self._lease_locked(name) as state:
            if state.owner is not None:
                log.warning("breaking lease %s held by %s (generation %d)",
                            name, state.owner, state.generation)
                state.owner, state.expires = None, 0.0
        with self._cond:
            self._cond.notify_all()

    def lease_inquire(self, name):
        check_name(name)
        state = self._lease_state(name)
        return None if state.owner is None else state.lease(name)
