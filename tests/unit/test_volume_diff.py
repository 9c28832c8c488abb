"""Diff between snapshots: sub-object granularity, cost proportional to the change,
lineage through clones and images; dedup through hashing."""
import random

import pytest

from archipelago.errors import InvalidArgument
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

M = 1 << 20
K64 = 64 << 10


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.gets = 0

    def get(self, name):
        self.gets += 1
        return super().get(name)


@pytest.fixture
def eng():
    e = VolumeEngine(MemoryStore(), owner="t:1", gc_grace=0)
    yield e
    e.shutdown()


def total(ranges):
    return sum(n for _, n in ranges)


def test_scattered_64k_writes_diff_to_their_bytes(eng):
    size = 1 << 30
    eng.create("v", size)
    eng.write("v", 0, b"\1" * (8 * M))
    eng.snapshot("v", "a")
    rnd = random.Random(1)
    chunks = rnd.sample(range(size // K64), (size // 100) // K64)
    for c in chunks:
        eng.write("v", c * K64, b"\2" * K64)
    eng.snapshot("v", "b")
    ranges = eng.diff("v@a", "v@b")
    assert total(ranges) == len(chunks) * K64          # ~1%, not 1% x 64 objects
    covered = {off // K64 for off, n in ranges for off in range(off, off + n, K64)}
    assert covered == set(chunks)
    assert eng.diff("v@a", "v") == ranges
    assert eng.diff("v@b", "v") == []


def test_small_unaligned_writes_round_to_chunks(eng):
    eng.create("v", 64 * M)
    eng.snapshot("v", "a")
    eng.write("v", 100, b"x")
    eng.write("v", 5 * M + K64 - 1, b"yy")               # straddles two chunks
    assert eng.diff("v@a", "v") == [(0, K64), (5 * M, 2 * K64)]


def test_diff_cost_proportional_to_change():
    store = CountingStore()
    eng = VolumeEngine(store, owner="t:1")
    osize = 64 << 10
    eng.create("v", 1 << 40, object_size=osize)      # 16M objects: depth 2
    for i in range(0, 4000):
        eng.write("v", i * 997 * osize, b"d")        # many leaves allocated
    eng.snapshot("v", "a")
    eng.write("v", 123 * osize, b"e")
    eng.snapshot("v", "b")
    for i in range(0, 4000, 40):
        eng.write("v", i * 997 * osize + 512, b"f")
    eng.snapshot("v", "c")
    fresh = VolumeEngine(store, owner="t:2")
    store.gets = 0
    assert fresh.diff("v@a", "v@b") == [(123 * osize, 4096)]
    small = store.gets
    fresh2 = VolumeEngine(store, owner="t:3")
    store.gets = 0
    assert len(fresh2.diff("v@b", "v@c")) == 100
    big = store.gets
    leaves = 4000 * 997 // 128
    assert small <= 10                      # headers + one path of nodes
    assert big < leaves                     # only the changed part of the tree
    eng.shutdown()


def test_diff_through_clone_and_image(eng):
    eng.create("v", 32 * M)
    eng.write("v", 0, b"a" * (4 * M))
    eng.snapshot("v", "s")
    image = eng.hash("v@s")
    eng.clone("v@s", "c")
    eng.write("c", 4 * M, b"c")
    eng.snapshot("c", "c1")
    assert eng.diff("v@s", "c@c1") == [(4 * M, K64)]
    eng.clone(image, "ci")
    eng.write("ci", 10, b"z")
    eng.snapshot("ci", "x")
    assert eng.diff(image, "ci@x") == [(0, K64)]


def test_diff_requires_one_lineage(eng):
    eng.create("v", 8 * M)
    eng.snapshot("v", "s")
    eng.create("w", 8 * M)
    eng.snapshot("w", "s")
    with pytest.raises(InvalidArgument, match="ancestor"):
        eng.diff("v@s", "w@s")
    eng.snapshot("v", "t")
    with pytest.raises(InvalidArgument):
        eng.diff("v@t", "v@s")              # backwards


def test_diff_with_removed_intermediate_snapshot(eng):
    eng.create("v", 16 * M)
    eng.snapshot("v", "a")
    eng.write("v", 0, b"1" * 100)
    eng.snapshot("v", "b")
    eng.write("v", 8 * M, b"2")
    eng.snapshot("v", "c")
    eng.remove("v@b")
    ranges = eng.diff("v@a", "v@c")
    assert (0, K64) in ranges and (8 * M, K64) in ranges


def test_hash_dedups_identical_content(eng):
    for name in ("one", "two"):
        eng.create(name, 16 * M)
        eng.write(name, 0, b"same" * M)
        eng.snapshot(name, "s")
    i1, i2 = eng.hash("one@s"), eng.hash("two@s")
    assert i1 == i2 and len(i1) == 64
    info = eng.info(i1)
    assert info.image and info.read_only
    assert len(list(eng.store.list("vc."))) == 1
    with pytest.raises(InvalidArgument):
        eng.hash("one")                      # writable: snapshot first


def test_twenty_clones_of_an_image_store_little(eng):
    size = 64 * M
    eng.create("src", size)
    rnd = random.Random(2)
    eng.write("src", 0, rnd.randbytes(size))
    eng.snapshot("src", "s")
    image = eng.hash("src@s")
    eng.remove("src@s")
    eng.remove("src")
    eng.gc()
    base = eng.store.info().used
    for i in range(20):
        eng.clone(image, f"vm{i}")
        for c in rnd.sample(range(size // K64), (size // 100) // K64 + 1):
            eng.write(f"vm{i}", c * K64, b"\3" * K64)
    stored = eng.store.info().used
    assert base <= size * 1.01
    assert stored <= size * 1.25, (stored / size)


def test_diff_looks_only_at_changed_slots(eng, monkeypatch):
    from archipelago.volume import diff as diffmod
    eng.create("v", 4 << 30)                    # 1024 objects: full leaves
    eng.map_write("v", 0, 4 << 30)
    eng.snapshot("v", "a")
    eng.write("v", 700 * 4 * M, b"x")
    eng.snapshot("v", "b")
    calls = []
    real = diffmod.entry_mask
    monkeypatch.setattr(diffmod, "entry_mask", lambda *a: (calls.append(1), real(*a))[1])
    assert eng.diff("v@a", "v@b") == [(700 * 4 * M, K64)]
    assert len(calls) == 1
