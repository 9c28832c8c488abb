"""Applying a spool at commit (sink.apply_spool): groups of records prepared with
one group commit, written many at a time, every record verified again (a spool
damaged on disk fails the commit instead of writing garbage)."""
import io
import random

import pytest

from archipelago.store.memory import MemoryStore
from archipelago.sync import format as F
from archipelago.sync import sink
from archipelago.sync.local import EngineClient
from archipelago.volume import VolumeEngine

K = 1024
OSIZE = 256 * K
SIZE = 64 * OSIZE


def spool(tmp_path, records):
    """A spool file of `records` [(type, offset, length, payload)] as SpoolSink
    writes it; returns (path, size)."""
    buf = io.BytesIO()
    w = F.Writer(buf)
    w.begin({"format": 1})
    for rtype, off, n, payload in records:
        if rtype == F.DATA:
            w.data(off, payload)
        else:
            w.zero(off, n)
    r = F.Reader(io.BytesIO(buf.getvalue()))
    r.preamble()
    r.next()
    path = str(tmp_path / "recv-v.spool")
    s = sink.SpoolSink(path, 0)
    for _ in records:
        s.put(r.next())
    size = s.sync()["spool_size"]
    s.close()
    return path, size


@pytest.fixture
def vol():
    eng = VolumeEngine(MemoryStore(), owner="t:1", lease_ttl=0)
    data = random.Random(1).randbytes(SIZE)
    eng.create("v", SIZE, object_size=OSIZE)
    eng.write("v", 0, data)
    eng.snapshot("v", "s1")
    return eng, data


def records(seed=2, n=50):
    rng = random.Random(seed)
    # Records of a stream ascend and never overlap (the zero run comes last).
    slots = sorted(rng.sample(range((SIZE - 3 * OSIZE) // (64 * K)), n))
    out = [(F.DATA, i * 64 * K, 64 * K, rng.randbytes(64 * K)) for i in slots]
    out.append((F.ZERO, SIZE - 3 * OSIZE, 3 * OSIZE, b""))
    return out


def expect(data, recs):
    ref = bytearray(data)
    for rtype, off, n, payload in recs:
        ref[off:off + n] = payload if rtype == F.DATA else bytes(n)
    return bytes(ref)


def test_apply_spool_in_groups(tmp_path, vol, monkeypatch):
    eng, data = vol
    recs = records()
    path, size = spool(tmp_path, recs)
    monkeypatch.setattr(sink, "GROUP_RANGES", 7)          # several groups
    v = EngineClient(eng).volume("v")
    prepared = []
    real = v.prepare
    v.prepare = lambda ranges, whole=False: prepared.append((ranges, whole)) or \
        real(ranges, whole)
    times = sink.apply_spool(path, size, v)
    assert eng.read("v", 0, SIZE) == expect(data, recs)
    assert eng.read("v@s1", 0, SIZE) == data
    assert len(prepared) > 5 and all(whole for _, whole in prepared)
    assert {"verify", "map", "write", "flush"} <= set(times)


def test_damaged_spool_fails_the_commit(tmp_path, vol):
    eng, data = vol
    recs = records(3, 10)
    path, size = spool(tmp_path, recs)
    with open(path, "r+b") as f:          # flip a byte in the 5th record's payload
        f.seek(12 + 5 * (48 + 64 * K) - 100)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(F.StreamCorrupt, match="checksum"):
        sink.apply_spool(path, size, EngineClient(eng).volume("v"))
    # The damaged record's group was checked before its map changed: untouched.
    assert eng.read("v", 0, SIZE) == data
    assert eng.diff("v@s1", "v") == []
