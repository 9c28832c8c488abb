"""Model-based test of the volume engine: random writes of random sizes and offsets,
snapshots, clones (of snapshots and of hashed images), resizes, renames, removes,
hash, diff and gc, checked byte for byte against an in-memory model of every live
volume, snapshot and image."""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from archipelago.errors import Busy, Exists, InvalidArgument, NotFound
from archipelago.store.file import FileStore
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

NAMES = ["a", "b", "c", "d", "e"]
SNAPS = ["s1", "s2", "s3"]
K64 = 64 << 10


def sizes():
    # Mostly a few objects; sometimes more than one leaf (512 objects) to get depth 1.
    return st.one_of(st.integers(1, 1200).map(lambda n: n * 512),
                     st.integers(1, 8).map(lambda n: n * K64 + 512 * (n % 3)),
                     st.sampled_from([(513 * K64), 600 * K64 + 1024]))


class VolumeModel(RuleBasedStateMachine):
    store_factory = staticmethod(MemoryStore)

    def __init__(self):
        super().__init__()
        self.store = self.store_factory()
        self.eng = VolumeEngine(self.store, owner="model:1", gc_grace=0)
        self.vols = {}      # name -> {"data": bytearray, "snaps": {snap: bytes}}
        self.images = {}    # name -> bytes

    def teardown(self):
        self.check_all()
        self.eng.shutdown()
        self.store.close()

    # -- helpers ------------------------------------------------------------------------
    def check(self, spec, expect):
        got = self.eng.read(spec, 0, len(expect))
        assert got == bytes(expect), f"{spec} differs from the model"
        assert self.eng.info(spec).size == len(expect)

    def check_all(self):
        for name, v in self.vols.items():
            self.check(name, v["data"])
            for snap, data in v["snaps"].items():
                self.check(f"{name}@{snap}", data)
        for name, data in self.images.items():
            self.check(name, data)
        assert sorted(i.name for i in self.eng.list()) == sorted([*self.vols, *self.images])

    def free_name(self, data):
        return data.draw(st.sampled_from(NAMES))

    # -- rules --------------------------------------------------------------------------
    @rule(data=st.data(), size=sizes(), osize=st.sampled_from([K64, 2 * K64, 4 << 20]))
    def create(self, data, size, osize):
        name = self.free_name(data)
        if name in self.vols:
            with pytest.raises(Exists):
                self.eng.create(name, size, osize)
            return
        self.eng.create(name, size, osize)
        self.vols[name] = {"data": bytearray(size), "snaps": {}}

    def _write(self, data, name, value):
        buf = self.vols[name]["data"]
        off = data.draw(st.integers(0, len(buf) - 1))
        length = data.draw(st.integers(1, min(len(buf) - off, 300000)))
        payload = bytes([value]) * length
        self.eng.write(name, off, payload)
        buf[off:off + length] = payload
        assert self.eng.read(name, off, length) == payload

    @precondition(lambda self: self.vols)
    @rule(data=st.data(), values=st.lists(st.integers(1, 255), min_size=1, max_size=6))
    def write(self, data, values):
        name = data.draw(st.sampled_from(sorted(self.vols)))
        for value in values:
            self._write(data, name, value)

    # Writes are what the map is about: make them (and write-after-snapshot) frequent.
    write_more = write

    @precondition(lambda self: self.vols)
    @rule(data=st.data(), values=st.lists(st.integers(1, 255), min_size=1, max_size=4))
    def snapshot_and_write(self, data, values):
        name = data.draw(st.sampled_from(sorted(self.vols)))
        v = self.vols[name]
        snap = next((s for s in SNAPS if s not in v["snaps"]), None)
        if snap is not None:
            self.eng.snapshot(name, snap)
            v["snaps"][snap] = bytes(v["data"])
        for value in values:
            self._write(data, name, value)

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def snapshot(self, data):
        name = data.draw(st.sampled_from(sorted(self.vols)))
        snap = data.draw(st.sampled_from(SNAPS))
        v = self.vols[name]
        if snap in v["snaps"]:
            with pytest.raises(Exists):
                self.eng.snapshot(name, snap)
            return
        self.eng.snapshot(name, snap)
        v["snaps"][snap] = bytes(v["data"])

    def _snapshots(self):
        return sorted((n, s) for n, v in self.vols.items() for s in v["snaps"])

    @precondition(lambda self: any(v["snaps"] for v in self.vols.values()))
    @rule(data=st.data(), grow=st.sampled_from([0, 0, 512, 3 * K64, 600 * K64]))
    def clone(self, data, grow):
        vol, snap = data.draw(st.sampled_from(self._snapshots()))
        name = self.free_name(data)
        src = self.vols[vol]["snaps"][snap]
        if name in self.vols:
            with pytest.raises(Exists):
                self.eng.clone(f"{vol}@{snap}", name)
            return
        self.eng.clone(f"{vol}@{snap}", name, size=len(src) + grow if grow else None)
        self.vols[name] = {"data": bytearray(src) + bytearray(grow), "snaps": {}}

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def clone_writable_rejected(self, data):
        vol = data.draw(st.sampled_from(sorted(self.vols)))
        with pytest.raises(InvalidArgument):
            self.eng.clone(vol, "zz")

    @precondition(lambda self: self.vols)
    @rule(data=st.data(), size=sizes())
    def resize(self, data, size):
        name = data.draw(st.sampled_from(sorted(self.vols)))
        self.eng.resize(name, size)
        buf = self.vols[name]["data"]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def rename(self, data):
        old = data.draw(st.sampled_from(sorted(self.vols)))
        new = self.free_name(data)
        if new in self.vols:
            with pytest.raises(Exists):
                self.eng.rename(old, new)
            return
        self.eng.rename(old, new)
        self.vols[new] = self.vols.pop(old)
        with pytest.raises(NotFound):
            self.eng.info(old)

    @precondition(lambda self: any(v["snaps"] for v in self.vols.values()))
    @rule(data=st.data())
    def remove_snapshot(self, data):
        vol, snap = data.draw(st.sampled_from(self._snapshots()))
        self.eng.remove(f"{vol}@{snap}")
        del self.vols[vol]["snaps"][snap]
        with pytest.raises(NotFound):
            self.eng.read(f"{vol}@{snap}", 0, 1)

    @precondition(lambda self: self.vols)
    @rule(data=st.data())
    def remove_volume(self, data):
        name = data.draw(st.sampled_from(sorted(self.vols)))
        if self.vols[name]["snaps"]:
            with pytest.raises(Busy):
                self.eng.remove(name)
            return
        self.eng.remove(name)
        del self.vols[name]
        with pytest.raises(NotFound):
            self.eng.read(name, 0, 1)

    @precondition(lambda self: any(v["snaps"] for v in self.vols.values()))
    @rule(data=st.data())
    def hash_snapshot(self, data):
        vol, snap = data.draw(st.sampled_from(self._snapshots()))
        image = self.eng.hash(f"{vol}@{snap}")
        content = self.vols[vol]["snaps"][snap]
        assert self.images.get(image, content) == content
        self.images[image] = content
        assert self.eng.hash(image) == image

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    def clone_image(self, data):
        image = data.draw(st.sampled_from(sorted(self.images)))
        name = self.free_name(data)
        if name in self.vols:
            return
        self.eng.clone(image, name)
        self.vols[name] = {"data": bytearray(self.images[image]), "snaps": {}}

    @precondition(lambda self: self.images)
    @rule(data=st.data())
    def remove_image(self, data):
        image = data.draw(st.sampled_from(sorted(self.images)))
        self.eng.remove(image)
        del self.images[image]

    @precondition(lambda self: len(self.vols) >= 2)
    @rule()
    def gc(self):
        self.eng.gc()
        self.check_all()

    @precondition(lambda self: any(v["snaps"] for v in self.vols.values()))
    @rule(data=st.data())
    def diff_covers_changes(self, data):
        vol, snap = data.draw(st.sampled_from(self._snapshots()))
        old, new = self.vols[vol]["snaps"][snap], self.vols[vol]["data"]
        ranges = self.eng.diff(f"{vol}@{snap}", vol)
        covered = bytearray(len(new))
        for off, length in ranges:
            assert 0 <= off and off + length <= len(new)
            covered[off:off + length] = b"\1" * length
        n = min(len(old), len(new))
        a, b = bytes(old[:n]), bytes(new[:n])
        if a != b:
            for i in range(n):
                if a[i] != b[i]:
                    assert covered[i], f"diff misses byte {i} of {vol}"
        assert not any(new[len(old):]) or any(covered[len(old):])

    @invariant()
    def leases_held_only_by_us(self):
        for name in self.vols:
            owner = self.eng.info(name).lock_owner
            assert owner in (None, "model:1")


VolumeModel.TestCase.settings = settings(
    max_examples=45, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestVolumeModel = VolumeModel.TestCase


class FileVolumeModel(VolumeModel):
    """The same model over FileStore (without fsync: the logic, not the disk)."""

    def __init__(self):
        import tempfile
        self._tmp = tempfile.TemporaryDirectory(prefix="volmodel-")
        self.store_factory = lambda: FileStore(self._tmp.name, durable=False)
        super().__init__()

    def teardown(self):
        try:
            super().teardown()
        finally:
            self._tmp.cleanup()


FileVolumeModel.TestCase.settings = settings(
    max_examples=10, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestFileVolumeModel = FileVolumeModel.TestCase
