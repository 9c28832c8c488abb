"""vlmcd + mapperd + blockers + client, in one process over LocalTransport.

A small fake engine stands in for VolumeEngine so these tests pin down the
peers' own logic: extent splitting, zero fill, the per-epoch mapping cache and
its invalidation by a snapshot, freeze/drain, error round trips.
"""
import threading
from collections import namedtuple

import pytest

from archipelago import client as C
from archipelago.errors import Busy, InvalidArgument, NotFound, ReadOnly
from archipelago.store.memory import MemoryStore

Extent = namedtuple("Extent", "obj obj_offset length")


class FakeEngine:
    """Maps as dicts: index -> [object, writable]; copy-up on first write per epoch."""

    def __init__(self, maps, data, owner, ttl):
        self.data, self.vols, self.calls = data, {}, []
        self.lock = threading.Lock()

    def create(self, name, size, object_size=4 << 20):
        if name in self.vols:
            raise InvalidArgument(f"volume {name} exists")
        self.vols[name] = {"size": size, "osz": object_size, "epoch": 1, "objs": {},
                           "ro": False}

    def _vol(self, spec):
        if spec not in self.vols:
            raise NotFound(f"volume {spec} does not exist")
        return self.vols[spec]

    def snapshot(self, name, snap):
        with self.lock:
            v = self._vol(name)
            for o in v["objs"].values():
                o[1] = False
            self.vols[f"{name}@{snap}"] = {**v, "ro": True,
                                           "objs": {i: list(o) for i, o in v["objs"].items()}}
            v["epoch"] += 1

    def view(self, spec):
        v = self._vol(spec)
        t = type("T", (), {"size": v["size"], "object_size": v["osz"], "read_only": v["ro"],
                           "epoch": v["epoch"]})
        return t, None

    def info(self, spec, usage=True):
        v = self._vol(spec)
        return {"name": spec, "size": v["size"], "object_size": v["osz"], "readonly": v["ro"]}

    def list(self):
        return sorted(self.vols)

    def _split(self, v, off, n):
        if off + n > v["size"]:
            raise InvalidArgument("beyond the end of the volume")
        osz = v["osz"]
        while n:
            k = min(n, osz - off % osz)
            yield off // osz, off % osz, k
            off += k
            n -= k

    def map_read(self, spec, off, n):
        v = self._vol(spec)
        self.calls.append(("mapr", spec, off, n))
        return v["epoch"], [Extent(v["objs"].get(i, [None])[0], o, k)
                            for i, o, k in self._split(v, off, n)]

    def map_read_held(self, spec, off, n):
        epoch, ext = self.map_read(spec, off, n)
        return epoch, ext, "@" not in spec          # this node holds every volume

    def map_write(self, name, off, n):
        with self.lock:
            v = self._vol(name)
            if v["ro"]:
                raise ReadOnly(f"{name} is a snapshot")
            self.calls.append(("mapw", name, off, n))
            out = []
            for i, o, k in self._split(v, off, n):
                cur = v["objs"].get(i)
                if cur is None or not cur[1]:
                    new = f"{name}_{v['epoch']}_{i}"
                    if cur is not None:
                        self.data.copy(cur[0], new)
                    v["objs"][i] = cur = [new, True]
                out.append(Extent(cur[0], o, k))
            return v["epoch"], out

    def flush(self, name):
        pass

    def lock_(self, *a, **k):
        pass

    def close(self, name):
        raise Busy(f"{name} is locked by otherhost:mapperd")


@pytest.fixture
def stack():
    engines = []

    def factory(*a):
        engines.append(FakeEngine(*a))
        return engines[0]
    c = C.local(MemoryStore(), MemoryStore(), engine_factory=factory)
    c.engine = engines[0]
    return c


def test_write_read_across_objects_and_zero_fill(stack):
    stack.create("v", 1 << 20, object_size=64 << 10)
    vol = stack.volume("v")
    assert vol.size == 1 << 20 and vol.object_size == 64 << 10
    data = bytes(range(256)) * 600          # 153600 bytes: spans three objects
    vol.pwrite(data, 60000)
    assert vol.pread(len(data), 60000) == data
    assert vol.pread(1000, 0) == bytes(1000)
    assert vol.pread(1 << 20, 0)[60000:60000 + len(data)] == data


def test_snapshot_drops_the_mapping_cache(stack):
    stack.create("v", 1 << 20, object_size=64 << 10)
    vol = stack.volume("v")
    vol.pwrite(b"a" * 4096, 0)
    vol.pwrite(b"b" * 4096, 0)            # served from the cache: no second MAPW
    assert sum(1 for c in stack.engine.calls if c[0] == "mapw") == 1
    stack.snapshot("v", "s1")
    vol.pwrite(b"c" * 4096, 0)            # must copy-up again, not write the snapshot
    assert stack.volume("v@s1").pread(4096, 0) == b"b" * 4096
    assert vol.pread(4096, 0) == b"c" * 4096


def test_snapshot_is_read_only_and_errors_keep_their_message(stack):
    stack.create("v", 1 << 20)
    stack.snapshot("v", "s")
    with pytest.raises(ReadOnly):
        stack.volume("v@s").pwrite(b"x" * 512, 0)
    with pytest.raises(NotFound, match="nope does not exist"):
        stack.info("nope")
    with pytest.raises(Busy, match="locked by otherhost"):
        stack.close_volume("v")


def test_concurrent_writes_and_snapshots_keep_snapshots_consistent(stack):
    stack.create("v", 1 << 20, object_size=64 << 10)
    vol = stack.volume("v")
    stop = threading.Event()
    errors = []

    def writer(k):
        n = 0
        while not stop.is_set():
            try:
                vol.pwrite(bytes([n % 250 + 1]) * 4096, k * 4096)
            except Exception as e:
                errors.append(e)
                return
            n += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    snaps = []
    for i in range(10):
        stack.snapshot("v", f"s{i}")
        snaps.append(stack.volume(f"v@s{i}").pread(16384, 0))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    for i, before in enumerate(snaps):   # a snapshot never changes after it was taken
        assert stack.volume(f"v@s{i}").pread(16384, 0) == before


def test_import_export_sparse(stack, tmp_path):
    from archipelago.cli import transfer
    src = tmp_path / "img"
    with open(src, "wb") as f:
        f.truncate(10 << 20)
        f.seek(5 << 20)
        f.write(b"hello" * 1000)
        f.seek((10 << 20) - 700)
        f.write(b"tail" * 100)          # file size not a multiple of 512
    n = transfer.import_image(stack, "img", str(src))
    assert n > 0 and stack.info("img")["size"] == 10 << 20
    writes = [c for c in stack.engine.calls if c[0] == "mapw"]
    assert len(writes) == 2              # holes were skipped
    out = tmp_path / "out"
    transfer.export_image(stack, "img", str(out))
    assert out.read_bytes() == src.read_bytes()
    assert out.stat().st_blocks * 512 < 1 << 20   # and stay holes


def test_import_of_a_larger_file_fails(stack, tmp_path):
    from archipelago.cli import transfer
    stack.create("small", 1 << 20)
    big = tmp_path / "big"
    big.write_bytes(b"x" * ((1 << 20) + 512))
    with pytest.raises(InvalidArgument, match="larger than volume small"):
        transfer.import_image(stack, "small", str(big))


def test_reads_of_chunks_written_in_this_epoch_skip_mapperd(stack):
    stack.create("v", 1 << 20, object_size=64 << 10)
    vol = stack.volume("v")
    vol.pwrite(b"q" * 8192, 4096)
    before = sum(1 for c in stack.engine.calls if c[0] == "mapr")
    assert vol.pread(8192, 4096) == b"q" * 8192          # chunks 1-2: from the cache
    assert sum(1 for c in stack.engine.calls if c[0] == "mapr") == before
    vol.pread(4096, 32768)                               # never written: asks mapperd
    assert sum(1 for c in stack.engine.calls if c[0] == "mapr") == before + 1


def test_mapcache_masks_and_epochs():
    from archipelago.peers.mapcache import MapCache, chunk_mask
    assert chunk_mask(0, 1, 4096) == 1 and chunk_mask(4095, 2, 4096) == 3
    c = MapCache(65536, 4096)
    c.learn(65536 + 4096, {"epoch": 3, "extents": [["o1", 4096, 8192]]})
    assert c.lookup(65536 + 4096, 8192, ttl=60) == [["o1", 4096, 8192]]
    assert c.lookup(65536, 4096, ttl=60) is None         # chunk 0 unknown
    assert c.lookup(65536 + 4096, 8192, ttl=0) is None   # too old to trust
    c.learn(0, {"epoch": 4, "extents": [["o2", 0, 4096]]})
    assert len(c) == 1                                   # a new epoch forgets the old


def test_cache_bound_across_volumes():
    from archipelago.peers.mapcache import MapCache
    from archipelago.peers.vlmcd import Vlmcd
    d = Vlmcd(None, 1, 2, max_cached=3)
    for name in ("a", "b", "c"):
        v = d.vol(name)
        v.cache = MapCache(65536, 4096)
        v.cache.learn(0, {"epoch": 1, "extents": [["o", 0, 65536], ["p", 0, 65536]]})
    d._bound_caches()
    assert d.vol("c").cache is not None and d.vol("a").cache is None


def test_idle_volume_states_are_bounded(monkeypatch):
    import archipelago.peers.vlmcd as V
    monkeypatch.setattr(V, "MAX_VOLUMES", 3)
    d = V.Vlmcd(None, 1, 2)
    busy = d._entered("busy")
    for i in range(10):
        d.vol(f"junk{i}")
    assert len(d._vols) == 3 and "busy" in d._vols     # in-flight state is kept
    busy.leave()
