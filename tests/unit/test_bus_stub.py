"""StubBus semantics the daemons rely on, and the Dispatcher's contract."""
import pytest

from archipelago.bus import schema
from archipelago.bus.errors import ReplyTimeout, Unroutable
from archipelago.bus.stub import StubBus


def test_unroutable_and_timeout():
    bus = StubBus()
    with pytest.raises(Unroutable):
        bus.publish("nobody", schema.request("x"))
    bus.consume("node", lambda d: None)            # consumes, never replies
    with pytest.raises(ReplyTimeout):
        bus.call("node", schema.request("x"), timeout=1)


def test_down_node_keeps_messages_until_up():
    bus, seen = StubBus(), []
    bus.consume("node", lambda d: seen.append(schema.decode(d.body)["action"]))
    bus.down("node")
    bus.publish("node", schema.request("a"))
    bus.drain()
    assert seen == []
    bus.up("node")
    bus.drain()
    assert seen == ["a"]


def test_heartbeats_and_timers():
    bus, hbs, ticks = StubBus(), [], []
    bus.on_heartbeat(hbs.append)
    bus.every(5, lambda: ticks.append(1))
    bus.heartbeat({"name": "n"})
    bus.tick()
    assert hbs == [{"name": "n"}] and ticks == [1]
