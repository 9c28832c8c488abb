"""`archipelago status` reports the node's nbdd (exports, connections) and
`vlmc info` the volume's NBD URI (issue 4)."""
import json

import pytest
from archipelago_node import Node

from archipelago.nbd.client import Client


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path, "nbdnode")
    try:
        n.start()
        n.vlmc("create", "vol1", "--size", "16M")
        yield n
    finally:
        n.stop()


def entries(node, check=True):
    js = json.loads(node.archipelago("status", "--json", check=check).out)
    return {e["role"]: e for e in js}


@pytest.fixture
def peers_node(tmp_path):
    n = Node(tmp_path, "nbdpeers", settings={"nbd": {"datapath": "peers"}})
    try:
        n.start()
        yield n
    finally:
        n.stop()


def test_status_without_nbdd_says_so(peers_node):
    """datapath = peers: nbdd is its own process; stopped, it is down like a role."""
    peers_node.archipelago("stop", "nbdd")
    st = peers_node.archipelago("status", check=False)
    assert "nbdd       not running (archipelago start nbdd)" in st.out
    assert st.returncode == 1 and "not running: nbdd" in st.err
    assert entries(peers_node, check=False)["nbdd"]["state"] == "stopped"
    peers_node.start_nbdd()
    assert entries(peers_node)["nbdd"]["exports"] == []


def test_status_and_info_show_exports_connections_and_uri(node):
    node.start_nbdd()
    info = json.loads(node.vlmc("info", "vol1", "--json").out)
    assert info["nbd_uri"] == f"nbd+unix:///vol1?socket={node.run_dir}/nbd.sock"
    with Client.connect_uri(info["nbd_uri"]) as c:
        c.go("vol1")
        text = node.archipelago("status").out
        nbd = entries(node)["nbdd"]
    assert "nbdd       running" in text and "1 connection(s)" in text
    assert "export   vol1" in text
    assert nbd["state"] == "running" and nbd["pid"] == node.nbdd.pid
    assert [e["name"] for e in nbd["exports"]] == ["vol1"]
    assert [c["export"] for c in nbd["connections"]] == ["vol1"]


def test_a_killed_nbdd_is_not_reported_running(node):
    node.start_nbdd().kill()
    node.nbdd.wait(10)
    st = entries(node, check=False)           # (colocated: the vlmcd role is down)
    assert "nbdd" not in st                   # its status file is stale
    assert st["vlmcd"]["state"] == "dead" and st["vlmcd"]["host"] == "nbdd"
