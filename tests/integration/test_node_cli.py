"""`archipelago start|stop|restart|status` against real peers on a real segment."""
import json
import os

import pytest
from archipelago_node import ROLES, Node


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    yield n
    n.stop()


def shm(node):
    return os.path.exists(f"/dev/shm/{node.segment}")


def test_start_status_stop(node):
    node.start()
    assert shm(node)
    st = node.archipelago("status")
    assert st.returncode == 0
    lines = st.out.splitlines()
    assert [line.split()[0] for line in lines] == [*ROLES, "segment", "nbdd"]
    assert all("running (pid" in line for line in lines[:-2])
    assert lines[-2].split()[1:] == [node.segment, "present"]
    assert lines[-1].split()[1:3] == ["not", "running"]
    js = json.loads(node.archipelago("status", "--json").out)
    assert [s["role"] for s in js] == list(ROLES)
    assert {s["state"] for s in js} == {"running"}
    assert set(js[0]) == {"role", "type", "state", "pid", "ports", "log"}
    node.start()                                   # idempotent
    out = node.archipelago("stop").out
    assert "vlmcd mapperd blockerm blockerb" in out
    st = node.archipelago("status", check=False)
    assert st.returncode == 1 and "not running" in st.err
    assert not shm(node)                           # the last stop removes the segment


def test_dead_role_is_reported_and_restarted(node):
    node.start()
    pid = node.kill("mapperd")
    st = node.archipelago("status", check=False)
    assert st.returncode == 1
    assert f"dead (stale pid file, pid {pid})" in st.out
    assert "mapperd" in st.err
    node.start("mapperd")
    assert node.archipelago("status").returncode == 0
    assert node.pid("mapperd") != pid
    node.archipelago("restart", "vlmcd")
    node.vlmc("create", "v", "--size", "8M")       # the node works after both
    assert "v" in node.vlmc("list").out


def test_stop_one_role_keeps_the_segment(node):
    node.start()
    node.archipelago("stop", "vlmcd")
    assert shm(node)
    js = json.loads(node.archipelago("status", "--json", check=False).out)
    assert {s["role"]: s["state"] for s in js}["vlmcd"] == "stopped"
    r = node.vlmc("list", check=False)
    assert r.returncode == 1 and r.err.startswith("vlmc: error: ") and "port 500" in r.err


@pytest.mark.parametrize("extra,needle", [
    ("[vlmcd]\nportno_start = 1000\n", "port 1000 is also used by [blockerb]"),
    ("[vlmcd]\nbogus = 1\n", "unknown setting 'bogus'"),
    ("[PEERS]\nROLES = blockerb nosuch\n", "no [nosuch] section"),
])
def test_bad_config_fails_start_with_one_line(tmp_path, extra, needle):
    node = Node(tmp_path, extra=extra)
    try:
        r = node.archipelago("start", check=False)
        assert r.returncode == 2
        assert needle in r.err and len(r.err.strip().splitlines()) == 1
        assert not shm(node)
    finally:
        node.stop()


def test_unknown_role(node):
    r = node.archipelago("start", "nosuch", check=False)
    assert r.returncode == 2 and "unknown role 'nosuch'" in r.err


def test_vlmc_without_a_node(node):
    r = node.vlmc("list", check=False)
    assert r.returncode == 1
    assert "does not exist: is the node running?" in r.err
