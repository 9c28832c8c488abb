"""Peer: the server side.  Subclass, name the ops you serve, run it.

    class Echo(Peer):
        name = "echo"
        def write(self, req):            # one method per op, named after it
            return bytes(req.data)       # reply data (copied into the request)
        def read(self, req):
            req.data[:req.size] = ...    # fill in place: zero copies
            return req.size              # serviced

A handler gets an xseg.Request the core has already checked (ops.check): its op
is known and served here, sizes fit the buffer, a target is there when the op
needs one.  It returns None (serviced = size), an int (serviced) or bytes-like
(the reply data), or raises: an ArchipelagoError (or OSError) fails the request
with its errno and message; anything else fails it with EIO and is logged.
Handlers run on nr_threads worker threads (0: inline in the loop, fastest, but
such a handler must not wait for other peers).  A handler may call other peers
through self.call()/self.submit(): the loop receives their replies.
"""
import errno as E
import logging
import queue
import threading
import time

import xseg

from ..errors import ArchipelagoError
from . import ops
from .endpoint import Endpoint


class Peer(Endpoint):
    name = "peer"

    def __init__(self, segment, ports, *, nr_threads=1, nr_ops=1024, log_level=None,
                 name=None):
        self.name = name or self.name
        self.log = logging.getLogger(f"archipelago.peer.{self.name}")
        if log_level:
            self.log.setLevel(log_level.upper())
        super().__init__(segment, list(ports), name=self.name, nr_ops=nr_ops)
        self.table = self.ops_table()
        self._last_warn, self._unlogged = 0.0, 0
        self.nr_threads = nr_threads
        self._work = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._worker, name=f"{self.name}-w{i}",
                                          daemon=True) for i in range(nr_threads)]
        for t in self._workers:
            t.start()

    def ops_table(self):
        """op -> bound handler, built once at start. By default the `ops.METHOD` methods
        this class defines; a subclass that routes ops elsewhere (one handler for every
        op, as peers.runtime's RolePeer does) overrides this."""
        table = {}
        for op, method in ops.METHOD.items():
            fn = getattr(self, method, None)
            if callable(fn):
                table[int(op)] = fn
        return table

    # -- dispatch --
    def _on_requests(self, port, reqs):
        if self.nr_threads:
            for r in reqs:
                self._work.put((port, r))
            return
        for r in reqs:
            self._serve(r)
        port.respond_many(reqs)

    def _worker(self):
        while True:
            item = self._work.get()
            if item is None:
                return
            port, req = item
            self._serve(req)
            try:
                port.respond(req)
            except xseg.XsegError as e:
                self.log.error("responding to request %d: %s", req.index, e)

    def _serve(self, req):
        """Run the request's handler and record the outcome in the request."""
        try:
            ops.check(req)
            fn = self.table.get(req.op)
            if fn is None:
                raise ops.BadRequest(E.EOPNOTSUPP, f"{self.name} does not serve "
                                                   f"{req.op_name}")
            self._result(req, fn(req))
        except ops.BadRequest as e:
            self._warn_bad(req, e)
            self._fail(req, e.errno, str(e))
        except (ArchipelagoError, OSError) as e:
            err = e.errno or E.EIO
            self.log.debug("%s %r failed: %s", req.op_name, req.target, e)
            self._fail(req, err, str(e) if isinstance(e, ArchipelagoError) else
                       f"{req.op_name} {req.target}: {e.strerror or e}")
        except Exception as e:
            self.log.exception("%s %r: unexpected error", req.op_name, req.target)
            self._fail(req, E.EIO, f"{self.name}: internal error: {e}")

    def _warn_bad(self, req, e):
        """Bad input is a WARNING, but a client looping on it must not flood the log:
        at most one line a second, with how many were not logged."""
        now = time.monotonic()
        if now - self._last_warn < 1.0:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since)" if self._unlogged else ""
        self.log.warning("bad request from port %d: %s%s", req.src, e, more)
        self._last_warn, self._unlogged = now, 0

    @staticmethod
    def _result(req, result):
        if result is None:
            req.serviced = req.size
        elif isinstance(result, int):
            req.serviced = result
        else:
            n = len(result)
            if n > req.datalen:
                req.resize(n)   # the request's input is spent: reuse its buffer
            if n:
                req.data[:n] = result
            req.serviced = n
        req.state = xseg.State.SERVED

    @staticmethod
    def _fail(req, err, message):
        """Fail with errno err; the message goes back in the data buffer."""
        raw = message.encode("utf-8", "replace")[:1023] + b"\0"
        try:
            if req.datalen < len(raw):
                req.resize(len(raw))
            req.data[:len(raw)] = raw
        except xseg.XsegError:
            pass    # no room for the message: the errno alone goes back
        req.serviced = 0
        req.fail(err)

    # -- lifetime --
    def _shutdown(self):
        for _ in self._workers:
            self._work.put(None)
        for t in self._workers:
            t.join()
