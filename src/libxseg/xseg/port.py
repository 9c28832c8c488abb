"""Port: one bound port of a segment, and every request operation on it.

All methods are thread-safe (the queues have their own locks).  Batch calls
(get_many, submit_many, accept, respond_many, receive, put_many) move many
requests per call into C; use them in hot loops.
"""
from ._xseg import ffi, lib
from .errors import PortUnbound, XsegError, last_error

BATCH = 256


class Port:
    def __init__(self, segment, portno, owner):
        self.segment = segment
        self.portno = portno
        self.owner = owner
        self._h = segment._h
        self._wrap = segment._wrap

    def _handle(self):
        if self._h is None:
            raise PortUnbound(9, f"port {self.portno} is closed")
        return self._h

    def _take(self, arr, n):
        wrap = self._wrap
        out = [wrap(arr[i]) for i in range(n)]
        for r in out:
            r.port = self
        return out

    # -- requester side --
    def get(self, datalen=0, *, op=None, target=None, offset=0, size=None, flags=0):
        """A free request with a data buffer of datalen bytes, filled in as asked."""
        c = lib.xseg_get_request(self._handle(), self.portno, datalen)
        if c == ffi.NULL:
            raise last_error()
        req = self._wrap(c)
        req.port = self
        try:
            if op is not None:
                c.op = op
            if target is not None:
                req.target = target
            c.offset = offset
            c.size = datalen if size is None else size
            c.flags = flags
        except (XsegError, OverflowError, TypeError):
            self.put(req)       # a bad field: the request goes back, unused
            raise
        return req

    def get_many(self, n, datalen=0):
        """Up to n free requests (at least one, or NoBuffers)."""
        arr = ffi.new("struct xseg_request *[]", n)
        got = lib.xseg_get_requests(self._handle(), self.portno, datalen, arr, n)
        if got < 0:
            raise last_error()
        return self._take(arr, got)

    def submit(self, dst, req):
        """Queue req at port dst and wake its peer."""
        if lib.xseg_submit(self._handle(), self.portno, dst, req._r) < 0:
            raise last_error()

    def submit_many(self, dst, reqs):
        arr = ffi.new("struct xseg_request *[]", [r._r for r in reqs])
        if lib.xseg_submit_batch(self._handle(), self.portno, dst, arr, len(reqs)) < 0:
            raise last_error()

    def receive(self, max=BATCH):
        """Replies that arrived (possibly none): Requests with state SERVED or FAILED."""
        arr = ffi.new("struct xseg_request *[]", max)
        n = lib.xseg_receive(self._handle(), self.portno, arr, max)
        if n < 0:
            raise last_error()
        return self._take(arr, n) if n else []

    def put(self, req):
        """Give a request back (after its reply was received, or unused)."""
        if lib.xseg_put_request(self._handle(), self.portno, req._r) < 0:
            raise last_error()
        req.port = None

    def put_many(self, reqs):
        arr = ffi.new("struct xseg_request *[]", [r._r for r in reqs])
        if lib.xseg_put_requests(self._handle(), self.portno, arr, len(reqs)) < 0:
            raise last_error()
        for r in reqs:
            r.port = None

    # -- server side --
    def accept(self, max=BATCH):
        """Requests queued for this port (possibly none)."""
        arr = ffi.new("struct xseg_request *[]", max)
        n = lib.xseg_accept(self._handle(), self.portno, arr, max)
        if n < 0:
            raise last_error()
        return self._take(arr, n) if n else []

    def respond(self, req):
        """Send req back to its requester: SERVED, or FAILED if req.fail() was called."""
        if lib.xseg_respond(self._handle(), self.portno, req._r) < 0:
            raise last_error()
        req.port = None

    def respond_many(self, reqs):
        arr = ffi.new("struct xseg_request *[]", [r._r for r in reqs])
        n = lib.xseg_respond_batch(self._handle(), self.portno, arr, len(reqs))
        if n < len(reqs):
            raise last_error()
        for r in reqs:
            r.port = None

    def fail(self, req, err):
        """Respond with failure errno `err`."""
        req.fail(err)
        self.respond(req)

    # -- waiting --
    def pending(self):
        """Requests plus replies queued for this port."""
        return lib.xseg_pending(self._handle(), self.portno)

    def wait(self, timeout=None):
        """Sleep until this port has work or timeout (s) passes; True if woken."""
        ms = -1 if timeout is None else int(timeout * 1000)
        return lib.xseg_wait_work(self._handle(), self.portno, ms) == 0

    def prepare_wait(self):
        """First half of a wait over several ports: re-check them all, then wait_token."""
        return lib.xseg_prepare_wait(self._handle(), self.portno)

    def cancel_wait(self):
        lib.xseg_cancel_wait(self._handle(), self.portno)

    def wait_token(self, token, timeout=None):
        ms = -1 if timeout is None else int(timeout * 1000)
        return lib.xseg_wait(self._handle(), self.portno, token, ms) == 0

    def signal(self):
        """Wake whoever waits on this port (e.g. to make a peer loop notice a stop)."""
        lib.xseg_signal(self._handle(), self.portno)

    def share_signal(self, leader):
        """Wake this port's peer through port `leader`'s signal (one wait, many ports)."""
        if lib.xseg_share_signal(self._handle(), self.portno, leader.portno) < 0:
            raise last_error()

    def info(self):
        return self.segment.port_info(self.portno)

    # -- lifetime --
    def close(self):
        """Unbind: requests still queued here fail back to their requesters."""
        if self._h is None:
            return
        h, self._h = self._h, None
        self.segment._ports.discard(self)
        if lib.xseg_unbind(h, self.portno) < 0:
            raise last_error()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<xseg.Port {self.portno} of {self.segment.name}>"
