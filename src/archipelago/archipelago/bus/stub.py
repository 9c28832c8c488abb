"""StubBus: an in-memory twin of the broker for unit tests.

Several daemons can share one StubBus (a NAS and compute nodes). Messages are
delivered synchronously by `drain()` (or by `call()` while waiting for a reply), in
publish order. `down(node)` keeps a node's queue but stops delivering to it, like a
stopped daemon whose durable queue survives.
"""
import collections
import itertools
import logging

from .base import Bus, Delivery
from .errors import ReplyTimeout, Unroutable
from .schema import MAX_REPLY, MAX_REQUEST, decode_reply, encode

log = logging.getLogger(__name__)


class StubBus(Bus):
    def __init__(self):
        self.queues = collections.OrderedDict()     # name -> deque[Delivery]
        self.consumers = {}                          # name -> handler
        self.stopped = set()
        self.heartbeat_handlers = []
        self.timers = []
        self.published = []                          # (routing_key, msg) log for asserts
        self._ids = itertools.count(1)

    # -- Bus interface --
    def consume(self, queue, handler):
        self.queues.setdefault(queue, collections.deque())
        self.consumers[queue] = handler

    def publish(self, routing_key, msg, *, reply_to=None, correlation_id=None,
                expiration=None):
        self._put(routing_key, encode(msg, MAX_REQUEST), reply_to, correlation_id)
        self.published.append((routing_key, msg))

    def reply(self, reply_to, correlation_id, msg):
        self._put(reply_to, encode(msg, MAX_REPLY), None, correlation_id)

    def call(self, routing_key, msg, timeout):
        reply_q = f"stub.reply.{next(self._ids)}"
        self.queues[reply_q] = collections.deque()
        try:
            self._put(routing_key, encode(msg, MAX_REQUEST), reply_q, msg["request_id"])
            self.drain()
            for d in self.queues[reply_q]:
                if d.correlation_id == msg["request_id"]:
                    return decode_reply(d.body)
            raise ReplyTimeout(f"no reply from {routing_key} within {timeout:g}s")
        finally:
            del self.queues[reply_q]

    def heartbeat(self, msg):
        for handler in list(self.heartbeat_handlers):
            handler(dict(msg))

    def on_heartbeat(self, handler):
        self.heartbeat_handlers.append(handler)

    def every(self, seconds, fn):
        self.timers.append(fn)

    def run(self):
        self.drain()

    def stop(self):
        pass

    def close(self):
        pass

    # -- test helpers --
    def send_raw(self, queue, body, reply_to=None, correlation_id=None):
        """Deliver raw bytes (malformed messages, huge bodies) to a queue."""
        self._put(queue, body, reply_to, correlation_id)

    def down(self, node):
        self.stopped.add(node)

    def up(self, node):
        self.stopped.discard(node)

    def tick(self):
        """Run every periodic job once, then deliver what they sent."""
        for fn in list(self.timers):
            fn()
        self.drain()

    def drain(self, limit=10000):
        """Deliver queued messages to their consumers until nothing moves."""
        for _ in range(limit):
            for name, q in self.queues.items():
                if q and name in self.consumers and name not in self.stopped:
                    self.consumers[name](q.popleft())
                    break
            else:
                return
        raise RuntimeError("StubBus.drain: message loop did not settle")

    def _put(self, queue, body, reply_to, correlation_id):
        if queue not in self.queues:
            raise Unroutable(f"no queue bound to {queue!r}")
        self.queues[queue].append(Delivery(body, reply_to, correlation_id))
