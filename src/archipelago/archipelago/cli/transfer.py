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
    """At most `depth` calls in flight, each on a buffer of its own, reused.

    Buffers are allocated once: a fresh multi-MiB allocation per chunk costs more
    in page faults than the copy itself. `done(meta, buf)` runs in submission
    order once a call has finished, before its buffer is reused.
    """

    def __init__(self, done=None, depth=DEPTH, size=CHUNK):
        self.pool = ThreadPoolExecutor(depth)
        self.depth = depth
        self.free = [bytearray(size) for _ in range(depth + 1)]
        self.inflight = deque()
        self.done = done or (lambda meta, buf: None)

    def buffer(self):
        """A free buffer (waits for the oldest call if none is free)."""
        while not self.free or len(self.inflight) >= self.depth:
            self._retire()
        return self.free.pop()

    def release(self, buf):
        self.free.append(buf)

    def submit(self, buf, meta, fn, *args):
        self.inflight.append((self.pool.submit(fn, *args), meta, buf))

    def _retire(self):
        fut, meta, buf = self.inflight.popleft()
        fut.result()
        try:
            self.done(meta, buf)
        finally:
            self.free.append(buf)

    def drain(self):
        while self.inflight:
            self._retire()

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
    zero = memoryview(bytes(CHUNK))
    total = 0
    with _progress(fsize, f"import {vol.name}") as bar:
        pipe = _Pipeline(lambda n, buf: bar and bar.update(n))
        try:
            for off, n in chunks if chunks is not None else _stream(CHUNK):
                buf = pipe.buffer()
                mv = memoryview(buf)[:n]
                got = _fill(f, mv, off if chunks is not None else None)
                if not got:
                    pipe.release(buf)
                    break
                if off + got > vol.size:
                    raise InvalidArgument(f"{path} is larger than volume {vol.name} "
                                          f"({vol.size} bytes); resize the volume first")
                total += got
                if fresh and mv[:got] == zero[:got]:
                    pipe.release(buf)
                    if bar is not None:
                        bar.update(got)
                    continue
                data = _pad(buf, got, vol.size - off)
                pipe.submit(buf, got, vol.pwrite, data, off)
            pipe.drain()
        finally:
            pipe.close()
    return total


def _stream(chunk):
    """(offset, length) of consecutive chunks, for a pipe (read until it ends)."""
    off = 0
    while True:
        yield off, chunk
        off += chunk


def _fill(f, mv, off):
    """Read into mv: at `off` of a seekable file, or from a pipe until mv is full."""
    if off is not None:
        return os.preadv(f.fileno(), [mv], off)
    got = 0
    while got < len(mv):
        n = f.readinto(mv[got:])
        if not n:
            break
        got += n
    return got


def _pad(buf, n, room):
    """The first n bytes of buf, a short tail rounded up to 512 bytes with zeros
    (volumes are whole sectors)."""
    rem = n % 512
    if rem and room >= n + 512 - rem:
        buf[n:n + 512 - rem] = bytes(512 - rem)
        n += 512 - rem
    return memoryview(buf)[:n]


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
    zero = memoryview(bytes(SPARSE_BLOCK))
    start = None
    for pos in range(0, len(mv), SPARSE_BLOCK):
        block = mv[pos:pos + SPARSE_BLOCK]
        is_zero = block == zero[:len(block)]
        if is_zero and start is not None:
            os.pwrite(fd, mv[start:pos], off + start)
            start = None
        elif not is_zero and start is None:
            start = pos
    if start is not None:
        os.pwrite(fd, mv[start:], off + start)


def _copy_out(vol, out, sparse):
    zero = memoryview(bytes(CHUNK))
    with _progress(vol.size, f"export {vol.name}") as bar:
        def emit(meta, buf):
            off, n = meta
            data = memoryview(buf)[:n]
            if bar is not None:
                bar.update(n)
            if not sparse:
                out.write(data)
            elif data != zero[:n]:
                _pwrite_sparse(out.fileno(), data, off)

        pipe = _Pipeline(emit)
        try:
            for off in range(0, vol.size, CHUNK):
                n = min(CHUNK, vol.size - off)
                buf = pipe.buffer()
                pipe.submit(buf, (off, n), vol.readinto, memoryview(buf)[:n], off)
            pipe.drain()
        finally:
            pipe.close()
