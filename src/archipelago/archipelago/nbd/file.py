"""A raw file (or block device) backend: the like-for-like twin of nbdkit's file plugin.

Reads go straight into the caller's buffer (os.preadv), writes come straight
from the receive buffer (os.pwrite), flush is fdatasync of the one descriptor
every connection shares (so CAN_MULTI_CONN holds), trim and zero punch holes
or zero ranges with fallocate(2), block status comes from SEEK_DATA/SEEK_HOLE.
"""
import ctypes
import errno
import os
import stat
import threading

from ..errors import BackendError, NotFound, Unsupported
from . import proto
from .backend import Backend

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_fallocate.restype = ctypes.c_int


def fallocate(fd, mode, offset, length):
    """fallocate(2); raises OSError."""
    if _fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class FileBackend(Backend):
    """Serve a raw file or block device; `read_only` opens it O_RDONLY."""

    def __init__(self, path, read_only=False):
        self.path = str(path)
        self._ro = read_only
        try:
            self.fd = os.open(self.path, (os.O_RDONLY if read_only else os.O_RDWR)
                              | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"{self.path}: no such file") from None
        except OSError as e:
            raise BackendError(f"{self.path}: {e.strerror}", errno=e.errno) from None
        st = os.fstat(self.fd)
        self._is_blk = stat.S_ISBLK(st.st_mode)
        self._size = os.lseek(self.fd, 0, os.SEEK_END) if self._is_blk else st.st_size
        self._can_punch = not self._is_blk
        self._can_zero_range = not self._is_blk
        self._seek_lock = threading.Lock()
        self.description = f"file {self.path}"

    def size(self):
        return self._size

    def pread(self, buf, offset):
        want = len(buf)
        got = os.preadv(self.fd, [buf], offset)
        while got < want:
            n = os.preadv(self.fd, [buf[got:]], offset + got)
            if n == 0:                       # file shrank under us: read zeros
                buf[got:] = bytes(want - got)
                return
            got += n

    def pwrite(self, buf, offset):
        done = os.pwrite(self.fd, buf, offset)
        while done < len(buf):
            done += os.pwrite(self.fd, buf[done:], offset + done)

    def flush(self):
        os.fdatasync(self.fd)

    def trim(self, offset, length):
        if self._can_punch:
            try:
                fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self._can_punch = False      # trim is advisory: silently a no-op

    def zero(self, offset, length, *, may_trim=True, fast=False):
        if may_trim and self._can_punch:
            try:
                fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self._can_punch = False
        if self._can_zero_range:
            try:
                fallocate(self.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self._can_zero_range = False
        if fast:
            raise Unsupported("this file cannot zero faster than writing")
        super().zero(offset, length)

    def extents(self, offset, length):
        end = min(offset + length, self._size)
        out = []
        pos = offset
        try:
            while pos < end and len(out) < 1024:
                try:
                    data = os.lseek(self.fd, pos, os.SEEK_DATA)
                except OSError as e:
                    if e.errno != errno.ENXIO:    # no data after pos: a hole to the end
                        raise
                    data = self._size
                if data > pos:
                    stop = min(data, end)
                    out.append((stop - pos, proto.STATE_HOLE | proto.STATE_ZERO))
                    pos = stop
                    continue
                hole = os.lseek(self.fd, pos, os.SEEK_HOLE)
                stop = min(hole, end)
                out.append((stop - pos, 0))
                pos = stop
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP) and not out:
                return [(end - offset, 0)]
            raise
        return out

    def cache(self, offset, length):
        os.posix_fadvise(self.fd, offset, length, os.POSIX_FADV_WILLNEED)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def read_only(self):
        return self._ro

    def can_trim(self):
        return not self._ro and self._can_punch

    def can_fast_zero(self):
        return not self._is_blk

    def can_extents(self):
        return not self._is_blk

    def can_cache(self):
        return True

    def can_multi_conn(self):
        return True          # one shared fd: fdatasync covers every connection's writes
