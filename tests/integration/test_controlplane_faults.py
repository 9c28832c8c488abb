"""Faults on a real broker: duplicate request ids, malformed and huge messages, a
NAS that is down, a compute node that is down, a broker restart, a NAS crash."""
import json
import re
import time
import uuid

import pika
import pytest

from archipelago import errors
from archipelago.bus import schema
from rocks_command_archipelago.client import Client

pytest_plugins = ["rabbitmq", "controlplane"]
pytestmark = pytest.mark.rabbitmq
NODES = ("nas-1-0", ("compute-1-0",))
MAP_TIMEOUT = 6
NAS, VM = "nas-1-0", "compute-1-0"


@pytest.fixture
def client(cluster):
    c = Client(str(cluster.frontend_conf()))
    yield c
    c.close()


def raw_call(url, body, routing_key=NAS, timeout=10):
    """Publish raw bytes to a node and return its decoded reply (bypassing our bus)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        replies = []
        ch.basic_consume("amq.rabbitmq.reply-to",
                         lambda c, m, p, b: replies.append(b), auto_ack=True)
        ch.basic_publish(schema.EXCHANGE, routing_key, body, pika.BasicProperties(
            reply_to="amq.rabbitmq.reply-to", correlation_id=uuid.uuid4().hex))
        end = time.monotonic() + timeout
        while not replies and time.monotonic() < end:
            conn.process_data_events(time_limit=0.2)
        assert replies, "no reply"
        return json.loads(replies[0])
    finally:
        conn.close()


def mapping_state(client, volume):
    rows = {m["volume"]: m for m in client.call(NAS, "list")["mappings"]}
    return rows[volume]["state"] if volume in rows else None


def wait_for(pred, timeout=40, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except errors.ArchipelagoError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def map_args(volume, host=VM):
    return dict(pool="pool", volume=volume, remotehost=host, size=1 << 30)


def test_same_request_id_runs_once(client):
    first = client.call(NAS, "map", request_id="dup-1", **map_args("dupvol"))
    client.call(NAS, "unmap", volume="dupvol")
    again = client.call(NAS, "map", request_id="dup-1", **map_args("dupvol"))
    assert again == first
    assert mapping_state(client, "dupvol") == "unmapped"
    assert client.call(VM, "list_dev", role="compute")["devices"] == []


@pytest.mark.parametrize("body, want", [
    (b"{{{ not json", "not valid JSON"),
    (json.dumps({"v": 1, "action": "launch_missiles", "request_id": "x1"}).encode(),
     "unknown action"),
    (json.dumps({"v": 1, "action": "map", "request_id": "x2", "pool": "p"}).encode(),
     "missing field|unknown field"),
    (json.dumps({"v": 1, "action": "map", "request_id": "x3", "pool": "p", "volume": "v",
                 "remotehost": "h", "size": [1]}).encode(),
     "must be an integer|unknown field"),
    (json.dumps({"v": 1, "action": "unmap", "request_id": "x4",
                 "volume": "x" * 300}).encode(), "the limit is 89"),
    (json.dumps({"v": 1, "action": "list", "request_id": "x5",
                 "pad": "x" * (2 << 20)}).encode(), "exceeds"),
    (json.dumps({"v": 1, "action": "sync", "request_id": "x6"}).encode(),
     "missing field"),
])
def test_bad_messages_get_error_replies(cluster, client, body, want):
    for node in (NAS, VM):
        reply = raw_call(cluster.url, body, node)
        assert reply["status"] == "error" and re.search(want, reply["error"]), reply
    assert client.call(NAS, "list")["status"] == "success"          # still alive
    assert client.call(VM, "list_dev", role="compute")["status"] == "success"


def test_frontend_timeout_when_nas_is_down(cluster, client):
    cluster.stop_node(NAS)
    try:
        with pytest.raises(errors.Timeout, match=rf"no reply from {NAS} within 2s: is "
                                                  "archipelago-nasd running there"):
            client.call(NAS, "map", timeout=2, **map_args("late"))
        r = cluster.rocks("list", "host", "storagemap", NAS, "timeout=1")
        assert r.returncode != 0 and "no reply from nas-1-0 within 1s" in r.stderr
    finally:
        cluster.start_node(NAS)
    time.sleep(2.5)              # the expired request must not run late
    assert mapping_state(client, "late") is None


def test_compute_node_down_then_back(cluster, client):
    cluster.stop_node(VM)
    try:
        with pytest.raises(errors.Timeout):
            client.call(NAS, "map", timeout=2, **map_args("slow"))
        assert mapping_state(client, "slow") == "mapping"
    finally:
        cluster.start_node(VM)
    # Either the node attaches before the NAS deadline, or the NAS rolls back: never stuck.
    wait_for(lambda: mapping_state(client, "slow") in ("mapped", "unmapped"),
             what="the pending map to settle")
    if mapping_state(client, "slow") == "mapped":
        client.call(NAS, "unmap", volume="slow")
    wait_for(lambda: client.call(VM, "list_dev", role="compute")["devices"] == [],
             what="the compute node to have nothing attached")


def test_broker_restart_daemons_reconnect(cluster, client):
    client.call(NAS, "map", **map_args("b1"))
    client.close()
    cluster.broker.restart()
    wait_for(lambda: client.call(NAS, "list", timeout=2)["status"] == "success",
             what="the NAS to reconnect")
    wait_for(lambda: client.call(VM, "list_dev", timeout=2, role="compute")["devices"],
             what="the compute node to reconnect")
    assert mapping_state(client, "b1") == "mapped"
    client.call(NAS, "unmap", volume="b1")
    client.call(NAS, "map", **map_args("b2"))
    client.call(NAS, "unmap", volume="b2")


def test_nas_crash_mid_map_recovers(cluster, client):
    cluster.stop_node(VM)
    try:
        with pytest.raises(errors.Timeout):
            client.call(NAS, "map", timeout=2, **map_args("crash"))
        cluster.kill_node(NAS)                    # kill -9 while the map is pending
        cluster.start_node(NAS)
        assert mapping_state(client, "crash") == "mapping"
    finally:
        cluster.start_node(VM)
    wait_for(lambda: mapping_state(client, "crash") in ("mapped", "unmapped"),
             what="the map pending at the crash to settle")


def test_wrong_password_and_vhost_are_clear(cluster, tmp_path):
    base = cluster.url.rsplit("/", 1)[0]
    user_host = base.split("@")[1]
    for url, want in [(f"amqp://archipelago:wrong@{user_host}/archipelago",
                       "refused the login"),
                      (f"{base}/nosuchvhost", "denied access to the vhost")]:
        conf = tmp_path / "fe.conf"
        conf.write_text(f"[rabbitmq]\nurl = {url}\n")
        c = Client(str(conf))
        with pytest.raises(errors.Unavailable, match=want) as e:
            c.call(NAS, "list", timeout=10)
        assert "wrong" not in str(e.value)
        c.close()
