"""XsegTransport: requests to peers through the node's segment (the `xseg` binding).

One transport = one dynamic port of its own, shared by every thread of the
process: a thread gets a request, fills it, submits it and sleeps on a private
event; one receiver thread waits on the port (a real wakeup, not a poll) and
hands each reply to the thread that sent it. Data is copied once each way
between the caller's buffer and the request's buffer in the segment.

Failures: a peer fails a request with an errno and, in the data buffer, its
message (`serviced` = message length); the caller gets the matching
ArchipelagoError. A reply too big for the buffer fails with EMSGSIZE and
`serviced` = the size needed, and the call is retried with room for it.
"""
import errno as E
import logging
import threading

from ..errors import ArchipelagoError, BackendError, Timeout, Unavailable
from . import protocol as P
from .transport import Reply, Transport

log = logging.getLogger(__name__)

MIN_BUF = 512          # room for a failure message even on data-less requests
MAX_INFLIGHT = 64      # requests in flight per transport (segment requests are shared)


class _NoReply(Timeout):
    """The peer did not answer in time; the request is still in flight."""


class _Waiter:
    __slots__ = ("event", "reply")

    def __init__(self):
        self.event = threading.Event()
        self.reply = None


class XsegTransport(Transport):
    """See the module docstring. Thread-safe."""

    def __init__(self, seg, port, timeout=120.0, owns_segment=False):
        self.seg = seg
        self.port = port
        self.timeout = timeout
        self._owns = owns_segment
        self._waiters = {}          # request slot index -> _Waiter
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_INFLIGHT)
        self._closed = False
        self._rx = threading.Thread(target=self._receive_loop, daemon=True,
                                    name=f"xseg-rx-{port.portno}")
        self._rx.start()

    @classmethod
    def join(cls, xseg_cfg, owner):
        """A transport on a new dynamic port of the node's segment."""
        import xseg
        try:
            seg = xseg.Segment.join(xseg_cfg.segment_name)
        except xseg.NoSuchSegment:
            raise Unavailable(f"segment {xseg_cfg.segment_name} does not exist: is the "
                              "node running? (archipelago start)") from None
        except xseg.XsegError as e:
            raise Unavailable(f"cannot join segment {xseg_cfg.segment_name}: {e}") from None
        try:
            port = seg.bind(None, owner=owner)
        except xseg.XsegError as e:
            seg.close()
            raise Unavailable(f"no free port on segment {xseg_cfg.segment_name}: {e}") from None
        return cls(seg, port, xseg_cfg.request_timeout, owns_segment=True)

    # -- sending ----------------------------------------------------------------
    def request(self, port, op, target, *, offset=0, size=0, flags=0, data=b"",
                out=None, reply_cap=0):
        import xseg
        cap = max(len(data), reply_cap, size if out is not None else 0, MIN_BUF)
        if not self._slots.acquire(timeout=self.timeout):
            raise Timeout(f"no request slot free in {self.timeout:.0f}s")
        try:
            try:
                req = self.port.get(cap, op=op, target=target, offset=offset, size=size,
                                    flags=flags)
            except xseg.XsegError as e:
                raise BackendError(f"cannot get an xseg request of {cap} bytes: {e}",
                                   errno=e.errno) from None
            lost = False
            try:
                if len(data):
                    req.data[:len(data)] = data
                rep = self._submit_and_wait(port, req)
                return self._result(rep, op, target, port, out)
            except _NoReply:
                lost = True       # still in flight: the receiver puts it back later
                raise
            finally:
                if not lost:
                    self.port.put(req)
        finally:
            self._slots.release()

    def _submit_and_wait(self, port, req):
        import xseg
        w = _Waiter()
        with self._lock:
            self._waiters[req.index] = w
        try:
            self.port.submit(port, req)
        except xseg.XsegError as e:
            with self._lock:
                self._waiters.pop(req.index, None)
            if e.errno == E.ECONNREFUSED:
                raise Unavailable(f"no peer serves port {port} (archipelago status?)") from None
            raise BackendError(f"submit to port {port}: {e}", errno=e.errno) from None
        if not w.event.wait(self.timeout):
            # The request is still out there; the receiver puts it back when (if) the
            # reply comes, so raise without touching it.
            with self._lock:
                self._waiters[req.index] = None
            raise _NoReply(f"no reply from port {port} in {self.timeout:.0f}s")
        return w.reply

    def _result(self, rep, op, target, port, out):
        if rep.failed:
            err = rep.errno or E.EIO
            n = min(rep.serviced, rep.datalen)
            if err == E.EMSGSIZE and rep.serviced > rep.datalen:
                e = ArchipelagoError(f"reply needs {rep.serviced} bytes", errno=err)
                e.needed = rep.serviced
                raise e
            msg = bytes(rep.data[:n]).decode("utf-8", "replace") if n else ""
            if err == E.ECONNRESET and not msg:
                msg = f"the peer at port {port} died serving {P.OP_NAMES.get(op)} {target}"
            raise P.error_from(err, msg)
        if out is not None:
            n = min(len(out), rep.datalen)
            out[:n] = rep.data[:n]
            return Reply(rep.serviced)
        n = rep.serviced
        return Reply(n, bytes(rep.data[:n]) if n else b"")

    # -- receiving ----------------------------------------------------------------
    def _receive_loop(self):
        while not self._closed:
            try:
                replies = self.port.receive()
                if not replies:
                    self.port.wait(1.0)
                    continue
            except Exception as e:  # the port went away under us: nothing to route
                if not self._closed:
                    log.error("xseg receiver on port %d stopped: %s", self.port.portno, e)
                return
            for rep in replies:
                with self._lock:
                    w = self._waiters.pop(rep.index, "missing")
                if w is None or w == "missing":
                    # Its sender timed out (or never existed): just give the slot back.
                    self.port.put(rep)
                    continue
                w.reply = rep
                w.event.set()

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.port.signal()
            self._rx.join(2.0)
            self.port.close()
        finally:
            if self._owns:
                self.seg.close()
