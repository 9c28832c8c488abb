"""Errors of the control-plane bus, rooted in archipelago.errors.

pika's exceptions are translated into these inside `pika_bus`; nothing else in the
project ever sees a pika type.
"""
from ..errors import InvalidArgument, Timeout, Unavailable


class BusError(Unavailable):
    """The broker cannot be reached or the connection/channel broke."""


class BrokerRefused(BusError):
    """The broker refused our login or vhost: retrying will not help."""


class Unroutable(Unavailable):
    """A mandatory publish found no queue for its routing key (node unknown or gone)."""


class MessageError(InvalidArgument):
    """A message is not valid JSON, too large, or has missing/wrong-typed fields."""


class ReplyTimeout(Timeout):
    """No reply to a request before its deadline."""
