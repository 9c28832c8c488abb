"""The volume engine API: create/clone/snapshot/remove/resize/rename, the map
interface used by vlmcd, thinness, copy-on-write scope and bad input."""
import pytest

from archipelago.errors import Busy, Exists, InvalidArgument, NotFound, ReadOnly
from archipelago.store.file import FileStore
from archipelago.store.memory import MemoryStore
from archipelago.volume import Extent, VolumeEngine, VolumeInfo

M = 1 << 20


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else FileStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def eng(store):
    e = VolumeEngine(store, owner="test:1", gc_grace=0)
    yield e
    e.shutdown()


def data_objects(store):
    return sorted(n for n in store.list("vd."))


def test_create_read_write_roundtrip(eng):
    info = eng.create("vol", 64 * M)
    assert isinstance(info, VolumeInfo)
    assert (info.name, info.size, info.object_size) == ("vol", 64 * M, 4 * M)
    assert eng.read("vol", 0, 4096) == bytes(4096)
    eng.write("vol", 4 * M - 3, b"across")
    assert eng.read("vol", 4 * M - 3, 6) == b"across"
    eng.flush("vol")
    j = eng.info("vol").to_json()
    for key in ("name", "size", "object_size", "origin", "snapshots", "allocated", "unique",
                "lock_owner", "read_only"):
        assert key in j


def test_thin_unwritten_takes_no_space(eng, store):
    eng.create("thin", 1 << 40)
    assert data_objects(store) == []
    assert eng.info("thin").allocated == 0
    eng.write("thin", 1 << 39, b"x")
    assert len(data_objects(store)) == 1
    assert eng.info("thin").allocated == 64 << 10


def test_map_read_zero_extents_and_map_write(eng):
    eng.create("v", 16 * M)
    epoch, exts = eng.map_read("v", 0, 8 * M)
    assert exts == [Extent(None, 0, 4 * M), Extent(None, 0, 4 * M)]
    epoch2, wexts = eng.map_write("v", 4 * M - 512, 1024)
    assert epoch2 == epoch
    assert [e.length for e in wexts] == [512, 512]
    assert all(e.obj for e in wexts)
    assert wexts[0].obj_offset == 4 * M - 512 and wexts[1].obj_offset == 0
    # The object stays writable in this epoch: the same answer, no map change.
    assert eng.map_write("v", 4 * M - 512, 1024) == (epoch, wexts)
    _, rexts = eng.map_read("v", 4 * M - 512, 1024)
    assert [e.obj for e in rexts] == [e.obj for e in wexts]


def test_epoch_changes_on_snapshot_resize_rename(eng):
    eng.create("v", 8 * M)
    e0, _ = eng.map_write("v", 0, 512)
    eng.snapshot("v", "s")
    e1, _ = eng.map_write("v", 0, 512)
    eng.resize("v", 16 * M)
    e2, _ = eng.map_write("v", 0, 512)
    eng.rename("v", "w")
    e3, _ = eng.map_write("w", 0, 512)
    assert e0 < e1 < e2 < e3


def test_snapshot_is_read_only_and_frozen(eng):
    eng.create("v", 8 * M)
    eng.write("v", 0, b"old")
    info = eng.snapshot("v", "s")
    assert info.name == "v@s" and info.read_only
    eng.write("v", 0, b"new")
    assert eng.read("v@s", 0, 3) == b"old"
    assert eng.read("v", 0, 3) == b"new"
    with pytest.raises(ReadOnly, match="read-only"):
        eng.write("v@s", 0, b"x")
    with pytest.raises(ReadOnly):
        eng.map_write("v@s", 0, 512)
    with pytest.raises(Exists):
        eng.snapshot("v", "s")
    assert eng.info("v").snapshots == ["s"]


def test_first_write_to_shared_object_copies_only_that_object(eng, store):
    eng.create("v", 64 * M)
    for i in range(16):
        eng.write("v", i * 4 * M, bytes([i + 1]) * 4096)
    eng.snapshot("v", "s")
    before = set(data_objects(store))
    eng.write("v", 5 * 4 * M + 100, b"cow")
    new = set(data_objects(store)) - before
    assert len(new) == 1
    obj = new.pop()
    # Only the touched 64 KiB chunk went into the new object (sparse overlay).
    assert store.stat(obj) <= 64 << 10
    assert eng.read("v", 5 * 4 * M, 4096) == bytes([6]) * 100 + b"cow" + bytes([6]) * 3993
    assert eng.read("v@s", 5 * 4 * M, 4096) == bytes([6]) * 4096


def test_snapshot_and_clone_cost_is_flat_in_size(eng, store):
    """Count store writes: snapshot and clone of 1 GiB and 1 PiB write the same."""
    counts = []
    for size in (1 << 30, 1 << 50):
        name = f"v{size.bit_length()}"
        eng.create(name, size)
        eng.write(name, 0, b"x")
        eng.write(name, size - 512, b"y")
        writes = []
        orig = store.replace
        store.replace = lambda n, d, w=writes, o=orig, **k: (w.append(n), o(n, d, **k))[1]
        try:
            eng.snapshot(name, "s")
            eng.clone(f"{name}@s", name + "c")
        finally:
            store.replace = orig
        counts.append(len(writes))
        assert eng.read(name + "c", size - 512, 1) == b"y"
    assert counts[0] == counts[1] <= 3


def test_clone_has_own_tree(eng):
    eng.create("base", 32 * M)
    eng.write("base", 0, b"A" * 100)
    eng.snapshot("base", "gold")
    c = eng.clone("base@gold", "vm1", size=64 * M)
    assert c.origin == "base@gold" and c.size == 64 * M and not c.read_only
    eng.write("vm1", 10, b"B")
    eng.write("vm1", 40 * M, b"tail")
    assert eng.read("vm1", 0, 12) == b"A" * 10 + b"B" + b"A"
    assert eng.read("base@gold", 0, 12) == b"A" * 12
    assert eng.read("vm1", 40 * M, 4) == b"tail"


def test_clone_of_writable_volume_rejected(eng):
    eng.create("w", 8 * M)
    with pytest.raises(InvalidArgument, match="snapshot"):
        eng.clone("w", "c")


def test_clone_smaller_rejected(eng):
    eng.create("w", 8 * M)
    eng.snapshot("w", "s")
    with pytest.raises(InvalidArgument):
        eng.clone("w@s", "c", size=4 * M)


def test_remove_snapshot_keeps_clones(eng):
    eng.create("v", 8 * M)
    eng.write("v", 0, b"gold")
    eng.snapshot("v", "s")
    eng.clone("v@s", "c")
    eng.remove("v@s")
    with pytest.raises(NotFound):
        eng.info("v@s")
    eng.gc()
    assert eng.read("c", 0, 4) == b"gold"
    eng.write("c", 1, b"O")
    assert eng.read("c", 0, 4) == b"gOld"


def test_remove_volume_with_snapshots_is_busy(eng):
    eng.create("v", 8 * M)
    eng.snapshot("v", "s")
    with pytest.raises(Busy, match="snapshots"):
        eng.remove("v")
    eng.remove("v@s")
    eng.remove("v")
    assert eng.list() == []
    with pytest.raises(NotFound):
        eng.read("v", 0, 1)


def test_remove_then_gc_frees_space(eng, store):
    eng.create("v", 16 * M)
    eng.write("v", 0, b"z" * M)
    eng.remove("v")
    result = eng.gc()
    assert result["deleted"] >= 2
    assert [n for n in store.list() if n.startswith(("vd.", "vm.", "vh."))] == []


def test_resize(eng):
    eng.create("v", 8 * M)
    eng.write("v", 5 * M, b"abc")
    eng.resize("v", 5 * M + 1024)
    assert eng.read("v", 5 * M, 3) == b"abc"
    eng.resize("v", 5 * M + 512)
    eng.resize("v", 4 << 40)
    assert eng.info("v").size == 4 << 40
    assert eng.read("v", 5 * M, 1024) == b"abc" + bytes(509) + bytes(512)
    eng.write("v", (4 << 40) - 4, b"end!")
    assert eng.read("v", (4 << 40) - 4, 4) == b"end!"
    with pytest.raises(InvalidArgument):
        eng.read("v", 4 << 40, 1)


def test_rename(eng):
    eng.create("old", 8 * M)
    eng.write("old", 0, b"data")
    eng.snapshot("old", "s")
    eng.rename("old", "new")
    assert eng.read("new", 0, 4) == b"data" and eng.read("new@s", 0, 4) == b"data"
    with pytest.raises(NotFound):
        eng.info("old")
    eng.create("other", 8 * M)
    with pytest.raises(Exists):
        eng.rename("new", "other")
    eng.create("old", 8 * M)            # the old name is free again
    assert eng.read("old", 0, 4) == bytes(4)


def test_object_sizes(eng):
    for osize in (64 << 10, 128 << 10, 4 * M, 32 * M):
        eng.create(f"o{osize}", 64 * M, object_size=osize)
        eng.write(f"o{osize}", osize - 1, b"xy")
        assert eng.read(f"o{osize}", osize - 1, 2) == b"xy"
        assert eng.info(f"o{osize}").object_size == osize


def test_list_and_info(eng):
    eng.create("a", 8 * M)
    eng.create("b", 16 * M, object_size=1 << 20)
    eng.snapshot("a", "s")
    names = [i.name for i in eng.list()]
    assert names == ["a", "b"]
    assert eng.info("a").snapshots == ["s"]
    assert eng.info("a@s").read_only


@pytest.mark.parametrize("name", ["", "a/b", "..", "../x", "/etc", ".hidden", "a b", "A" * 90,
                                  "v@", "a\0b", "caf\u00e9"])
def test_invalid_names(eng, name):
    with pytest.raises(InvalidArgument):
        eng.create(name, 8 * M)
    assert list(eng.store.list()) == []


@pytest.mark.parametrize("size", [0, -512, 1000, 513, 1 << 63, (1 << 64), 1.5, "10", True])
def test_invalid_sizes(eng, size):
    with pytest.raises(InvalidArgument):
        eng.create("v", size)
    eng.create("ok", 8 * M)
    with pytest.raises(InvalidArgument):
        eng.resize("ok", size)


def test_largest_size(eng):
    big = (1 << 63) - 512
    eng.create("big", big)
    eng.write("big", big - 1, b"!")
    assert eng.read("big", big - 1, 1) == b"!"


@pytest.mark.parametrize("osize", [0, 4096, 32 << 10, 3 << 20, 64 << 20, -1, None])
def test_invalid_object_sizes(eng, osize):
    with pytest.raises(InvalidArgument):
        eng.create("v", 8 * M, object_size=osize)


def test_unknown_volumes(eng):
    for call in (lambda: eng.info("nope"), lambda: eng.read("nope", 0, 1),
                 lambda: eng.write("nope", 0, b"x"), lambda: eng.snapshot("nope", "s"),
                 lambda: eng.remove("nope"), lambda: eng.resize("nope", 512),
                 lambda: eng.rename("nope", "x"), lambda: eng.clone("nope@s", "x"),
                 lambda: eng.map_read("nope", 0, 1), lambda: eng.map_write("nope", 0, 1),
                 lambda: eng.hash("nope@s"), lambda: eng.open("nope")):
        with pytest.raises(NotFound):
            call()
    eng.create("v", 8 * M)
    with pytest.raises(NotFound):
        eng.info("v@nosnap")
    with pytest.raises(NotFound):
        eng.clone("v@nosnap", "x")


def test_out_of_range(eng):
    eng.create("v", 8 * M)
    for call in (lambda: eng.read("v", 8 * M - 1, 2), lambda: eng.write("v", 8 * M, b"x"),
                 lambda: eng.map_write("v", -1, 10), lambda: eng.map_read("v", 0, -1)):
        with pytest.raises(InvalidArgument):
            call()


def test_create_existing(eng):
    eng.create("v", 8 * M)
    with pytest.raises(Exists):
        eng.create("v", 8 * M)
    eng.snapshot("v", "s")
    with pytest.raises(Exists):
        eng.clone("v@s", "v")


def test_engine_reopen_reads_everything(store):
    e1 = VolumeEngine(store, owner="a:1")
    e1.create("v", 32 * M)
    e1.write("v", 123, b"persist")
    e1.snapshot("v", "s")
    e1.write("v", 123, b"PERSIST")
    e1.shutdown()
    e2 = VolumeEngine(store, owner="b:1")
    assert e2.read("v", 123, 7) == b"PERSIST"
    assert e2.read("v@s", 123, 7) == b"persist"
    e2.write("v", 0, b"b")
    assert e2.read("v", 0, 1) == b"b"
    e2.shutdown()


def test_threads_write_one_volume_while_snapshotting(eng):
    import threading
    eng.create("v", 32 * M, object_size=1 << 20)
    errors, snaps = [], []

    def writer(t):
        try:
            for i in range(40):
                off = (t * 40 + i) * 8192 * 3
                eng.write("v", off, bytes([t + 1]) * 8192)
        except Exception as e:
            errors.append(e)

    def snapper():
        try:
            for i in range(5):
                eng.snapshot("v", f"s{i}")
                snaps.append(f"s{i}")
                eng.info("v")
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads.append(threading.Thread(target=snapper))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for t in range(4):
        for i in range(40):
            off = (t * 40 + i) * 8192 * 3
            assert eng.read("v", off, 8192) == bytes([t + 1]) * 8192
    # Every snapshot holds a prefix of each writer's sequence.
    for s in snaps:
        for t in range(4):
            seen = [eng.read(f"v@{s}", (t * 40 + i) * 8192 * 3, 1) != b"\0" for i in range(40)]
            assert seen == sorted(seen, reverse=True)
