"""The transmission phase: validate each request once, call the backend, reply.

Hot path design (profile-driven; see docs/nbd.md "Performance"):
- requests are received into one reusable buffer with recv_into, several at a
  time; a WRITE payload that is already in that buffer is handed to the
  backend as a memoryview slice (no copy), a large one is received straight
  into a reusable payload buffer;
- READ data is read by the backend straight into a slot of a reusable arena and
  the replies of everything that arrived together go out in one sendmsg
  (headers and data as separate iovecs, no joins); pending replies are always
  sent before the loop blocks in recv, so batching never adds latency;
- WRITEs over SMALL go to a few worker threads (pwrite releases the GIL), so
  receiving the next payload overlaps writing the last one, as in nbdkit's
  parallel thread model; their replies may come out of order, which the
  protocol allows, and FLUSH and DISC wait for them first. Large READs stay
  inline: measured, handing them to workers only added contention (pread and
  sendmsg already copy at memory speed, one after the other).
- a backend whose requests wait on a round trip (`Backend.parallel()`: a RADOS
  pool, the peers of a node) gets every READ and WRITE in worker threads
  (PAR_WORKERS per connection, at most MAX_INFLIGHT requests / INFLIGHT_BYTES
  in flight), so a client's queue depth reaches the store; replies go out as
  they complete (the protocol allows any order) and FLUSH and DISC first wait
  for everything in flight, so a FLUSH covers every write completed before it.

Validation follows the spec's error list: unknown command or flag -> EINVAL,
READ/TRIM/CACHE/BLOCK_STATUS past the end -> EINVAL, WRITE/WRITE_ZEROES past
the end -> ENOSPC, any write to a read-only export -> EPERM, oversized
payloads -> EINVAL (the payload is read and dropped so the stream stays in
sync; beyond DISCARD_LIMIT the client is cut off). A request with a bad magic
number cannot be resynchronised: the connection is closed.
"""
import logging
import mmap
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import ArchipelagoError
from . import proto
from .wire import Disconnected, recv_into_exact, sendmsg_all

log = logging.getLogger(__name__)

RBUF = 256 * 1024            # receive buffer: headers plus small write payloads
SMALL = 128 * 1024           # reads/writes up to this size use the shared buffers
ARENA = 512 * 1024           # read slots for one batch of replies
FLUSH_BYTES = 256 * 1024     # send pending replies once this much data is queued
MAX_BATCH = 16               # ... or this many reply parts (lets the client overlap)
DISCARD_LIMIT = 64 << 20     # larger invalid write payloads end the connection
MAX_EXTENTS = 1024
BIG_WORKERS = 4              # threads doing large READ/WRITE I/O, per connection
PAR_WORKERS = 16             # threads per connection for a parallel() backend
MAX_INFLIGHT = 64            # requests in worker threads, per connection
INFLIGHT_BYTES = 16 << 20    # bound on large-request buffers per connection
KEEP_BYTES = 8 << 20         # free large buffers kept for reuse (idle RSS bound)

_SIMPLE = proto.SIMPLE_REPLY.pack
_DATA_HDR = struct.Struct(">IHHQIQ").pack     # OFFSET_DATA chunk header + offset

_READ, _WRITE = proto.CMD_READ, proto.CMD_WRITE
_CHUNK_MAGIC, _SIMPLE_MAGIC = proto.STRUCTURED_REPLY_MAGIC, proto.SIMPLE_REPLY_MAGIC
_FUA = proto.CMD_FLAG_FUA
_FLAGS_OK = {
    proto.CMD_READ: _FUA | proto.CMD_FLAG_DF,
    proto.CMD_WRITE: _FUA,
    proto.CMD_DISC: _FUA,
    proto.CMD_FLUSH: _FUA,
    proto.CMD_TRIM: _FUA,
    proto.CMD_CACHE: _FUA,
    proto.CMD_WRITE_ZEROES: _FUA | proto.CMD_FLAG_NO_HOLE | proto.CMD_FLAG_FAST_ZERO,
    proto.CMD_BLOCK_STATUS: _FUA | proto.CMD_FLAG_REQ_ONE,
}


class ProtocolError(Exception):
    """The client broke the stream; the connection must be closed."""


class RequestError(Exception):
    """A request that gets an error reply; `nbd_errno` is the wire error."""

    def __init__(self, nbd_errno, message):
        super().__init__(message)
        self.nbd_errno = nbd_errno


def _lazy(size):
    """A zeroed buffer whose pages cost memory only once touched (bytearray(n)
    would memset, making every idle connection pay for all its buffers)."""
    return mmap.mmap(-1, size)


def _errno_of(exc):
    if isinstance(exc, RequestError):
        return exc.nbd_errno
    if isinstance(exc, (ArchipelagoError, OSError)) and exc.errno:
        return proto.wire_errno(exc.errno)
    return proto.EIO


class _Inflight:
    """Large requests running in worker threads: bounded in bytes, buffers reused."""

    def __init__(self, workers=BIG_WORKERS):
        # per request (both threads): `with lock`, one C call; the Condition (on the
        # same Lock) is notified only when somebody waits on it
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.waiting = 0
        self.bytes = 0
        self.count = 0
        self.free = []
        self.pool = None
        self.workers = workers

    def _wait(self):
        self.waiting += 1
        try:
            self.cond.wait()
        finally:
            self.waiting -= 1

    def acquire(self, length):
        """A buffer of at least `length` bytes, waiting while too much is in flight."""
        with self.lock:
            while self.count and (self.bytes + length > INFLIGHT_BYTES
                                  or self.count >= MAX_INFLIGHT):
                self._wait()
            self.bytes += length
            self.count += 1
            if length <= SMALL:
                return bytearray(length)       # malloc beats a fresh mapping here
            for i, b in enumerate(self.free):
                if len(b) >= length:
                    return self.free.pop(i)
        return _lazy(max(length, 1 << 20))

    def release(self, buf, length):
        self.release_many(((buf, length),))

    def release_many(self, bufs):
        """Give back buffers [(buf, length)] (kept for reuse up to KEEP_BYTES), one
        wake-up."""
        if not bufs:
            return
        with self.lock:
            for buf, length in bufs:
                self.bytes -= length
                self.count -= 1
                if (isinstance(buf, mmap.mmap)
                        and sum(map(len, self.free)) + len(buf) <= KEEP_BYTES):
                    self.free.append(buf)
            if self.waiting:
                self.cond.notify_all()

    def submit(self, fn, *args):
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nbd-io")
        self.pool.submit(fn, *args)

    def drain(self):
        with self.lock:
            while self.count:
                self._wait()

    def shutdown(self):
        self.drain()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class Session:
    """One connection in transmission phase. `run()` returns when it ends."""

    def __init__(self, sock, negotiated, client):
        self.sock = sock
        self.client = client
        self.export = negotiated.export
        self.backend = negotiated.export.backend
        self.flags = negotiated.flags
        self.structured = negotiated.structured
        self.meta = negotiated.meta
        self.size = self.backend.size()
        self.read_only = bool(self.flags & proto.TF_READ_ONLY)
        self.max_len = self.backend.block_size()[2]
        self.rbuf = _lazy(RBUF)
        self.rview = memoryview(self.rbuf)
        self.start = self.end = 0
        self.arena = memoryview(_lazy(ARENA))
        self.apos = 0
        self.parallel = bool(self.backend.parallel())
        # optional: backend.submit_pread(buf, offset, done) -> False (do it yourself) or
        # True, and done(exception or None) is called from any thread when buf is full
        self.submit_pread = getattr(self.backend, "submit_pread", None)
        self.submit_pwrite = getattr(self.backend, "submit_pwrite", None)   # the same
        if not self.parallel:
            self.submit_pread = self.submit_pwrite = None
        # optional: backend.pwrite_fua(buf, offset), a write durable when it returns
        # (cheaper than pwrite + a flush of everything); else those two
        self.pwrite_fua = getattr(self.backend, "pwrite_fua", None)
        self.inflight = _Inflight(PAR_WORKERS if self.parallel else BIG_WORKERS)
        # optional: backend.defer(fn) -> True when called in a completion callback of
        # the backend's asynchronous I/O: fn() then runs once the completions that
        # arrived together are handled (their replies go out in one sendmsg)
        self.defer = getattr(self.backend, "defer", None) if self.submit_pread else None
        self.big = None
        self.send_lock = threading.Lock()
        self.done_lock = threading.Lock()      # guards the three below
        self.done_parts = []                   # replies of completed aio requests ...
        self.done_bufs = []                    # ... and the buffers to release after
        self.done_queued = False               # a send of them is scheduled
        self.out = []
        self.outbytes = 0
        self.warned = False
        self.requests = 0

    # -- buffers -------------------------------------------------------------------

    def flush_out(self):
        if self.out:
            out, self.out = self.out, []
            self.outbytes = 0
            self.apos = 0
            with self.send_lock:
                sendmsg_all(self.sock, out)

    def send_now(self, parts):
        """Send one reply from a worker thread; a dead socket is the main loop's news."""
        try:
            with self.send_lock:
                sendmsg_all(self.sock, parts)
        except (OSError, Disconnected) as e:
            log.debug("client %s: reply not sent: %s", self.client, e)

    def fill(self, need):
        """Make at least `need` unread bytes available in rbuf (need <= RBUF)."""
        if self.end - self.start >= need:
            return
        self.flush_out()                       # never hold replies while blocking
        if self.start:
            rem = self.end - self.start
            self.rbuf[:rem] = self.rbuf[self.start:self.end]
            self.start, self.end = 0, rem
        while self.end - self.start < need:
            try:
                n = self.sock.recv_into(self.rview[self.end:], RBUF - self.end)
            except (ConnectionResetError, BrokenPipeError):
                raise Disconnected("connection reset") from None
            if n == 0:
                raise Disconnected("client closed the connection"
                                   + (" mid-request" if self.end > self.start else ""))
            self.end += n

    def big_view(self, length):
        """The connection's own large read buffer (inline large READs)."""
        if self.big is None or len(self.big) < length:
            self.big = memoryview(_lazy(max(length, 1 << 20)))
        return self.big[:length]

    def payload(self, length):
        """A small WRITE payload as a memoryview of rbuf, valid until the next request."""
        self.fill(length)
        data = self.rview[self.start:self.start + length]
        self.start += length
        return data

    def discard(self, length):
        while length:
            n = min(length, SMALL)
            self.payload(n)
            length -= n

    # -- replies -------------------------------------------------------------------

    def reply_ok(self, cookie):
        self.out.append(proto.simple_reply(cookie))

    def error_reply(self, cookie, cmd, err, message):
        if self.structured and cmd in (_READ, proto.CMD_BLOCK_STATUS):
            return proto.chunk_error(cookie, err, message)
        return proto.simple_reply(cookie, err)

    def reply_error(self, cookie, cmd, err, message):
        self.out.append(self.error_reply(cookie, cmd, err, message))

    def complain(self, cmd, offset, length, flags, message):
        level = logging.DEBUG if self.warned else logging.WARNING
        self.warned = True
        log.log(level, "client %s, export %s: %s %d+%d flags %#x: %s", self.client,
                self.export.name, proto.CMD_NAMES.get(cmd, f"command {cmd}"), offset,
                length, flags, message)

    # -- the loop ------------------------------------------------------------------

    def run(self):
        try:
            self._loop()
        finally:
            try:
                self.flush_out()
            except (OSError, Disconnected):
                pass
            self.inflight.shutdown()

    def _loop(self):
        unpack = proto.REQUEST.unpack_from
        magic_ok = proto.REQUEST_MAGIC
        backend = self.backend
        size = self.size
        read_ok = _FLAGS_OK[_READ] if self.structured else _FUA
        write_ok = _FUA
        small = SMALL
        structured = self.structured
        chunk_magic = proto.STRUCTURED_REPLY_MAGIC
        simple_magic = proto.SIMPLE_REPLY_MAGIC
        par = self.parallel
        acquire = self.inflight.acquire
        aio_read = self._aio_read if self.submit_pread is not None else None
        while True:
            if self.end - self.start < 28:
                self.fill(28)
            magic, flags, cmd, cookie, offset, length = unpack(self.rbuf, self.start)
            self.start += 28
            self.requests += 1
            if magic != magic_ok:
                raise ProtocolError(f"bad request magic {magic:#x}")
            end = offset + length
            if (cmd == _READ and not flags & ~read_ok and end <= size
                    and 0 < length <= self.max_len):
                if par:
                    buf = acquire(length)
                    if aio_read is None or not aio_read(buf, cookie, offset, length):
                        self.inflight.submit(self._par_read, buf, cookie, offset, length)
                    continue
                if length > small:
                    self.flush_out()
                    buf = self.big_view(length)
                else:
                    if self.apos + length > ARENA:
                        self.flush_out()
                    buf = self.arena[self.apos:self.apos + length]
                    self.apos += length
                try:
                    backend.pread(buf, offset)
                except Exception as e:
                    self.failed(cookie, cmd, e)
                else:
                    if structured:
                        self.out.append(_DATA_HDR(chunk_magic, 1, 1, cookie, length + 8, offset))
                    else:
                        self.out.append(_SIMPLE(simple_magic, 0, cookie))
                    self.out.append(buf)
                    self.outbytes += length
            elif (cmd == _WRITE and not flags & ~write_ok and end <= size
                    and 0 < length <= self.max_len and not self.read_only):
                if par or length > small:
                    if length > small:
                        self.flush_out()
                    self.big_write(cookie, offset, length, flags)
                    continue
                data = self.payload(length)
                try:
                    if flags & _FUA:
                        self.write_fua(data, offset)
                    else:
                        backend.pwrite(data, offset)
                except Exception as e:
                    self.failed(cookie, cmd, e)
                else:
                    self.out.append(_SIMPLE(simple_magic, 0, cookie))
            else:
                if self.slow(cmd, flags, cookie, offset, length):
                    return
            if self.outbytes >= FLUSH_BYTES or len(self.out) >= MAX_BATCH:
                self.flush_out()

    # -- large requests (worker threads) -----------------------------------------------

    def big_write(self, cookie, offset, length, flags):
        """Receive a large payload here, write it in a worker."""
        buf = self.inflight.acquire(length)
        try:
            view = memoryview(buf)
            if len(buf) != length:
                view = view[:length]
            have = min(self.end - self.start, length)
            view[:have] = self.rview[self.start:self.start + have]
            self.start += have
            if have < length:
                self.flush_out()                   # never hold replies while blocking
                recv_into_exact(self.sock, view[have:])
        except BaseException:
            self.inflight.release(buf, length)
            raise
        if self.submit_pwrite is not None and not flags & _FUA:
            completed = self._completed

            def done(exc):             # on the backend's completion thread
                if exc is None:
                    completed((_SIMPLE(_SIMPLE_MAGIC, 0, cookie),), buf, length)
                else:
                    self._write_done(buf, cookie, length, exc)
            try:
                if self.submit_pwrite(view, offset, done):
                    return
            except Exception as e:
                self._write_done(buf, cookie, length, e)
                return
        self.inflight.submit(self._big_write, buf, view, cookie, offset, length, flags)

    def write_fua(self, data, offset):
        if self.pwrite_fua is not None:
            self.pwrite_fua(data, offset)
        else:
            self.backend.pwrite(data, offset)
            self.backend.flush()

    def _write_done(self, buf, cookie, length, exc):
        if exc is not None:
            reply = self.failure(cookie, _WRITE, exc)
        else:
            reply = _SIMPLE(_SIMPLE_MAGIC, 0, cookie)
        self._completed((reply,), buf, length)

    def _completed(self, parts, buf, length):
        """The reply of an asynchronous request (on the backend's completion thread):
        queued, and sent with the others completed in the same batch in one sendmsg
        once the backend has handled that batch (`defer`), else at once. The buffer
        is given back after the send."""
        with self.done_lock:
            self.done_parts += parts
            self.done_bufs.append((buf, length))
            if self.done_queued:
                return
            self.done_queued = True
        defer = self.defer
        if defer is None or not defer(self._send_completed):
            self._send_completed()

    def _send_completed(self):
        with self.done_lock:
            parts, self.done_parts = self.done_parts, []
            bufs, self.done_bufs = self.done_bufs, []
            self.done_queued = False
        try:
            with self.send_lock:
                sendmsg_all(self.sock, parts)
        except (OSError, Disconnected) as e:
            log.debug("client %s: reply not sent: %s", self.client, e)
        finally:
            del parts
            self.inflight.release_many(bufs)

    def _aio_read(self, buf, cookie, offset, length):
        """Start a READ on the backend's own asynchronous I/O (no worker thread)."""
        view = memoryview(buf)
        if len(buf) != length:
            view = view[:length]
        structured = self.structured
        completed = self._completed

        def done(exc):                 # on the backend's completion thread
            if exc is not None:
                parts = (self.failure(cookie, _READ, exc),)
            elif structured:
                parts = (_DATA_HDR(_CHUNK_MAGIC, 1, 1, cookie, length + 8, offset), view)
            else:
                parts = (_SIMPLE(_SIMPLE_MAGIC, 0, cookie), view)
            completed(parts, buf, length)
        try:
            if not self.submit_pread(view, offset, done):
                return False
        except Exception as e:
            done(e)
        return True

    def _par_read(self, buf, cookie, offset, length):
        """A READ in a worker (parallel backends): read, then send the reply at once."""
        view = memoryview(buf)[:length]
        try:
            self.backend.pread(view, offset)
        except Exception as e:
            parts = [self.failure(cookie, _READ, e)]
        else:
            if self.structured:
                parts = [_DATA_HDR(proto.STRUCTURED_REPLY_MAGIC, 1, 1, cookie, length + 8,
                                   offset), view]
            else:
                parts = [_SIMPLE(proto.SIMPLE_REPLY_MAGIC, 0, cookie), view]
        try:
            self.send_now(parts)
        finally:
            del view
            self.inflight.release(buf, length)

    def _big_write(self, buf, view, cookie, offset, length, flags):
        try:
            if flags & _FUA:
                self.write_fua(view, offset)
            else:
                self.backend.pwrite(view, offset)
        except Exception as e:
            reply = self.failure(cookie, _WRITE, e)
        else:
            reply = _SIMPLE(proto.SIMPLE_REPLY_MAGIC, 0, cookie)
        try:
            self.send_now([reply])
        finally:
            self.inflight.release(buf, length)

    def failure(self, cookie, cmd, exc):
        """Log a failed backend call; the error reply to send for it."""
        err = _errno_of(exc)
        if not isinstance(exc, (ArchipelagoError, OSError, RequestError)):
            log.exception("export %s: backend bug on %s", self.export.name,
                          proto.CMD_NAMES.get(cmd, cmd))
        else:
            log.debug("export %s: %s failed: %s", self.export.name,
                      proto.CMD_NAMES.get(cmd, cmd), exc)
        return self.error_reply(cookie, cmd, err, str(exc))

    def failed(self, cookie, cmd, exc):
        self.out.append(self.failure(cookie, cmd, exc))

    # -- everything that is not a valid READ or WRITE --------------------------------

    def slow(self, cmd, flags, cookie, offset, length):
        """Handle the request; True when the connection should end (DISC)."""
        if cmd == proto.CMD_DISC:
            self.flush_out()
            self.inflight.drain()
            log.debug("client %s: disconnect", self.client)
            return True
        try:
            self.check(cmd, flags, offset, length)
        except RequestError as e:
            if cmd == _WRITE:
                if length > DISCARD_LIMIT:
                    self.complain(cmd, offset, length, flags, str(e) + "; disconnecting")
                    self.reply_error(cookie, cmd, e.nbd_errno, str(e))
                    self.flush_out()
                    raise ProtocolError("write payload too large to skip") from None
                self.discard(length)
            self.complain(cmd, offset, length, flags, str(e))
            self.reply_error(cookie, cmd, e.nbd_errno, str(e))
            return False
        b = self.backend
        try:
            if cmd == _READ or cmd == _WRITE:       # zero-length read or write
                if cmd == _READ and self.structured:
                    self.out.append(proto.chunk_none(cookie))
                    return False
            elif cmd == proto.CMD_FLUSH:
                self.inflight.drain()              # writes in workers are covered too
                b.flush()
            elif cmd == proto.CMD_TRIM:
                if length:
                    b.trim(offset, length)
                if flags & _FUA:
                    b.flush()
            elif cmd == proto.CMD_WRITE_ZEROES:
                if length:
                    b.zero(offset, length, may_trim=not flags & proto.CMD_FLAG_NO_HOLE,
                           fast=bool(flags & proto.CMD_FLAG_FAST_ZERO))
                if flags & _FUA:
                    b.flush()
            elif cmd == proto.CMD_CACHE:
                if length and b.can_cache():
                    b.cache(offset, length)
            elif cmd == proto.CMD_BLOCK_STATUS:
                self.block_status(cookie, flags, offset, length)
                return False
        except Exception as e:
            self.failed(cookie, cmd, e)
            return False
        self.reply_ok(cookie)
        return False

    def check(self, cmd, flags, offset, length):
        """Raise RequestError for anything the spec says to refuse."""
        ok = _FLAGS_OK.get(cmd)
        if ok is None:
            raise RequestError(proto.EINVAL, "unknown command")
        if flags & ~ok:
            raise RequestError(proto.EINVAL, "flag not valid for this command")
        if flags & proto.CMD_FLAG_DF and not self.structured:
            raise RequestError(proto.EINVAL, "DF without structured replies")
        writes = cmd in (_WRITE, proto.CMD_TRIM, proto.CMD_WRITE_ZEROES)
        if writes and self.read_only:
            raise RequestError(proto.EPERM, "export is read-only")
        if cmd == proto.CMD_FLUSH:
            if offset or length:
                raise RequestError(proto.EINVAL, "FLUSH offset and length must be zero")
            return
        if cmd == proto.CMD_TRIM and not self.flags & proto.TF_SEND_TRIM:
            raise RequestError(proto.EINVAL, "TRIM was not negotiated")
        if cmd == proto.CMD_WRITE_ZEROES and not self.flags & proto.TF_SEND_WRITE_ZEROES:
            raise RequestError(proto.EINVAL, "WRITE_ZEROES was not negotiated")
        if cmd in (_READ, _WRITE) and length > self.max_len:
            raise RequestError(proto.EINVAL, f"length over the {self.max_len}-byte maximum")
        if offset + length > self.size:
            err = proto.ENOSPC if cmd in (_WRITE, proto.CMD_WRITE_ZEROES) else proto.EINVAL
            raise RequestError(err, f"past the end of the {self.size}-byte export")
        if cmd == proto.CMD_BLOCK_STATUS:
            if not self.meta:
                raise RequestError(proto.EINVAL, "no metadata context was negotiated")
            if not length:
                raise RequestError(proto.EINVAL, "zero-length block status")

    def block_status(self, cookie, flags, offset, length):
        b = self.backend
        if b.can_extents():
            extents = b.extents(offset, length)
        else:
            extents = [(length, 0)]
        out, total = [], 0
        for n, f in extents[:MAX_EXTENTS]:
            if n <= 0 or total >= length:
                break
            out.append((n, f))
            total += n
        if not out:
            out = [(length, 0)]
        if flags & proto.CMD_FLAG_REQ_ONE:
            out = [(min(out[0][0], length), out[0][1])]
        for ctx_id in self.meta:
            self.out.append(proto.chunk_block_status(cookie, ctx_id, out))
