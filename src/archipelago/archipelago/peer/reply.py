"""Pending requests and their replies, as a requester sees them."""
import os
import threading

from xseg import State

from ..errors import Timeout, from_errno


class Reply:
    """A received reply.  `data` is a memoryview into the segment, valid until
    close() gives the request back (use `with`)."""

    __slots__ = ("_owner", "_port", "req")

    def __init__(self, port, req, owner=None):
        self._port = port
        self._owner = owner     # the Endpoint, told when a request comes back
        self.req = req

    @property
    def ok(self):
        return self.req.state == State.SERVED

    @property
    def errno(self):
        return self.req.errno

    @property
    def serviced(self):
        return self.req.serviced

    @property
    def data(self):
        """The reply's bytes: data[:serviced]."""
        return self.req.data[:self.req.serviced]

    @property
    def message(self):
        """A failure's message (the peer writes it into the data buffer)."""
        raw = bytes(self.req.data).split(b"\0", 1)[0]
        text = raw.decode("utf-8", "replace")
        return text or f"{self.req.op_name} {self.req.target!r}: {os.strerror(self.errno)}"

    def error(self):
        """The ArchipelagoError for a failed reply (None if it was served)."""
        if self.ok:
            return None
        return from_errno(self.errno, self.message)

    def close(self):
        if self._port is not None:
            port, self._port = self._port, None
            port.put(self.req)
            if self._owner is not None:
                self._owner._request_freed()

    def __del__(self):
        # a reply nobody closed (say, a fan-out abandoned after its first error)
        # must not keep its request out of the port for good
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pending:
    """A request in flight; result() waits for its reply.

    The endpoint's receive loop completes it; a waiter that gives up marks it
    abandoned, and the loop puts the request back when its reply arrives."""

    __slots__ = ("_done", "_error", "_reply", "abandoned", "callback", "owner", "req")

    def __init__(self, owner, req, callback=None):
        self.owner = owner          # the Endpoint that sent it
        self.req = req
        self.callback = callback    # called with the Reply, on the receiving thread
        self.abandoned = False
        self._reply = None
        self._error = None
        self._done = threading.Lock()
        self._done.acquire()

    def _complete(self, reply):
        self._reply = reply
        try:
            if self.callback is not None:
                self.callback(reply)
        finally:
            self._done.release()    # a failing callback must not strand a waiter

    def _fail(self, error):
        """No reply will ever come (the endpoint closed): result() raises error."""
        self._error = error
        self._done.release()

    def done(self):
        return self._reply is not None or self._error is not None

    def result(self, timeout=None, *, check=True):
        """The Reply (close it when done).  Raises the peer's error if check and the
        request failed (the request is given back first), Timeout after timeout s."""
        if not self.owner.wait_for(self, timeout):
            self.owner.abandon(self)
            raise Timeout(f"no reply to {self.req.op_name} {self.req.target!r} "
                          f"from port {self.req.dst} in {timeout}s")
        if self._error is not None:
            raise self._error
        reply = self._reply
        if check and not reply.ok:
            err = reply.error()
            reply.close()
            raise err
        return reply
