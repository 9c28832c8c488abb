"""vlmcd's read mappings (peers/mapcache.py): kept only from a MAPR mapperd
answered holding the lease, dropped by every MAPW of their object, never learned
from a MAPR that a MAPW overtook, and served like the write mappings."""
import time

from archipelago import client
from archipelago.peers.mapcache import MapCache, clip
from archipelago.store.memory import MemoryStore

OSZ, CS = 64 << 10, 4096
SIZE = 4 * OSZ + 8192            # the last object is partial


def whole_reply(objs, held=True, epoch=1):
    """A MAPR reply for the whole volume: object i alternates own/origin chunks
    when objs[i] is a pair, is one object when a string, a hole when None."""
    ext = []
    for i, o in enumerate(objs):
        n = min(OSZ, SIZE - i * OSZ)
        if isinstance(o, tuple):
            for k in range(0, n, CS):
                ext.append([o[(k // CS) % 2], k, CS])
        else:
            ext.append([o, 0, n])
    r = {"epoch": epoch, "extents": ext}
    if held:
        r["held"] = True
    return r


def cache():
    c = MapCache(OSZ, CS, SIZE)
    c.saw_epoch(1, True)
    return c


def test_clip():
    ext = [["a", 100, 10], [None, 0, 5], ["b", 0, 20]]
    assert clip(ext, 0, 35) == ext
    assert clip(ext, 8, 4) == [["a", 108, 2], [None, 0, 2]]
    assert clip(ext, 16, 4) == [["b", 1, 4]]


def test_learned_reads_are_served_per_object_and_across_objects():
    c = cache()
    c.learn_read(0, whole_reply([("own", "org"), "x", None, "y", "z"]), c.wgen)
    assert len(c.reads) == 5
    assert c.lookup(CS + 10, 100, 60, write=False) == [["org", CS + 10, 100]]
    assert c.lookup(CS - 2, 4, 60, write=False) == [["own", CS - 2, 2], ["org", CS, 2]]
    assert c.lookup(2 * OSZ - 4, 8, 60, write=False) == [["x", OSZ - 4, 4], [None, 0, 4]]
    assert c.lookup(4 * OSZ + 8000, 192, 60, write=False) == [["z", 8000, 192]]
    assert c.lookup(0, 4096, 60, write=True) is None       # never for writes
    assert c.whole(4 * OSZ + 10, 5) == (4 * OSZ, 8192)       # clipped at the end


def test_not_learned_unless_held_or_when_a_mapw_overtook_it():
    c = cache()
    c.learn_read(0, whole_reply(["a"] * 5, held=False), c.wgen)
    assert not c.reads
    gen = c.wgen
    c.learn(0, {"epoch": 1, "extents": [["w", 0, 4096]]})    # a MAPW answered meanwhile
    c.learn_read(0, whole_reply(["a"] * 5), gen)
    assert not c.reads
    c.learn_read(0, whole_reply(["a"] * 5), c.wgen)
    assert len(c.reads) == 5


def test_a_write_drops_the_read_mappings_of_its_objects_only():
    c = cache()
    c.learn_read(0, whole_reply([("own", "org"), "x", "y", "z", "t"]), c.wgen)
    c.learn(OSZ - 10, {"epoch": 1, "extents": [["own", OSZ - 10, 10], ["x2", 0, 4096]]})
    assert sorted(c.reads) == [2, 3, 4]
    # the written chunks are served from the write mapping; the rest asks again
    assert c.lookup(OSZ + 100, 50, 60, write=False) == [["x2", 100, 50]]
    assert c.lookup(OSZ + 5000, 50, 60, write=False) is None
    assert c.lookup(2 * OSZ, 50, 60, write=False) == [["y", 0, 50]]


def test_a_new_epoch_or_an_old_lease_forgets_them():
    c = cache()
    c.learn_read(0, whole_reply(["a"] * 5), c.wgen)
    assert c.lookup(0, 10, 60, write=False) is not None
    assert c.lookup(0, 10, 0, write=False) is None           # held too long ago
    c.held = c.seen = time.monotonic() - 100
    assert c.lookup(0, 10, 60, write=False) is None
    c.learn_read(0, whole_reply(["b"] * 5, epoch=2), c.wgen)
    assert c.epoch == 2 and c.lookup(0, 10, 60, write=False) == [["b", 0, 10]]
    c.learn(0, {"epoch": 3, "extents": [["w", 0, 10]]})
    assert not c.reads
    c.learn_read(0, whole_reply(["old"] * 5, epoch=2), c.wgen)   # answered before
    assert c.epoch == 3 and not c.reads and c.lookup(0, 10, 60, write=True)


def test_reads_after_a_snapshot_and_in_a_written_clone_skip_mapperd():
    """The real engine through the in-process peers: after the first read of an
    object (and the one before it that finds the lease held), its other chunks are
    read without mapperd, and every write is seen by the reads that follow."""
    c = client.local(MemoryStore(), MemoryStore())
    mapr = []
    orig = c.t.call

    def call(port, op, method, target="", payload=b"", flags=0, **kw):
        if method == "map_read":
            mapr.append((target, kw["offset"], kw["length"]))
        return orig(port, op, method, target, payload, flags, **kw)
    c.t.call = call
    c.create("v", 4 * OSZ, object_size=OSZ)
    v = c.volume("v")
    v.pwrite(b"a" * (4 * OSZ), 0)
    c.snapshot("v", "s1")
    v.pread(4096, 0)                                  # learns that the lease is held
    v.pread(4096, OSZ)                                # asks for object 1 whole
    assert mapr[-1] == ("v", OSZ, OSZ)
    n = len(mapr)
    for off in range(OSZ, 2 * OSZ, 4096):
        assert v.pread(4096, off) == b"a" * 4096
    assert len(mapr) == n
    v.pwrite(b"b" * 100, OSZ + 5000)                  # copy-up: object 1 remapped
    assert v.pread(200, OSZ + 4950) == b"a" * 50 + b"b" * 100 + b"a" * 50
    assert len(mapr) == n                             # its chunk 1: the write mapping
    assert v.pread(4096, OSZ + 3 * 4096) == b"a" * 4096
    assert mapr[-1] == ("v", OSZ, OSZ) and len(mapr) == n + 1   # the rest: asks again
    # a clone: once written (its lease held here), its origin's chunks are kept too
    c.clone("v@s1", "cl")
    cl = c.volume("cl")
    cl.pwrite(b"c" * 10, 3 * OSZ)
    cl.pread(10, 0)
    cl.pread(10, 2 * OSZ)
    n = len(mapr)
    assert cl.pread(OSZ, 2 * OSZ) == b"a" * OSZ
    assert cl.pread(20, 3 * OSZ) == b"c" * 10 + b"a" * 10   # the written chunk
    assert len(mapr) == n
    assert cl.pread(10, 3 * OSZ + 2 * 4096) == b"a" * 10    # object 3's others: asked
    assert len(mapr) == n + 1


def test_read_mappings_are_bounded_and_counted(monkeypatch):
    import archipelago.peers.mapcache as M
    c = cache()
    c.learn_read(0, whole_reply([("own", "org"), "x", None, "y", "z"]), c.wgen)
    assert len(c) == OSZ // CS + 4                   # extents, not objects
    c.learn(0, {"epoch": 1, "extents": [["own", 0, 4096]]})
    assert len(c) == 1 + 4                           # object 0's 16 dropped, one entry
    monkeypatch.setattr(M, "MAX_READ_EXTENTS", 24)
    c.learn_read(0, whole_reply([("own", "org"), "x", None, "y", "z"]), c.wgen)
    assert c.nread == 20 == sum(len(r) for r in c.reads.values())   # cleared first
    c.learn_read(0, whole_reply(["a", "x", None, "y", "z"]), c.wgen)
    assert c.nread == 5 == sum(len(r) for r in c.reads.values())
