"""PikaBus without a broker: errors are ours (never pika's), passwords never shown;
[rabbitmq] URL and password file handling."""
import socket

import pytest

from archipelago import config, errors
from archipelago.bus import schema
from archipelago.bus.config import broker_url, redact
from archipelago.bus.errors import BusError
from archipelago.bus.pika_bus import PikaBus


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_broker_is_a_bus_error_without_password():
    bus = PikaBus(f"amqp://archipelago:s3cret@127.0.0.1:{closed_port()}/archipelago",
                  connect_timeout=1)
    with pytest.raises(BusError) as e:
        bus.publish("nas-0-0", schema.request("list"))
    assert "cannot reach RabbitMQ" in str(e.value) and "s3cret" not in str(e.value)
    assert isinstance(e.value, errors.Unavailable)
    with pytest.raises(BusError):
        bus.call("nas-0-0", schema.request("list"), timeout=1)
    bus.close()


def test_run_stops_while_disconnected():
    bus = PikaBus(f"amqp://u:p@127.0.0.1:{closed_port()}/v", connect_timeout=0.5,
                  backoff_min=0.05)
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) >= 3:
            bus.stop()
    bus.every(0.01, tick)
    bus.run()                       # returns: timers ran and stopped it, no exception
    assert len(ticks) >= 3


def test_broker_url_password_file(tmp_path):
    pw = tmp_path / "secret"
    pw.write_text("p@ss:word\n")
    cfg = config.from_text(f"[rabbitmq]\nurl = amqp://arch@fe:5672/archipelago\n"
                           f"password_file = {pw}\n")
    url = broker_url(cfg)
    assert url == "amqp://arch:p%40ss%3Aword@fe:5672/archipelago"
    assert redact(url) == "amqp://arch:***@fe:5672/archipelago"
    explicit = config.from_text("[rabbitmq]\nurl = amqp://a:b@h/v\n")
    assert broker_url(explicit) == "amqp://a:b@h/v"
    with pytest.raises(errors.ConfigError, match="amqp://"):
        broker_url(config.from_text("[rabbitmq]\nurl = http://h/\n"))


def test_url_without_password_needs_the_file(tmp_path):
    cfg = config.from_text(f"[rabbitmq]\nurl = amqp://arch@fe/archipelago\n"
                           f"password_file = {tmp_path / 'absent'}\n")
    with pytest.raises(errors.ConfigError, match="has no password"):
        broker_url(cfg)
