"""PikaBus: the Bus over RabbitMQ with pika's BlockingConnection.

Publisher confirms and `mandatory` on every request, persistent messages, durable
queues, AMQP heartbeats, reconnect with exponential backoff. Every pika exception
is translated here (BusError, Unroutable); no pika type leaves this module.
"""
import contextlib
import logging
import random
import time

import pika
import pika.exceptions as pex

from ..errors import ConfigError
from .base import Bus, Delivery
from .config import redact
from .errors import BrokerRefused, BusError, ReplyTimeout, Unroutable
from .schema import (
    EXCHANGE,
    HEARTBEAT_EXCHANGE,
    MAX_REPLY,
    MAX_REQUEST,
    decode,
    decode_reply,
    encode,
)

log = logging.getLogger(__name__)
# pika logs (with tracebacks) every failure it also raises; this module turns each one
# into a BusError that its caller reports once, so pika itself stays quiet.
logging.getLogger("pika").setLevel(logging.CRITICAL)
DIRECT_REPLY = "amq.rabbitmq.reply-to"
CONNECT_RETRY = 10.0          # seconds call() keeps trying to reach the broker
# Everything pika raises when the socket, connection or channel goes away.
_BROKEN = (pex.AMQPError, OSError, AttributeError)


class PikaBus(Bus):
    def __init__(self, url, *, amqp_heartbeat=30, connect_timeout=5.0,
                 backoff_min=0.2, backoff_max=10.0, tick=0.5):
        self.url = url
        try:
            self._params = pika.URLParameters(url)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"invalid RabbitMQ URL {redact(url)}: {e}") from None
        self._params.heartbeat = amqp_heartbeat
        self._params.blocked_connection_timeout = 30
        self._params.socket_timeout = connect_timeout
        self._params.connection_attempts = 1
        self._backoff = (backoff_min, backoff_max)
        self._tick = tick
        self._conn = self._ch = None
        self._consumers = {}          # queue -> handler
        self._hb_handlers = []
        self._timers = []             # [interval, fn, due]
        self._replies = {}            # correlation_id -> body (direct reply-to)
        self._rpc_ready = False
        self._hb_declared = False
        self._stopping = False

    # -- connection --
    def _channel(self):
        if self._ch is not None and self._ch.is_open:
            return self._ch
        self._drop()
        try:
            self._conn = pika.BlockingConnection(self._params)
            ch = self._conn.channel()
            ch.confirm_delivery()
            self._ch = ch
            for queue, handler in self._consumers.items():
                self._start_consumer(queue, handler)
            for handler in self._hb_handlers:
                self._start_heartbeat_consumer(handler)
        except (pex.ProbableAuthenticationError, pex.AuthenticationError):
            self._drop()
            raise BrokerRefused(f"RabbitMQ at {redact(self.url)} refused the login: check the "
                           "user and password ([rabbitmq] url, password_file)") from None
        except pex.ProbableAccessDeniedError:
            self._drop()
            raise BrokerRefused(f"RabbitMQ at {redact(self.url)} denied access to the vhost: "
                           "check the vhost in [rabbitmq] url and the user's "
                           "permissions") from None
        except _BROKEN as e:
            self._drop()
            raise BusError(f"cannot reach RabbitMQ at {redact(self.url)}: "
                           f"{_why(e)}") from None
        log.debug("connected to %s", redact(self.url))
        return self._ch

    def _drop(self):
        conn, self._conn, self._ch = self._conn, None, None
        self._rpc_ready = self._hb_declared = False
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except _BROKEN:
                pass

    def close(self):
        self._drop()

    @contextlib.contextmanager
    def _translate(self, what):
        """pika exceptions -> BusError (the connection is dropped and rebuilt later)."""
        try:
            yield
        except _BROKEN as e:
            self._drop()
            raise BusError(f"RabbitMQ failed {what}: {_why(e)}") from None

    # -- consumers --
    def consume(self, queue, handler):
        self._consumers[queue] = handler
        if self._ch is not None and self._ch.is_open:
            with self._translate(f"consuming {queue}"):
                self._start_consumer(queue, handler)

    def _start_consumer(self, queue, handler):
        # Declared by consumers only: a command's RPC channel saves the round trips.
        self._ch.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)
        self._ch.basic_qos(prefetch_count=1)
        self._ch.queue_declare(queue, durable=True)
        self._ch.queue_bind(queue, EXCHANGE, routing_key=queue)

        def on_message(ch, method, props, body):
            d = Delivery(body, props.reply_to, props.correlation_id, method.redelivered)
            try:
                handler(d)
            except BusError:
                raise           # not acked: redelivered after the reconnect
            except Exception:
                log.exception("handler for %s failed; message dropped", queue)
            ch.basic_ack(method.delivery_tag)

        self._ch.basic_consume(queue, on_message, auto_ack=False)

    def on_heartbeat(self, handler):
        self._hb_handlers.append(handler)
        if self._ch is not None and self._ch.is_open:
            with self._translate("subscribing to heartbeats"):
                self._start_heartbeat_consumer(handler)

    def _start_heartbeat_consumer(self, handler):
        self._ch.exchange_declare(HEARTBEAT_EXCHANGE, exchange_type="fanout", durable=False)
        q = self._ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self._ch.queue_bind(q, HEARTBEAT_EXCHANGE)

        def on_message(ch, method, props, body):
            try:
                handler(decode(body, MAX_REQUEST))
            except Exception as e:      # a bad heartbeat must not stop the daemon
                log.warning("ignoring bad heartbeat: %s", e)

        self._ch.basic_consume(q, on_message, auto_ack=True)

    # -- publishing --
    def _publish(self, exchange, routing_key, data, props, mandatory):
        ch = self._channel()
        try:
            ch.basic_publish(exchange, routing_key, data, props, mandatory=mandatory)
        except pex.UnroutableError:
            raise Unroutable(f"no queue bound to {routing_key!r}") from None
        except pex.NackError:
            raise BusError(f"RabbitMQ refused the message to {routing_key!r}") from None
        except pex.ChannelClosedByBroker as e:
            self._drop()
            if e.reply_code == 404:        # no exchange yet: no daemon ever connected
                raise Unroutable(f"no queue bound to {routing_key!r} (exchange "
                                 f"{exchange or '(default)'} does not exist)") from None
            raise BusError(f"RabbitMQ closed the channel: {_why(e)}") from None
        except _BROKEN as e:
            self._drop()
            raise BusError(f"lost the RabbitMQ connection: {_why(e)}") from None

    def publish(self, routing_key, msg, *, reply_to=None, correlation_id=None,
                expiration=None):
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, reply_to=reply_to,
            correlation_id=correlation_id, message_id=msg.get("request_id"),
            expiration=str(max(1, int(expiration * 1000))) if expiration else None)
        self._publish(EXCHANGE, routing_key, encode(msg, MAX_REQUEST), props, True)

    def reply(self, reply_to, correlation_id, msg):
        props = pika.BasicProperties(content_type="application/json",
                                     correlation_id=correlation_id)
        # RabbitMQ returns mandatory publishes to a direct reply-to as NO_ROUTE even when
        # it delivers them; node queues (callbacks) are checked.
        mandatory = not reply_to.startswith(DIRECT_REPLY)
        self._publish("", reply_to, encode(msg, MAX_REPLY), props, mandatory)

    def heartbeat(self, msg):
        if not self._hb_declared:
            ch = self._channel()
            with self._translate("declaring the heartbeat exchange"):
                ch.exchange_declare(HEARTBEAT_EXCHANGE, exchange_type="fanout", durable=False)
            self._hb_declared = True
        props = pika.BasicProperties(content_type="application/json", expiration="30000")
        self._publish(HEARTBEAT_EXCHANGE, "", encode(msg, MAX_REQUEST), props, False)

    # -- RPC --
    def call(self, routing_key, msg, timeout):
        start = time.monotonic()
        deadline = start + timeout
        cid = msg["request_id"]
        while True:
            try:
                self._ensure_rpc()
                self.publish(routing_key, msg, reply_to=DIRECT_REPLY, correlation_id=cid,
                             expiration=timeout)
                break
            except (Unroutable, BrokerRefused):
                raise
            except BusError:
                # The broker may be restarting: retry for a while, not the whole timeout.
                if time.monotonic() + 0.5 > min(deadline, start + CONNECT_RETRY):
                    raise
                time.sleep(0.5)
        while cid not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReplyTimeout(f"no reply from {routing_key} within {timeout:g}s")
            try:
                self._conn.process_data_events(time_limit=min(left, 0.25))
            except _BROKEN as e:
                self._drop()
                raise BusError(f"lost the RabbitMQ connection waiting for {routing_key}: "
                               f"{_why(e)}") from None
        return decode_reply(self._replies.pop(cid))

    def _ensure_rpc(self):
        ch = self._channel()
        if self._rpc_ready:
            return

        def on_reply(ch, method, props, body):
            self._replies[props.correlation_id] = body

        try:
            ch.basic_consume(DIRECT_REPLY, on_reply, auto_ack=True)
        except _BROKEN as e:
            self._drop()
            raise BusError(f"cannot set up a reply queue: {_why(e)}") from None
        self._rpc_ready = True

    # -- the consume loop --
    def every(self, seconds, fn):
        self._timers.append([seconds, fn, time.monotonic() + seconds])

    def stop(self):
        self._stopping = True

    def run(self):
        self._stopping = False
        delay = self._backoff[0]
        while not self._stopping:
            try:
                self._channel()
                self._conn.process_data_events(time_limit=self._tick)
                delay = self._backoff[0]
            except BusError as e:
                log.warning("%s; retrying in %.1fs", e, delay)
                self._drop()
                self._sleep(delay)
                delay = min(delay * 2, self._backoff[1]) * random.uniform(0.8, 1.2)
            except _BROKEN as e:
                log.warning("lost the RabbitMQ connection (%s); reconnecting", _why(e))
                self._drop()
            self._run_timers()
        self._drop()

    def _sleep(self, seconds):
        end = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < end:
            self._run_timers()
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _run_timers(self):
        now = time.monotonic()
        for timer in self._timers:
            if now >= timer[2]:
                timer[2] = now + timer[0]
                try:
                    timer[1]()
                except BusError as e:
                    log.debug("periodic job skipped: %s", e)
                except Exception:
                    log.exception("periodic job %r failed", timer[1])


def _why(e):
    text = str(e) or type(e).__name__
    return text if len(text) < 200 else text[:200] + "..."
