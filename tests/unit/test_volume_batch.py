"""Group commit (volume/batch.py): map_write_batch / write_batch read as the same
writes one by one, make each dirty leaf durable once, keep snapshots intact, and
keep the crash rule (old-or-new per byte; with whole=True, a rerun finishes)."""
import random

import pytest
from test_volume_crashpoints import Crash, DyingStore

from archipelago import client
from archipelago.errors import InvalidArgument, ReadOnly
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine
from archipelago.volume.batch import covered_mask

K = 1024
OSIZE = 64 * K             # chunks of 4 KiB (format.MIN_CHUNK)
SIZE = 16 * OSIZE


def engine(store=None):
    return VolumeEngine(store or MemoryStore(), owner="t:1", lease_ttl=0, gc_grace=0)


def based(eng, seed=1):
    """Volume v full of data, snapshot s1; returns its bytes."""
    data = random.Random(seed).randbytes(SIZE)
    eng.create("v", SIZE, object_size=OSIZE)
    eng.write("v", 0, data)
    eng.snapshot("v", "s1")
    return data


def items_for(seed, n=40):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        size = rng.choice([4 * K, 8 * K, 100, 5000, 3 * OSIZE // 2])
        off = rng.randrange(0, SIZE - size)
        if rng.random() < 0.5:
            off -= off % (4 * K)
        out.append((off, rng.randbytes(size)))
    return out


def apply(ref, items):
    ref = bytearray(ref)
    for off, data in items:
        ref[off:off + len(data)] = data
    return bytes(ref)


def test_covered_mask():
    cs = 4 * K
    assert covered_mask(0, OSIZE, OSIZE) == (1 << 16) - 1
    assert covered_mask(1, cs, OSIZE) == 0
    assert covered_mask(cs, cs, OSIZE) == 0b10
    assert covered_mask(cs - 1, 2 * cs + 2, OSIZE) == 0b110
    assert covered_mask(10, 100, OSIZE) == 0


@pytest.mark.parametrize("whole", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_reads_as_single_writes(whole, seed):
    eng = engine()
    base = based(eng)
    items = items_for(seed)
    eng.write_batch("v", items, whole=whole)
    assert eng.read("v", 0, SIZE) == apply(base, items)
    assert eng.read("v@s1", 0, SIZE) == base
    # The diff sees every written range (dirty bitmap) and little more.
    changed = sum(n for _, n in eng.diff("v@s1", "v"))
    assert changed <= sum(len(d) + 8 * K for _, d in items)
    # A second batch on the now-private map, then a snapshot and GC keep it all.
    more = items_for(seed + 10, 10)
    eng.write_batch("v", more, whole=whole)
    eng.snapshot("v", "s2")
    eng.gc()
    assert eng.read("v@s2", 0, SIZE) == apply(apply(base, items), more)
    assert eng.read("v@s1", 0, SIZE) == base
    # After s2 the written objects are shared overlays (own chunks over a base):
    # their copy-up copies the overlay's chunks, not the whole object durably.
    third = items_for(seed + 20, 20)
    eng.write_batch("v", third, whole=whole)
    assert eng.read("v", 0, SIZE) == apply(apply(apply(base, items), more), third)
    assert eng.read("v@s2", 0, SIZE) == apply(apply(base, items), more)
    assert eng.read("v@s1", 0, SIZE) == base


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.replaces, self.fua, self.flushes = [], 0, 0

    def replace(self, name, data, **kw):
        self.replaces.append(name)
        return super().replace(name, data, **kw)

    def write(self, name, offset, data, *, fua=False, lease=None):
        self.fua += bool(fua)
        return super().write(name, offset, data, fua=fua, lease=lease)

    def flush(self):
        self.flushes += 1
        return super().flush()


def test_one_durable_write_per_dirty_leaf():
    store = CountingStore()
    eng = engine(store)
    based(eng)
    store.replaces.clear()
    store.fua = 0
    # 16 chunk-aligned writes in 16 objects of one leaf: one commit of the leaf
    # (besides its copy-on-write after the snapshot), no FUA copy-up; one by one
    # they would cost a leaf replace and a FUA copy each.
    items = [(i * OSIZE + 4 * K, bytes(4 * K)) for i in range(16)]
    eng.write_batch("v", items, whole=True)
    # (the leaf's copy, the header naming it, the leaf's one commit)
    assert len(store.replaces) <= 3, store.replaces
    assert store.fua == 0
    # Partial chunks are copied up (no FUA) and flushed once before the leaf.
    store.replaces.clear()
    flushes = store.flushes
    eng.write_batch("v", [(i * OSIZE + 8 * K + 1, b"x") for i in range(16)])
    assert store.fua == 0
    assert store.flushes == flushes + 1
    assert len(store.replaces) == 1


def test_batch_checks():
    eng = engine()
    based(eng)
    with pytest.raises(InvalidArgument):
        eng.map_write_batch("v", [(SIZE - 1, 2)])
    with pytest.raises(ReadOnly):
        eng.map_write_batch("v@s1", [(0, 1)])
    with pytest.raises(InvalidArgument):
        eng.map_write_batch("v", [(0, 1)] * 5000)
    assert eng.read("v", 0, SIZE) == eng.read("v@s1", 0, SIZE)


def based_overlay(eng):
    """based(), then a batch and snapshot s2: the batch below meets overlays."""
    data = apply(based(eng), PRE)
    eng.write_batch("v", PRE)
    eng.snapshot("v", "s2")
    return data


def _crash_run(die_at, whole, items, overlay=False):
    store = DyingStore(0)
    eng = VolumeEngine(store, owner="dying:1", lease_ttl=0, gc_grace=0)
    base = based_overlay(eng) if overlay else based(eng)
    store.count, store.die_at = 0, die_at
    crashed = False
    try:
        eng.write_batch("v", items, whole=whole)
    except Crash:
        crashed = True
    eng2 = VolumeEngine(store.survivor(), owner="next:1", lease_ttl=0, gc_grace=0)
    eng2.unlock("v", force=True)
    return base, eng2, crashed


def _mutations(items, whole, overlay=False):
    store = DyingStore(0)
    eng = VolumeEngine(store, owner="count:1", lease_ttl=0, gc_grace=0)
    (based_overlay if overlay else based)(eng)
    store.count = 0
    eng.write_batch("v", items, whole=whole)
    return store.count


def disjoint(items):
    """The items that overlap none before them (old-or-new per byte is then exact)."""
    out = []
    for off, d in items:
        if all(off + len(d) <= o or o + len(e) <= off for o, e in out):
            out.append((off, d))
    return out


PRE = items_for(3, 24)
ITEMS = disjoint(items_for(7, 16))
CASES = [(overlay, k) for overlay in (False, True)
         for k in range(1, _mutations(ITEMS, False, overlay) + 1)]
WHOLE_CASES = [(overlay, k) for overlay in (False, True)
               for k in range(1, _mutations(ITEMS, True, overlay) + 1)]


@pytest.mark.parametrize(("overlay", "die_at"), CASES)
def test_crash_in_batch_reads_old_or_new(overlay, die_at):
    base, eng2, crashed = _crash_run(die_at, False, ITEMS, overlay)
    assert crashed
    new = apply(base, ITEMS)
    got = eng2.read("v", 0, SIZE)
    bad = [i for i in range(SIZE) if got[i] not in (base[i], new[i])]
    assert not bad, f"garbage at {bad[:5]}"
    assert eng2.read("v@s2" if overlay else "v@s1", 0, SIZE) == base


@pytest.mark.parametrize(("overlay", "die_at"), WHOLE_CASES)
def test_crash_in_whole_batch_then_rerun(overlay, die_at):
    base, eng2, crashed = _crash_run(die_at, True, ITEMS, overlay)
    assert crashed
    assert eng2.read("v@s2" if overlay else "v@s1", 0, SIZE) == base
    # Outside the batch's ranges the volume reads the old bytes; a rerun (what a
    # sync commit does after a crash) ends with the new ones everywhere.
    got, new = eng2.read("v", 0, SIZE), apply(base, ITEMS)
    inside = bytearray(SIZE)
    for off, d in ITEMS:
        inside[off:off + len(d)] = b"\1" * len(d)
    bad = [i for i in range(SIZE) if not inside[i] and got[i] != base[i]]
    assert not bad, f"changed outside the batch at {bad[:5]}"
    eng2.write_batch("v", ITEMS, whole=True)
    assert eng2.read("v", 0, SIZE) == new


def test_prepare_through_the_peers():
    c = client.local(MemoryStore(), MemoryStore())
    c.create("v", SIZE, object_size=OSIZE)
    data = random.Random(5).randbytes(SIZE)
    with c.volume("v") as v:
        v.pwrite(data, 0)
        v.flush()
    c.snapshot("v", "s1")
    items = items_for(9)
    # vlmcd learns the batch's mappings: the writes need no MAPW of their own.
    mapperd = c.t.handlers[1001]
    calls = []
    real = mapperd.c_map_write
    mapperd.c_map_write = lambda *a, **k: calls.append(a) or real(*a, **k)
    with c.volume("v") as v:
        v.prepare([(o, len(d)) for o, d in items], whole=True)
        for off, d in items:
            v.pwrite(d, off)
        assert calls == []
        v.flush()
        assert v.pread(SIZE, 0) == apply(data, items)
        v.prepare([])
    with c.volume("v@s1") as s:
        assert s.pread(SIZE, 0) == data
        with pytest.raises(ReadOnly):
            s.prepare([(0, 1)])


def test_prefetch_of_snapshot_reads_through_the_peers():
    c = client.local(MemoryStore(), MemoryStore())
    c.create("v", SIZE, object_size=OSIZE)
    data = random.Random(6).randbytes(SIZE)
    with c.volume("v") as v:
        v.pwrite(data, 0)
    c.snapshot("v", "s1")
    mapperd = c.t.handlers[1001]
    calls = []
    real = mapperd.c_map_read
    mapperd.c_map_read = lambda *a, **k: calls.append(a) or real(*a, **k)
    ranges = [(i * 5000, 3000) for i in range(40)]
    with c.volume("v@s1") as s:
        s.prefetch(ranges)
        for off, n in ranges:                       # each mapping used once
            assert s.pread(n, off) == data[off:off + n]
        assert calls == []
        assert s.pread(3000, 0) == data[:3000]      # again: asks mapperd
        assert len(calls) == 1
        s.prefetch(ranges[:3])
    # Removing the snapshot through vlmcd drops what it prefetched of it; a new
    # snapshot of the same name reads its own data.
    c.remove("v@s1")
    with c.volume("v") as v:
        v.pwrite(b"\0" * 3000, 0)
    c.snapshot("v", "s1")
    with c.volume("v@s1") as s:
        assert s.pread(3000, 0) == b"\0" * 3000
    with c.volume("v") as v:
        v.prefetch(ranges)                          # a head: nothing to do
