"""GC never deletes what a map references, even with writers running; the format
detects corrupt map nodes."""
import random
import threading
import time

import pytest

from archipelago.errors import BackendError, Busy
from archipelago.store.file import FileStore
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine
from archipelago.volume import format as fmt

M = 1 << 20


def test_gc_with_writers_running(tmp_path):
    store = FileStore(tmp_path / "s", durable=False)
    eng = VolumeEngine(store, owner="t:1", gc_grace=2)
    model = {}
    for name in ("a", "b"):
        eng.create(name, 16 * M, object_size=256 << 10)
        model[name] = bytearray(16 * M)
    stop = threading.Event()
    errors = []

    def writer(name, seed):
        rnd = random.Random(seed)
        n = 0
        try:
            while not stop.is_set():
                off = rnd.randrange(0, 16 * M - 70000)
                data = bytes([rnd.randrange(1, 256)]) * rnd.randrange(1, 70000)
                eng.write(name, off, data)
                model[name][off:off + len(data)] = data
                n += 1
                if n % 10 == 0:
                    eng.snapshot(name, f"s{n}")
                    if n % 20 == 0:
                        eng.clone(f"{name}@s{n}", f"{name}c{n}")
                        eng.remove(f"{name}@s{n - 10}")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n, i)) for i, n in enumerate(model)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 6
    runs = 0
    while time.monotonic() < deadline:
        eng.gc()
        runs += 1
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    time.sleep(2.1)
    result = eng.gc()
    assert runs >= 2 and result["deleted"] >= 0
    for name, data in model.items():
        assert eng.read(name, 0, len(data)) == bytes(data)
    for info in eng.list():                   # every clone and snapshot still loads
        eng.read(info.name, 0, info.size)
        for snap in info.snapshots:
            eng.read(f"{info.name}@{snap}", 0, 4096)
    eng.shutdown()
    store.close()


def test_gc_dry_run_deletes_nothing():
    eng = VolumeEngine(MemoryStore(), owner="t:1", gc_grace=0)
    eng.create("v", 8 * M)
    eng.write("v", 0, b"x" * M)
    eng.remove("v")
    before = sorted(eng.store.list())
    r = eng.gc(dry_run=True)
    assert r["garbage"] >= 2 and r["deleted"] == 0
    assert sorted(eng.store.list()) == before
    assert eng.gc()["deleted"] == r["garbage"]


def test_gc_grace_protects_new_objects():
    eng = VolumeEngine(MemoryStore(), owner="t:1")     # default grace
    eng.create("v", 8 * M)
    eng.write("v", 0, b"x")
    eng.remove("v")
    assert eng.gc()["deleted"] == 0


def test_one_gc_at_a_time():
    store = MemoryStore()
    eng = VolumeEngine(store, owner="t:1")
    store.lease_acquire(fmt.GC_LEASE, "other:gc", 30)
    with pytest.raises(Busy, match="garbage collection"):
        eng.gc()


def test_du():
    eng = VolumeEngine(MemoryStore(), owner="t:1")
    eng.create("v", 8 * M)
    eng.write("v", 0, b"x" * M)
    eng.snapshot("v", "s")
    du = eng.du()
    assert du["volumes"] == 1 and du["snapshots"] == 1
    assert du["logical_bytes"] == 8 * M and du["allocated_bytes"] >= 2 * M
    assert du["store_used_bytes"] >= M


def test_node_roundtrip_and_corruption():
    node = fmt.Node(fmt.new_uid(), 0, 7, fmt.new_uid())
    e = fmt.Entry(fmt.OWN | fmt.BASE, 3, fmt.new_uid(), fmt.new_uid(), fmt.new_uid(), 5, 6)
    node.set_entry(10, e)
    raw = node.encode()
    back = fmt.Node.decode(node.uid, raw)
    assert back.gen == 7 and back.owner == node.owner and back.level == 0
    got = back.entry(10)
    assert (got.flags, got.gen, got.own, got.base, got.own_bm, got.dirty_bm) == \
        (e.flags, e.gen, e.own, e.base, 5, 6)
    assert [i for i, _ in back.entries()] == [10]
    bad = bytearray(raw)
    bad[-1] ^= 0xFF
    with pytest.raises(BackendError, match="corrupt"):
        fmt.Node.decode(node.uid, bytes(bad))


def test_format_limits():
    n = fmt.LEAF_ENTRIES
    assert fmt.depth_for(1) == 0 and fmt.depth_for(n) == 0 and fmt.depth_for(n + 1) == 1
    assert fmt.chunk_size(4 * M) == 64 << 10 and fmt.chunk_size(64 << 10) == 4096
    assert fmt.depth_for(((1 << 63) - 512) // (64 << 10) + 1) <= 5


def test_gc_spares_objects_written_but_not_yet_linked():
    """A writer creates a node or object first and links it into its map after: GC
    running in between must leave it alone (the grace on the UID time)."""
    store = MemoryStore()
    eng = VolumeEngine(store, owner="t:1", gc_grace=60)
    eng.create("v", 8 * M)
    pending = fmt.DATA_PREFIX + fmt.hexuid(fmt.new_uid())
    store.write(pending, 0, b"copy-up in flight")
    old = fmt.DATA_PREFIX + "00000001" + "ab" * 8        # created in 1970: garbage
    store.write(old, 0, b"leaked")
    eng.gc()
    assert store.stat(pending) is not None and store.stat(old) is None
