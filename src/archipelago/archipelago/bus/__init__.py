"""The control-plane message bus (DESIGN §4).

    base.Bus          the interface (consume, publish, reply, call, heartbeat, run)
    pika_bus.PikaBus  RabbitMQ; the only module that imports pika
    stub.StubBus      in-memory twin for unit tests
    schema            message format, per-action field checks, size limits
    dispatch          delivery -> handler -> reply, idempotency by request_id
    db, node, daemon  what archipelago-nasd and archipelago-vmd share
"""
from .base import Bus, Delivery
from .errors import BusError, MessageError, ReplyTimeout, Unroutable
from .schema import EXCHANGE, HEARTBEAT_EXCHANGE

__all__ = ["EXCHANGE", "HEARTBEAT_EXCHANGE", "Bus", "BusError", "Delivery", "MessageError",
           "ReplyTimeout", "Unroutable", "connect"]


def connect(cfg):
    """A PikaBus for the [rabbitmq] section of `cfg` (commands and tools)."""
    from .config import RABBITMQ, broker_url
    from .pika_bus import PikaBus
    sec = cfg.section(RABBITMQ)
    return PikaBus(broker_url(cfg), amqp_heartbeat=sec.amqp_heartbeat)
