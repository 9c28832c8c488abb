"""Raw image import and export for vlmc: sparse-aware, pipelined, with a progress bar.

Import skips the file's holes (SEEK_DATA/SEEK_HOLE) and all-zero chunks when the
target volume has nothing allocated (a fresh volume reads zeros there already);
into a volume with data, every byte is written so old data cannot show through.
Export leaves zero chunks as holes in a regular output file, and writes every
byte to a pipe or device. A few chunks are kept in flight so the peers work in
parallel with the local file I/O.
"""
import contextlib
import os
import stat
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import click

from ..errors import InvalidArgument, NotFound

CHUNK = 4 << 20
DEPTH = 4          # chunks in flight through the peers
SPARSE_BLOCK = 64 << 10   # export leaves zero runs of this granularity as holes


def _progress(total, label):
    """click's progress bar on a terminal, nothing otherwise (scripts, pipes, tests)."""
    if total and sys.stderr.isatty():
        return click.progressbar(length=total, label=label, file=sys.stderr,
                                 show_eta=True, show_percent=True)
    return contextlib.nullcontext(None)


def _data_segments(fd, size):
    """(start, end) of the regions of `fd` that hold data; holes are skipped."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:          # ENXIO: only a hole remains
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def _chunks(segments, chunk):
    for start, end in segments:
        for off in range(start, end, chunk):
            yield off, min(chunk, end - off)


class _Pipeline:
    """At most DEPTH calls in flight; results come back in submission order."""

    def __init__(self, depth=DEPTH):
        self.pool = ThreadPoolExecutor(depth)
        self.depth = depth
        self.inflight = deque()

    def submit(self, fn, *args):
        self.inflight.append(self.pool.submit(fn, *args))
        if len(self.inflight) >= self.depth:
            return [self.inflight.popleft().result()]
        return []

    def drain(self):
        out = [f.result() for f in self.inflight]
        self.inflight.clear()
        return out

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


def _open_in(path):
    if path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    try:
        return open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None


def _regular_size(f):
    st = os.fstat(f.fileno())
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def import_image(client, name, path, size=None):
    """Copy raw image `path` into volume `name` (created if missing); returns bytes read."""
    with _open_in(path) as f:
        fsize = _regular_size(f)
        fresh = _ensure_volume(client, name, fsize, size, path)
        vol = client.volume(name)
        try:
            if fsize is not None and fsize > vol.size:
                raise InvalidArgument(f"{path} is {fsize} bytes, larger than volume {name} "
                                      f"({vol.size} bytes); resize the volume first")
            if fsize is not None and fresh:
                chunks = _chunks(_data_segments(f.fileno(), fsize), CHUNK)
            elif fsize is not None:
                chunks = _chunks([(0, fsize)], CHUNK)
            else:
                chunks = None
            n = _copy_in(f, vol, chunks, fresh, fsize, path)
            vol.flush()
        finally:
            vol.close()
    return n


def _ensure_volume(client, name, fsize, size, path):
    """Create `name` if it does not exist; True if it has nothing allocated."""
    try:
        info = client.info(name)
    except NotFound:
        if size is None and fsize is None:
            raise NotFound(f"volume {name} does not exist; create it first or give --size "
                           "when importing from a pipe") from None
        size = size or max(512, -(-fsize // 512) * 512)
        client.create(name, size)
        return True
    if size is not None and size != info["size"]:
        raise InvalidArgument(f"volume {name} exists with size {info['size']}; --size is "
                              "only for creating it")
    return not info.get("allocated")


def _copy_in(f, vol, chunks, fresh, fsize, path):
    zero = bytes(CHUNK)
    total = 0
    pipe = _Pipeline()
    try:
        with _progress(fsize, f"import {vol.name}") as bar:
            for off, data in _read_chunks(f, chunks, path):
                if off + len(data) > vol.size:
                    raise InvalidArgument(f"{path} is larger than volume {vol.name} "
                                          f"({vol.size} bytes); resize the volume first")
                total += len(data)
                if not (fresh and data == zero[:len(data)]):
                    pipe.submit(vol.pwrite, _pad(data, vol.size - off), off)
                if bar is not None:
                    bar.update(len(data))
            pipe.drain()
    finally:
        pipe.close()
    return total


def _read_chunks(f, chunks, path):
    """(offset, bytes) from a seekable file's chunk list, or sequentially from a pipe."""
    if chunks is not None:
        for off, n in chunks:
            data = os.pread(f.fileno(), n, off)
            if data:
                yield off, data
        return
    off = 0
    while True:
        data = _read_full(f, CHUNK)
        if not data:
            return
        yield off, data
        off += len(data)


def _read_full(f, n):
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _pad(data, room):
    """Round a short tail up to 512 bytes with zeros (volumes are whole sectors)."""
    rem = len(data) % 512
    if rem and room >= len(data) + 512 - rem:
        return data + bytes(512 - rem)
    return data


def export_image(client, spec, path):
    """Copy volume or snapshot `spec` to raw `path` (- = stdout); returns bytes."""
    vol = client.volume(spec, readonly=True)
    try:
        if path == "-":
            _copy_out(vol, sys.stdout.buffer, sparse=False)
            sys.stdout.buffer.flush()
        else:
            try:
                out = open(path, "wb")
            except OSError as e:
                raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None
            with out:
                sparse = stat.S_ISREG(os.fstat(out.fileno()).st_mode)
                _copy_out(vol, out, sparse)
                if sparse:
                    out.truncate(vol.size)
        return vol.size
    finally:
        vol.close()


def _pwrite_sparse(fd, data, off):
    """Write the non-zero SPARSE_BLOCKs of `data` at `off`; zero blocks stay holes."""
    mv = memoryview(data)
    zero = bytes(SPARSE_BLOCK)
    start = None
    for pos in range(0, len(mv), SPARSE_BLOCK):
        is_zero = mv[pos:pos + SPARSE_BLOCK] == zero[:len(mv[pos:pos + SPARSE_BLOCK])]
        if is_zero and start is not None:
            os.pwrite(fd, mv[start:pos], off + start)
            start = None
        elif not is_zero and start is None:
            start = pos
    if start is not None:
        os.pwrite(fd, mv[start:], off + start)


def _copy_out(vol, out, sparse):
    zero = bytes(CHUNK)
    pipe = _Pipeline()
    try:
        with _progress(vol.size, f"export {vol.name}") as bar:
            def emit(done):
                for off, data in done:
                    if bar is not None:
                        bar.update(len(data))
                    if not sparse:
                        out.write(data)
                    elif data != zero[:len(data)]:
                        _pwrite_sparse(out.fileno(), data, off)
            for off in range(0, vol.size, CHUNK):
                n = min(CHUNK, vol.size - off)
                emit(pipe.submit(lambda o, k: (o, vol.pread(k, o)), off, n))
            emit(pipe.drain())
    finally:
        pipe.close()
