"""VolumeEngine.adopt: a sync receive's commit of a staging clone (O(1) map swap)."""
import os

import pytest

from archipelago.errors import InvalidArgument
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

MiB = 1 << 20
K64 = 64 << 10


def engine():
    return VolumeEngine(MemoryStore(), owner="t:1", lease_ttl=0, gc_grace=0)


def image(eng, spec):
    return eng.read(spec, 0, eng.info(spec, usage=False).size)


def test_adopt_swaps_the_head_and_both_stay_copy_on_write():
    eng = engine()
    eng.create("v", 16 * MiB)
    eng.write("v", 0, os.urandom(6 * MiB))
    eng.snapshot("v", "s1")
    s1 = image(eng, "v@s1")
    eng.clone("v@s1", "st")
    eng.write("st", 5 * MiB, os.urandom(K64))            # the staged stream
    eng.write("st", 12 * MiB, os.urandom(3 * K64))
    eng.write("v", MiB, os.urandom(K64))                 # a head change: dropped
    staged = image(eng, "st")
    eng.adopt("v", "st")
    assert image(eng, "v") == staged and image(eng, "v@s1") == s1
    eng.adopt("v", "st")                                 # run again: nothing to do
    assert image(eng, "v") == staged
    # Both heads now write copy-on-write: neither sees the other's writes.
    eng.write("st", 5 * MiB, b"s" * K64)
    eng.write("v", 12 * MiB, b"v" * K64)
    assert eng.read("v", 5 * MiB, K64) == staged[5 * MiB:5 * MiB + K64]
    assert eng.read("st", 12 * MiB, K64) == staged[12 * MiB:12 * MiB + K64]
    want = bytearray(staged)
    want[12 * MiB:12 * MiB + K64] = b"v" * K64
    eng.snapshot("v", "s2")
    eng.remove("st")
    eng.gc()
    assert image(eng, "v") == image(eng, "v@s2") == bytes(want)
    assert image(eng, "v@s1") == s1


def test_adopt_takes_the_size_of_the_clone():
    eng = engine()
    eng.create("v", 8 * MiB)
    eng.write("v", 0, os.urandom(MiB))
    eng.snapshot("v", "s1")
    eng.clone("v@s1", "st", 12 * MiB)
    eng.write("st", 11 * MiB, b"x" * K64)
    eng.adopt("v", "st")
    assert eng.info("v", usage=False).size == 12 * MiB
    assert image(eng, "v") == image(eng, "st")


def test_adopt_refuses_what_is_not_a_clone_of_the_volume():
    eng = engine()
    for name in ("v", "w"):
        eng.create(name, 8 * MiB)
        eng.snapshot(name, "s1")
    eng.clone("w@s1", "other")
    with pytest.raises(InvalidArgument, match="not a clone"):
        eng.adopt("v", "other")                           # another volume's clone
    eng.clone("v@s1", "st")
    eng.snapshot("st", "x")
    with pytest.raises(InvalidArgument, match="not a clone"):
        eng.adopt("v", "st")                              # it has snapshots
    with pytest.raises(InvalidArgument, match="not a clone"):
        eng.adopt("v", "w")


def test_info_without_usage_through_the_peers_skips_the_map_walk():
    """Sync asks for identities and sizes only: info(usage=False) answers without
    walking the map (allocated/unique None), through the in-process peers too."""
    from archipelago import client
    from archipelago.store.memory import MemoryStore
    c = client.local(MemoryStore(), MemoryStore())
    c.create("u", 1 << 20, object_size=64 << 10)
    with c.volume("u") as v:
        v.pwrite(b"z" * 4096, 0)
    c.snapshot("u", "s")
    full, lean = c.info("u@s"), c.info("u@s", usage=False)
    assert full["allocated"] == 4096 and lean["allocated"] is None
    assert lean["unique"] is None and lean["guid"] == full["guid"]
    assert lean["size"] == full["size"] and c.info("u", usage=False)["snapshots"] == ["s"]
