"""kill -9 of mapperd and of the blockers (filed) at random points during writes,
snapshots and gc; after restart every acknowledged write reads back and every
map loads.

One client thread runs a random workload against an in-memory model, retrying
every failed operation until it succeeds (a failed write is not acknowledged, so
the model changes only when it returns); a killer thread kill -9s a random role
at random moments and restarts it with `archipelago start ROLE`.
"""
import random
import threading
import time

import pytest
from archipelago_node import Node

from archipelago.errors import ArchipelagoError, Exists

MiB = 1 << 20
SIZE = 16 * MiB
VICTIMS = ("mapperd", "blockerb", "blockerm")


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    n.start()
    yield n
    n.stop()


def retry(fn, deadline, *args):
    """Call fn(*args) until it succeeds (peers come back); Exists: an earlier try did it."""
    while True:
        try:
            return fn(*args)
        except Exists:
            return None
        except ArchipelagoError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Workload:
    def __init__(self, node, seed):
        self.node, self.rng = node, random.Random(seed)
        self.model = {"crash": bytearray(SIZE)}
        self.snaps = {}
        self.acked = 0

    def run(self, ops, deadline, kills, min_kills):
        c = retry(self.node.client, deadline)
        retry(c.create, deadline, "crash", SIZE, 1 * MiB)
        vol = retry(c.volume, deadline, "crash")
        i = 0
        while i < ops or (len(kills) < min_kills and time.monotonic() < deadline - 60):
            i += 1
            r = self.rng.random()
            if r < 0.75:
                off = self.rng.randrange(0, SIZE // 512) * 512
                n = min(self.rng.choice([512, 8192, 65536, 700 * 1024]), SIZE - off)
                data = self.rng.randbytes(n)
                retry(vol.pwrite, deadline, data, off)
                self.model["crash"][off:off + n] = data
                self.acked += 1
            elif r < 0.9:
                name = f"s{i}"
                retry(c.snapshot, deadline, "crash", name)
                self.snaps[f"crash@{name}"] = bytes(self.model["crash"])
            else:
                retry(c.gc, deadline)
        c.close()


def killer(node, rng, stop, kills):
    while not stop.wait(rng.uniform(0.3, 1.2)):
        role = rng.choice(VICTIMS)
        node.kill(role)
        kills.append(role)
        node.start(role)


@pytest.mark.slow
def test_kill_9_during_writes_snapshots_and_gc(node):
    deadline = time.monotonic() + 240
    w = Workload(node, seed=11)
    stop, kills = threading.Event(), []
    k = threading.Thread(target=killer, args=(node, random.Random(5), stop, kills))
    k.start()
    try:
        w.run(ops=150, deadline=deadline, kills=kills, min_kills=8)
    finally:
        stop.set()
        k.join()
    assert len(kills) >= 8 and set(kills) == set(VICTIMS) and w.acked > 100, (kills, w.acked)

    node.archipelago("restart")
    with node.client() as c:
        names = c.list()
        assert "crash" in names
        assert c.volume("crash").pread(SIZE, 0) == bytes(w.model["crash"])
        for spec, expected in w.snaps.items():
            c.info(spec)                                  # every map loads
            assert c.volume(spec).pread(SIZE, 0) == expected, spec
        c.gc()
        for spec, expected in list(w.snaps.items())[:3]:  # gc kept what maps reference
            assert c.volume(spec).pread(SIZE, 0) == expected, spec


def test_a_vlmcd_restart_is_a_pause_for_volume_io(node):
    """Volume I/O is idempotent, so the client rides out a vlmcd kill -9 + restart
    (and vlmcd rides out mapperd's and the blockers')."""
    with node.client() as c:
        c.create("steady", 4 * MiB, object_size=1 * MiB)
        vol = c.volume("steady")
        expected = bytearray(4 * MiB)
        errors, stop, count = [], threading.Event(), [0]

        def writer():
            i = 0
            try:
                while not stop.is_set():
                    off, b = (i % 64) * 65536, bytes([i % 250 + 1]) * 4096
                    vol.pwrite(b, off)
                    expected[off:off + 4096] = b
                    i += 1
            except Exception as e:
                errors.append(e)
            count[0] = i

        t = threading.Thread(target=writer)
        t.start()
        for role in ("vlmcd", "mapperd", "blockerb", "vlmcd"):
            time.sleep(0.5)
            node.kill(role)
            node.start(role)
        time.sleep(0.5)
        stop.set()
        t.join(120)
        assert not errors, errors
        assert count[0] > 20
        assert vol.pread(4 * MiB, 0) == bytes(expected)
