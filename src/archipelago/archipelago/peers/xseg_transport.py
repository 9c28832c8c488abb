"""XsegTransport: the roles' Transport over the peer framework (archipelago.peer).

Requests go out through an `Endpoint` -- the role's own Peer (replies come back
on its loop thread) or, for a plain client, an Endpoint on a dynamic port. Any
thread may send; each waits for its own reply. Data is copied once each way
between the caller's buffer and the request's buffer in the segment. A failed
reply raises the ArchipelagoError its errno and message name (the framework
carries the peer's message back in the data buffer).
"""
import errno as E
import logging

from ..errors import ArchipelagoError, BackendError, Unavailable
from .transport import Reply, Transport

log = logging.getLogger(__name__)

NO_TARGET = "-"     # node-wide calls (list, du, gc): the framework wants a target


class XsegTransport(Transport):
    """Transport over `endpoint` (an archipelago.peer Endpoint or Peer). Thread-safe."""

    def __init__(self, endpoint, timeout=120.0, owns=False):
        self.ep = endpoint
        self.timeout = timeout
        self._owns = owns

    @classmethod
    def join(cls, xseg_cfg, owner):
        """A client transport: an Endpoint on a dynamic port of the node's segment."""
        import xseg

        from ..peer import Endpoint
        try:
            seg = xseg.Segment.join(xseg_cfg.segment_name)
        except xseg.NoSuchSegment:
            raise Unavailable(f"segment {xseg_cfg.segment_name} does not exist: is the "
                              "node running? (archipelago start)") from None
        except xseg.XsegError as e:
            raise Unavailable(f"cannot join segment {xseg_cfg.segment_name}: {e}") from None
        try:
            ep = Endpoint(seg, None, name=owner).start()
        except xseg.XsegError as e:
            seg.close()
            raise Unavailable(f"no free port on segment {xseg_cfg.segment_name}: {e}") from None
        return cls(ep, xseg_cfg.request_timeout, owns=True)

    def request(self, port, op, target, *, offset=0, size=0, flags=0, data=b"",
                out=None, reply_cap=0):
        pend = self._send(port, op, target, offset, size, flags, data, out, reply_cap)
        return self._finish(pend, out)

    def start(self, port, op, target, *, offset=0, size=0, flags=0, data=b"", out=None,
              reply_cap=0):
        try:
            pend = self._send(port, op, target, offset, size, flags, data, out, reply_cap)
        except ArchipelagoError as e:
            return _Failed(e)
        return _InFlight(self, pend, out)

    def _send(self, port, op, target, offset, size, flags, data, out, reply_cap):
        import xseg
        room = max(len(data), reply_cap, size if out is not None else 0)
        try:
            req = self.ep.prepare(op, target or NO_TARGET, datalen=room, size=size,
                                  offset=offset, flags=flags)
            if len(data):
                req.data[:len(data)] = data
            return self.ep.submit_req(port, req)
        except xseg.PortNotBound:
            raise Unavailable(f"no peer serves port {port} (is the node running? "
                              "archipelago status)") from None
        except xseg.XsegError as e:
            raise BackendError(f"cannot send {op} {target} to port {port}: {e.strerror}",
                               errno=e.errno or E.EIO) from None

    def _finish(self, pend, out):
        with pend.result(self.timeout) as rep:
            if out is not None:
                n = min(len(out), rep.serviced)
                out[:n] = rep.req.data[:n]
                return Reply(rep.serviced)
            return Reply(rep.serviced, bytes(rep.data))

    def close(self):
        if self._owns:
            seg = self.ep.segment
            try:
                self.ep.close()
            finally:
                seg.close()



class _InFlight:
    __slots__ = ("out", "pend", "t")

    def __init__(self, t, pend, out):
        self.t, self.pend, self.out = t, pend, out

    def wait(self):
        return self.t._finish(self.pend, self.out)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error

    def wait(self):
        raise self.error
