"""The co-located volume data path (`[nbd] datapath = colocated`) on a real node.

blockerb, blockerm and mapperd run as peer processes; the test process is the
nbdd that serves the vlmcd role itself (nbd/colocated.py), so `vlmc` and
`archipelago.client` of the node reach the same vlmcd as the NBD clients.
Driven by real NBD clients: nbdcopy, qemu-io, fio --verify.
"""
import json
import os
import subprocess
import threading
import time

import pytest
from archipelago_node import Node
from conftest import require

from archipelago.nbd.colocated import ColocatedProvider
from archipelago.nbd.testing import serve

MiB = 1 << 20
OTHER_ROLES = ("blockerb", "blockerm", "mapperd")


def run(*argv, check=True, timeout=180, cwd=None):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=timeout, cwd=cwd)


def start_colocated(node):
    for role in OTHER_ROLES:
        node.start(role)
    return ColocatedProvider(str(node.conf))


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """nodea: co-located nbdd (this process); nodeb: a plain node on the same storage."""
    root = tmp_path_factory.mktemp("coloc")
    a, b = Node(root, "nodea"), Node(root, "nodeb")
    prov = None
    try:
        prov = start_colocated(a)
        b.start()
        with serve(providers=[prov]) as srv:
            yield a, b, srv, prov
    finally:
        if prov is not None:
            prov.close()
        a.stop()
        b.stop()


def test_refuses_to_start_beside_a_running_vlmcd(hosts):
    _, b, _, _ = hosts
    with pytest.raises(Exception, match=r"datapath = colocated"):
        ColocatedProvider(str(b.conf))


def test_round_trip_across_objects(hosts, tmp_path):
    require("nbdcopy", "nbdinfo", "qemu-io")
    a, _, srv, _ = hosts
    a.vlmc("create", "rt", "--size", "64")
    uri = srv.uri("rt")
    info = json.loads(run("nbdinfo", "--json", uri).stdout)["exports"][0]
    assert info["export-size"] == 64 * MiB and info["can_multi_conn"]
    src = tmp_path / "src.raw"
    src.write_bytes(os.urandom(64 * MiB))
    run("nbdcopy", "--connections=4", "--flush", src, uri)
    back = tmp_path / "back.raw"
    run("nbdcopy", "--connections=4", uri, back)
    assert back.read_bytes() == src.read_bytes()
    run("nbdcopy", "--connections=2", "--flush", src, uri)   # rewrite: cached mappings
    # the node's other clients see the same bytes (they reach the same vlmcd)
    exported = tmp_path / "exp.raw"
    a.vlmc("export", "rt", exported)
    assert exported.read_bytes() == src.read_bytes()
    cmds = ["write -P 0x5a 4194000 1000", "write -P 0xa5 12582900 700000",
            "write -P 0x3c 33554431 2", "flush"]
    run("qemu-io", "-f", "raw", *[x for c in cmds for x in ("-c", c)], uri)
    checks = ["read -P 0x5a 4194000 1000", "read -P 0xa5 12582900 700000",
              "read -P 0x3c 33554431 2"]
    out = run("qemu-io", "-f", "raw", "-r", *[x for c in checks for x in ("-c", c)],
              uri).stdout
    assert "verification failed" not in out and out.count("read ") == 3
    run("nbdcopy", uri, back)
    data = bytearray(src.read_bytes())
    data[4194000:4194000 + 1000] = b"\x5a" * 1000
    data[12582900:12582900 + 700000] = b"\xa5" * 700000
    data[33554431:33554433] = b"\x3c\x3c"
    assert back.read_bytes() == bytes(data)


def test_fio_verify(hosts, tmp_path):
    require("fio")
    a, _, srv, _ = hosts
    a.vlmc("create", "fiov", "--size", "32")
    run("fio", "--name=v", "--ioengine=nbd", f"--uri={srv.uri('fiov')}", "--rw=randwrite",
        "--bs=4k-256k", "--iodepth=16", "--size=32m", "--verify=crc32c",
        "--verify_fatal=1", "--do_verify=1", "--randrepeat=0", cwd=tmp_path)


def test_snapshot_during_writes(hosts):
    """Writes in flight through the co-located path while `vlmc snapshot` runs: the
    snapshot holds a prefix of the (sequential) writes, the volume all of them, and
    diff(snapshot, volume) covers every write the snapshot does not hold."""
    require("qemu-io")
    a, _, srv, _ = hosts
    a.vlmc("create", "snapw", "--size", "64")
    n, size = 600, 65536
    offsets = [(i * 7919 % 1000) * size for i in range(n)]   # scattered, distinct
    cmds = [x for i, o in enumerate(offsets)
            for x in ("-c", f"write -P {(i % 250) + 1} {o} {size}")]
    proc = subprocess.Popen(["qemu-io", "-f", "raw", *cmds, srv.uri("snapw")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        a.vlmc("snapshot", "snapw", "s1")
    finally:
        assert proc.wait(180) == 0, proc.stderr.read()
    with a.client() as c:
        with c.volume("snapw@s1") as snap, c.volume("snapw") as vol:
            held = []
            for i, o in enumerate(offsets):
                pat = bytes([(i % 250) + 1]) * size
                assert vol.pread(size, o) == pat
                s = snap.pread(size, o)
                assert s in (pat, bytes(size)), f"write {i}: torn in the snapshot"
                held.append(s == pat)
        # sequential writes: the snapshot holds exactly a prefix of them
        k = held.index(False) if False in held else n
        assert all(held[:k]) and not any(held[k:])
        changed = c.diff("snapw@s1", "snapw")
    for i in range(k, n):
        o = offsets[i]
        assert any(s <= o and o + size <= s + ln for s, ln in changed), \
            f"write {i} at {o} missing from the diff"


def test_locked_by_another_host(hosts):
    """nodeb holds the volume's lock: a write through the co-located path waits and
    changes nothing until nodeb lets go."""
    require("qemu-io")
    a, b, srv, _ = hosts
    b.vlmc("create", "lk", "--size", "8")
    with b.client() as cb, cb.volume("lk") as vb:
        vb.pwrite(b"B" * 4096, 0)                 # nodeb now holds the lock
        vb.flush()
        res = {}

        def write_from_a():
            res["p"] = run("qemu-io", "-f", "raw", "-c", "write -P 0x41 0 4096",
                           srv.uri("lk"), check=False, timeout=120)

        t = threading.Thread(target=write_from_a)
        t.start()
        t.join(2.0)
        assert t.is_alive(), "nodea wrote while nodeb held the lock"
        assert vb.pread(4096, 0) == b"B" * 4096
        # (no `vlmc snapshot` on nodea here: vlmcd's freeze would wait for the
        # blocked write, as it does on the peers path)
        b.vlmc("close", "lk")                     # nodeb lets go: the write proceeds
        t.join(90)
        assert not t.is_alive() and res["p"].returncode == 0, res
    with a.client() as ca, ca.volume("lk") as va:
        assert va.pread(4096, 0) == b"A" * 4096
