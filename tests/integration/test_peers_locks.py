"""Volume locks across two hosts (two nodes on shared storage), through real peers.

Writes take the volume's lock for the writing node and wait while another node
holds it; snapshot/remove fail at once naming the holder; `unlock -f` breaks it.
"""
import threading

import pytest
from archipelago_node import Node

MiB = 1 << 20


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    root = tmp_path_factory.mktemp("hosts")
    a, b = Node(root, "nodea"), Node(root, "nodeb")
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_second_host_write_waits_for_the_first(hosts):
    a, b = hosts
    a.vlmc("create", "shared1", "--size", "4")
    with a.client() as ca, ca.volume("shared1") as va:
        va.pwrite(b"A" * 4096, 0)                 # nodea now holds the lock
        info = a.vlmc("info", "shared1", "--json").out
        assert '"lock_owner": "nodea:mapperd"' in info

        r = b.vlmc("snapshot", "shared1", "snap", check=False)
        assert r.returncode == 1 and "locked by nodea:mapperd" in r.err
        r = b.vlmc("remove", "shared1", check=False)
        assert r.returncode == 1 and "locked by nodea" in r.err

        done, errors = threading.Event(), []

        def write_from_b():
            try:
                with b.client() as cb, cb.volume("shared1") as vb:
                    vb.pwrite(b"B" * 4096, 0)
                done.set()
            except Exception as e:
                errors.append(e)

        t = threading.Thread(target=write_from_b)
        t.start()
        assert not done.wait(2.0), "nodeb wrote while nodea held the lock"
        va.pwrite(b"C" * 4096, 4096)              # the holder keeps writing meanwhile
        a.vlmc("close", "shared1")                # nodea lets go: nodeb's write proceeds
        t.join(60)
        assert done.is_set() and not errors, errors
        assert va.pread(8192, 0) == b"B" * 4096 + b"C" * 4096

    info = b.vlmc("info", "shared1", "--json").out
    assert '"lock_owner": "nodeb:mapperd"' in info
    r = a.vlmc("snapshot", "shared1", "snap2", check=False)
    assert r.returncode == 1 and "locked by nodeb:mapperd" in r.err
    b.vlmc("close", "shared1")
    a.vlmc("snapshot", "shared1", "snap2")


def test_lock_unlock_and_force(hosts):
    a, b = hosts
    a.vlmc("create", "locked1", "--size", "1")
    a.vlmc("lock", "locked1")
    a.vlmc("lock", "locked1")                     # idempotent for the owner
    r = b.vlmc("lock", "locked1", check=False)
    assert r.returncode == 1 and "locked by nodea:mapperd" in r.err
    r = b.vlmc("unlock", "locked1", check=False)
    assert r.returncode == 1 and "locked by nodea" in r.err
    b.vlmc("unlock", "-f", "locked1")             # break it
    b.vlmc("lock", "locked1")
    r = a.vlmc("snapshot", "locked1", "s", check=False)
    assert r.returncode == 1 and "nodeb" in r.err
    b.vlmc("unlock", "locked1")
    a.vlmc("snapshot", "locked1", "s")


def test_two_writers_on_one_host_share_its_lock(hosts):
    a, _ = hosts
    a.vlmc("create", "multi", "--size", "4")
    with a.client() as c1, a.client() as c2:
        v1, v2 = c1.volume("multi"), c2.volume("multi")
        threads = [threading.Thread(target=v.pwrite, args=(bytes([65 + i]) * MiB, i * MiB))
                   for i, v in enumerate((v1, v2, v1, v2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert v1.pread(4 * MiB, 0) == b"".join(bytes([65 + i]) * MiB for i in range(4))
    a.vlmc("close", "multi")
