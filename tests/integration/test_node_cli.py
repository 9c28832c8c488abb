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
    """The default data path (colocated): nbdd is the vlmcd role's process."""
    node.start()
    assert shm(node)
    st = node.archipelago("status")
    assert st.returncode == 0
    lines = st.out.splitlines()
    assert [line.split()[0] for line in lines] == [*ROLES, "segment", "nbdd"]
    assert all("running (pid" in line for line in lines[:-2])
    assert lines[3].endswith("in nbdd (datapath = colocated)")
    assert lines[-2].split()[1:] == [node.segment, "present"]
    assert lines[-1].split()[1:4] == ["running", "(pid", f"{node.pid('vlmcd')})"]
    js = json.loads(node.archipelago("status", "--json").out)
    assert [s["role"] for s in js] == [*ROLES, "nbdd"]
    assert {s["state"] for s in js} == {"running"}
    assert set(js[0]) == {"role", "type", "state", "pid", "ports", "log", "host"}
    assert js[3]["host"] == "nbdd" and js[4]["pid"] == js[3]["pid"]
    assert node.pid("nbdd") == node.pid("vlmcd")
    node.start()                                   # idempotent
    out = node.archipelago("stop").out
    assert "vlmcd mapperd blockerm blockerb" in out
    st = node.archipelago("status", check=False)
    assert st.returncode == 1 and "not running" in st.err
    assert not shm(node)                           # the last stop removes the segment
    assert not (node.run_dir / "nbdd.json").exists()


def test_peers_datapath_runs_nbdd_after_vlmcd(tmp_path):
    node = Node(tmp_path, settings={"nbd": {"datapath": "peers"}})
    try:
        node.start()
        js = json.loads(node.archipelago("status", "--json").out)
        assert [s["role"] for s in js] == [*ROLES, "nbdd"]
        assert {s["state"] for s in js} == {"running"} and js[3]["host"] == ""
        assert js[4]["pid"] != js[3]["pid"] and js[4]["uris"]   # merged: one entry
        assert "running (pid" in node.archipelago("status").out.splitlines()[4]
        out = node.archipelago("stop").out
        assert "nbdd vlmcd mapperd blockerm blockerb" in out
    finally:
        node.stop()


def test_colocated_nbdd_killed_and_restarted(node):
    node.start()
    node.vlmc("create", "v", "--size", "8M")
    pid = node.kill("vlmcd")                       # kill -9 of nbdd, which is vlmcd
    st = node.archipelago("status", check=False)
    assert st.returncode == 1 and f"dead (stale pid file, pid {pid})" in st.out
    assert "nbdd       not running (archipelago start nbdd)" in st.out
    node.start()                                   # restarts only what is down
    assert node.pid("vlmcd") != pid
    assert "v" in node.vlmc("list").out
    from archipelago.nbd.client import Client
    with Client.connect_uri(f"nbd+unix:///v?socket={node.run_dir}/nbd.sock") as c:
        c.go("v")
    node.archipelago("restart", "nbdd")            # names the vlmcd role here
    assert node.archipelago("status").returncode == 0


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
