"""Endpoint: bound ports plus the loop that accepts requests and receives replies.

The requester side lives here: submit() sends a request and returns a Pending,
call() waits for the reply.  Any thread may submit; the loop thread (and one
waiting caller at a time, see wait_for) receives the replies and completes their
Pendings, so many requests can be in flight from many threads (vlmcd fans one
volume request out to many object requests).

Peer (server.py) adds the server side by overriding `_on_requests`.
"""
import logging
import threading
import time

import xseg

from ..errors import Unavailable
from .reply import Pending, Reply

log = logging.getLogger(__name__)

IDLE_CHECK = 1.0      # seconds between checks for dead peers (recovery)
BATCH = 256
GET_TIMEOUT = 10.0    # seconds prepare() waits for a free request before NoBuffers


class Endpoint:
    def __init__(self, segment, ports=None, *, name="client", nr_ops=1024):
        """Bind `ports` (a list of port numbers; None: one dynamic port) of
        `segment` (an xseg.Segment).  Requests are sent from the first port."""
        self.segment = segment
        self.name = name
        self.ports = []
        try:
            for p in ports if ports is not None else [None]:
                self.ports.append(segment.bind(p, owner=name, max_requests=nr_ops))
        except xseg.XsegError:
            self._unbind()
            raise
        self.port = self.ports[0]
        for p in self.ports[1:]:
            p.share_signal(self.port)   # one wait covers every port
        # closing the segment first closes us: our loop must not wait on unmapped memory
        segment.attach(self)
        self._pending = {}
        self._abandon_lock = threading.Lock()
        self._leader = threading.Lock()     # held by the caller receiving for all
        self._freed = threading.Condition()  # a request came back (see prepare)
        self._free_waiters = 0
        self.get_timeout = GET_TIMEOUT
        self._stopping = False
        self._closed = False
        self._thread = None

    # -- requester side --
    def prepare(self, op, target="", *, data=None, datalen=None, size=None, offset=0,
                flags=0):
        """A request ready to submit: data (bytes) copied in, or datalen bytes of room.
        When all of the port's nr_ops requests are in flight (or the heap is full) it
        waits up to get_timeout seconds for one to come back, then raises NoBuffers."""
        n = len(data) if data is not None else (datalen or 0)
        size = n if size is None else size
        deadline = None
        while True:
            try:
                req = self.port.get(n, op=op, target=target, offset=offset, size=size,
                                    flags=flags)
                break
            except xseg.NoBuffers:
                now = time.monotonic()
                deadline = deadline or now + self.get_timeout
                if now >= deadline:
                    raise
                self._wait_freed(min(0.05, deadline - now))
        if data is not None and n:
            req.data[:] = data
        return req

    def _wait_freed(self, timeout):
        """Sleep until a reply of ours is closed (or timeout: other processes free
        heap space without telling us)."""
        with self._freed:
            self._free_waiters += 1
            try:
                self._freed.wait(timeout)
            finally:
                self._free_waiters -= 1

    def _request_freed(self):
        if self._free_waiters:
            with self._freed:
                self._freed.notify_all()

    def submit_req(self, dst, req, callback=None):
        """Submit a prepared request; returns its Pending."""
        self._ensure_loop()
        pend = Pending(self, req, callback)
        self._pending[req.index] = pend   # before submit: the reply may be quick
        try:
            self.port.submit(dst, req)
        except xseg.XsegError:
            del self._pending[req.index]
            self.port.put(req)
            raise
        return pend

    def submit(self, dst, op, target="", *, callback=None, **fields):
        """Send one request to port dst; returns a Pending (see prepare for fields)."""
        return self.submit_req(dst, self.prepare(op, target, **fields), callback)

    def submit_many(self, dst, reqs):
        """Submit prepared requests to one port in one batch; returns their Pendings."""
        self._ensure_loop()
        pends = [Pending(self, r) for r in reqs]
        for r, p in zip(reqs, pends, strict=True):
            self._pending[r.index] = p
        try:
            self.port.submit_many(dst, reqs)
        except xseg.XsegError:
            for r in reqs:
                del self._pending[r.index]
            self.port.put_many(reqs)
            raise
        return pends

    def call(self, dst, op, target="", *, timeout=None, **fields):
        """Send one request and wait for its reply (a Reply to close, or an error)."""
        return self.submit(dst, op, target, **fields).result(timeout)

    def wait_for(self, pend, timeout=None):
        """Wait until pend is done; False on timeout.  One waiting caller at a time
        receives replies itself, so its own reply reaches it without a hand-off
        through the loop thread; the others sleep until someone completes theirs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._leader.acquire(blocking=False):
            try:
                self._lead(pend, deadline)
            finally:
                self._leader.release()
        left = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not pend._done.acquire(timeout=left):
            return False
        pend._done.release()    # stays "done" for later result() calls
        return True

    def _lead(self, pend, deadline):
        port = self.port
        try:
            while not self._stopping:
                tok = port.prepare_wait()
                if pend.done():         # checked after prepare: see _poll's signal
                    port.cancel_wait()
                    return
                replies = port.receive(BATCH)
                if replies:
                    port.cancel_wait()
                    self._on_replies(replies)
                    continue
                left = IDLE_CHECK if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    port.cancel_wait()
                    return
                port.wait_token(tok, min(left, IDLE_CHECK))
        except xseg.XsegError:
            return              # closed under us: close() fails the pendings

    def abandon(self, pend):
        """Give up on a Pending: its request is put back when the reply arrives."""
        with self._abandon_lock:
            if pend._reply is not None:
                pend._reply.close()
            elif pend._error is None:
                pend.abandoned = True

    def _on_replies(self, replies):
        pending = self._pending
        for req in replies:
            pend = pending.pop(req.index, None)
            if pend is None:
                log.warning("%s: reply to request %d nobody waits for", self.name,
                            req.index)
                self.port.put(req)
                continue
            with self._abandon_lock:
                if pend.abandoned:
                    self.port.put(req)
                    self._request_freed()
                    continue
            try:
                pend._complete(Reply(self.port, req, self))
            except Exception:
                log.exception("%s: reply callback failed", self.name)

    # -- server side (Peer overrides) --
    def _on_requests(self, port, reqs):
        for r in reqs:
            r.fail(95)   # EOPNOTSUPP: a plain client serves nothing
        port.respond_many(reqs)

    # -- the loop --
    def _ensure_loop(self):
        if self._thread is None:   # the loop receives the replies
            self.start()

    def start(self):
        """Start the loop thread (call() starts it on first use)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"{self.name}-loop",
                                            daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        """One pass over the queues; True if there was anything."""
        busy = False
        for port in self.ports:
            reqs = port.accept(BATCH)
            if reqs:
                busy = True
                self._on_requests(port, reqs)
        replies = self.port.receive(BATCH)
        if replies:
            busy = True
            self._on_replies(replies)
            if self._leader.locked():
                # the leading caller may be asleep waiting for a reply we took
                self.port.signal()
        return busy

    def _loop(self):
        """Poll, else sleep on the port's signal; never dies of one bad request."""
        self._last_check = time.monotonic()
        while not self._stopping:
            try:
                if not self._poll():
                    self._sleep()
                self._check_peers()
            except xseg.PortUnbound:
                break                   # closed under us: nothing left to serve
            except Exception:
                log.exception("%s: error in the request loop (continuing)", self.name)
                time.sleep(0.01)

    def _sleep(self):
        tok = self.port.prepare_wait()
        if self._stopping or any(p.pending() for p in self.ports):
            self.port.cancel_wait()     # work arrived since the last poll
            return
        if not self.port.wait_token(tok, IDLE_CHECK):
            self._last_check = 0.0      # idle for a while: look for dead peers now

    def _check_peers(self):
        """A peer that died leaves our requests unanswered: recover its ports (its
        requests then fail back to us).  At most once per IDLE_CHECK seconds."""
        now = time.monotonic()
        if now - self._last_check >= IDLE_CHECK:
            self._last_check = now
            self.segment.check()

    def stop(self):
        """Ask the loop to stop (safe from a signal handler)."""
        self._stopping = True
        if self.ports and not self._closed:
            self.port.signal()

    def close(self):
        """Stop, then unbind: requests queued here fail back to their requesters,
        and requests still pending here fail with Unavailable."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._shutdown()
        self._unbind()
        self.segment.detach(self)
        # the requests themselves went back with the ports; only the waiters remain
        for pend in list(self._pending.values()):
            pend._fail(Unavailable(f"{self.name} closed before the reply came"))
        self._pending.clear()

    def _shutdown(self):
        """Hook for Peer: let workers finish before the ports go."""

    def _unbind(self):
        for p in self.ports:
            try:
                p.close()
            except xseg.XsegError as e:
                log.warning("%s: unbinding port %d: %s", self.name, p.portno, e)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
