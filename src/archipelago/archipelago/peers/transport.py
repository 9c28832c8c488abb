"""How a role or client sends a request to a port, independent of the wire.

`Transport.request(port, op, target, ...)` sends one request and returns its
`Reply`; a failed request raises the ArchipelagoError its errno and message name.
`call(port, op, method, target, **args)` is the envelope form (protocol.py).

Two transports implement it: `XsegTransport` (xseg_transport.py: a real segment,
the peers in other processes) and `LocalTransport` (here: the role handlers in
this process, called directly) which runs the very same role code for unit tests
and for tools that work on a store without a running node.

A role handler is `handle(req) -> int | bytes`: an int is `serviced` (the data,
if any, was written into req.buf in place, as READ does); bytes are the reply
data. Raising ArchipelagoError fails the request with its errno and message.
"""
import errno
import logging
import time
from dataclasses import dataclass

from ..errors import ArchipelagoError, Unavailable
from . import protocol as P

log = logging.getLogger(__name__)


@dataclass
class Request:
    """A request as a role handler sees it."""

    op: int
    target: str
    offset: int
    size: int
    flags: int
    buf: memoryview       # the request's data buffer: input (WRITE, call) / output
    datalen: int = 0      # bytes of valid input in buf

    @property
    def data(self):
        return self.buf[:self.datalen]


@dataclass
class Reply:
    serviced: int
    data: bytes | memoryview = b""


class Transport:
    """Send requests to ports; see the module docstring."""

    def request(self, port, op, target, *, offset=0, size=0, flags=0, data=b"",
                out=None, reply_cap=0):
        """Send one request. `data` is the input; `out` (a writable memoryview) receives
        the reply data of a READ; `reply_cap` is room for any other reply data."""
        raise NotImplementedError

    def start(self, port, op, target, **fields):
        """Send a request without waiting; `.wait()` on the result gives its Reply
        (or raises). This default sends synchronously."""
        return Done(self.request, port, op, target, **fields)

    def call(self, port, op, method, target="", payload=b"", flags=0, **args):
        """An envelope call: returns (result header, payload bytes)."""
        env = P.pack({"m": method, **args}, payload)
        rep = self.request(port, op, target, flags=flags | P.XF_CALL, data=env,
                           size=len(env), reply_cap=P.CALL_REPLY_CAP)
        header, body = P.unpack(rep.data)
        return header, bytes(body)

    def close(self):
        pass


class Done:
    """A request that has already completed (or failed): the result of start()."""

    def __init__(self, fn, *args, **kw):
        self.value = self.error = None
        try:
            self.value = fn(*args, **kw)
        except ArchipelagoError as e:
            self.error = e

    def wait(self):
        if self.error is not None:
            raise self.error
        return self.value


# errnos meaning "the peer is not there (now)": nobody bound, or it died serving it
PEER_GONE = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH}
RETRY_PAUSE = 0.1


def retrying(retry_for, fn, *args, **kw):
    """fn(*args, **kw), retried for up to `retry_for` seconds while it fails because
    its peer is gone (PEER_GONE: being restarted). For idempotent requests only."""
    deadline = None
    while True:
        try:
            return fn(*args, **kw)
        except ArchipelagoError as e:
            if e.errno not in PEER_GONE or retry_for <= 0:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + retry_for
                log.warning("%s; retrying for up to %.0fs", e, retry_for)
            if now >= deadline:
                log.error("giving up after %.0fs: %s", retry_for, e)
                raise
            time.sleep(RETRY_PAUSE)


def serve(handler, req):
    """Run `handler` on `req` and turn its result into a Reply. Reply data may be
    larger than the request's buffer (the framework grows the buffer in place)."""
    result = handler(req)
    if isinstance(result, int):
        return Reply(result)
    return Reply(len(result), bytes(result))


class LocalTransport(Transport):
    """Handlers in this process, by port: the same role code without a segment."""

    def __init__(self):
        self.handlers = {}

    def bind(self, port, handler):
        self.handlers[port] = handler

    def request(self, port, op, target, *, offset=0, size=0, flags=0, data=b"",
                out=None, reply_cap=0):
        handler = self.handlers.get(port)
        if handler is None:
            raise Unavailable(f"no peer bound to port {port}")
        cap = max(len(data), reply_cap, size if out is not None else 0)
        buf = out if out is not None and not data else bytearray(cap)
        mv = memoryview(buf)
        mv[:len(data)] = data
        req = Request(op, target, offset, size, flags, mv, len(data))
        try:
            rep = serve(handler, req)
        except ArchipelagoError as e:
            # Round-trip through errno + message exactly as a segment would.
            raise P.error_from(e.errno, str(e)) from None
        return rep
