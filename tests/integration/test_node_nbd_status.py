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


def entries(node):
    return {e["role"]: e for e in json.loads(node.archipelago("status", "--json").out)}


def test_status_without_nbdd_says_so_and_still_succeeds(node):
    assert "nbdd       not running" in node.archipelago("status").out
    assert "nbdd" not in entries(node)       # listed only while it runs


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
    assert "nbdd" not in entries(node)       # its status file is stale
