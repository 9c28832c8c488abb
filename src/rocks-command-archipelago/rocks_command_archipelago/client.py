"""The frontend's side of the bus: one request, one reply, a deadline, and errors an
operator can act on."""
import logging
import time

from archipelago import config
from archipelago.bus import connect, schema
from archipelago.bus.config import RABBITMQ
from archipelago.bus.errors import BusError, ReplyTimeout, Unroutable
from archipelago.errors import Timeout, Unavailable

log = logging.getLogger(__name__)
DAEMONS = {"nas": "archipelago-nasd", "compute": "archipelago-vmd"}


class Client:
    def __init__(self, conf=None, bus=None):
        self.cfg = config.load(conf)
        self.cfg.check(RABBITMQ)
        self.default_timeout = self.cfg.section(RABBITMQ).timeout
        self._bus = bus
        self.last_elapsed = None

    @property
    def bus(self):
        if self._bus is None:
            self._bus = connect(self.cfg)
        return self._bus

    def call(self, node, action, *, role="nas", timeout=None, request_id=None, **fields):
        """Send `action` to `node`; the reply dict, or the ArchipelagoError it reports."""
        timeout = timeout or self.default_timeout
        msg = schema.request(action, request_id, **fields)
        daemon = DAEMONS.get(role, "the archipelago daemon")
        t0 = time.monotonic()
        try:
            reply = self.bus.call(node, msg, timeout)
        except Unroutable:
            raise Unavailable(f"{node} is unavailable: no queue for it on the broker "
                              f"(is {daemon} installed and started there?)") from None
        except ReplyTimeout:
            raise Timeout(f"no reply from {node} within {timeout:g}s: is {daemon} running "
                          f"there? (timeout=SECONDS waits longer)") from None
        except BusError as e:
            raise Unavailable(str(e)) from None
        finally:
            self.last_elapsed = time.monotonic() - t0
        return schema.raise_for_error(reply)

    def close(self):
        if self._bus is not None:
            self._bus.close()
