"""The Bus interface: what daemons and commands need from the message broker.

Two implementations: `pika_bus.PikaBus` (RabbitMQ) and `stub.StubBus` (in memory,
for unit tests). Handlers and commands only ever see this interface, dicts and the
errors of `bus.errors`.

Topology (DESIGN §4): a durable direct exchange `rocks.vm-manage`; each daemon
consumes a durable queue named after its node, bound with the node name as routing
key; replies go through the default exchange to `reply_to` with `correlation_id`;
a fanout exchange carries liveness heartbeats.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class Delivery:
    """One consumed message, broker-neutral."""

    body: bytes
    reply_to: str | None = None
    correlation_id: str | None = None
    redelivered: bool = False


class Bus(ABC):
    """A connection to the broker. Not thread-safe: one bus per thread."""

    @abstractmethod
    def consume(self, queue, handler):
        """Declare the durable queue `queue` bound to the exchange with routing key
        `queue` and call handler(Delivery) for each message. The message is acked
        after the handler returns; if the handler raises BusError (the connection
        broke) it is not, and the broker redelivers it. Must be idempotent."""

    @abstractmethod
    def publish(self, routing_key, msg, *, reply_to=None, correlation_id=None,
                expiration=None):
        """Send `msg` (a dict) to the node `routing_key`: persistent, mandatory and
        confirmed. Raises Unroutable if no queue has that key, BusError if the broker
        is unreachable. `expiration` (seconds): the broker drops it if unconsumed."""

    @abstractmethod
    def reply(self, reply_to, correlation_id, msg):
        """Send a reply to the queue `reply_to`. Raises Unroutable if it is gone."""

    @abstractmethod
    def call(self, routing_key, msg, timeout):
        """Publish `msg` and wait for the reply with the same correlation id; returns
        the reply dict. Raises ReplyTimeout after `timeout` seconds."""

    @abstractmethod
    def heartbeat(self, msg):
        """Publish a liveness message on the fanout exchange (fire and forget)."""

    @abstractmethod
    def on_heartbeat(self, handler):
        """Call handler(dict) for every heartbeat any daemon publishes."""

    @abstractmethod
    def every(self, seconds, fn):
        """Run fn() every `seconds` from the consume loop (also while disconnected)."""

    @abstractmethod
    def run(self):
        """Consume until stop(); reconnects with backoff when the broker goes away."""

    @abstractmethod
    def stop(self):
        """Make run() return after the message in progress (safe from signal handlers)."""

    @abstractmethod
    def close(self):
        """Close the connection; the bus may be used again (it reconnects)."""
