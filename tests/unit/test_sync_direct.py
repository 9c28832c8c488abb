"""Sync with the data store opened in-process (Client.direct_store): the sender reads a
snapshot's object files, the commit writes the prepared objects, both on a FileStore."""
import importlib
import io
import random

import pytest

from archipelago import client, sync
from archipelago.client import Volume
from archipelago.errors import NotFound
from archipelago.store.file import FileStore
from archipelago.sync import format as F
from archipelago.sync import sink as K

S = importlib.import_module("archipelago.sync.send")   # sync.send is also the function

MiB = 1 << 20
K64 = 64 << 10
SIZE = 16 * MiB


def node(root, direct):
    """An in-process node on FileStores under `root`; with `direct`, its Client opens
    the data store a second time for the in-process path, as connect() does."""
    c = client.local(FileStore(root / "blocks"), FileStore(root / "maps"))
    if direct:
        c._direct_open = lambda: FileStore(root / "blocks")
    return c


def stream(c, spec, **kw):
    out = io.BytesIO()
    stats = sync.send(c, spec, out, **kw)
    return out.getvalue(), stats


def records(raw):
    """(type, offset, length, payload) of the D and Z records."""
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    out = []
    while True:
        rec = r.next()
        if rec.type == F.END:
            return out
        if rec.type in (F.DATA, F.ZERO):
            out.append((rec.type, rec.offset, rec.length, bytes(rec.payload)))


def read(c, spec):
    with c.volume(spec, readonly=True) as v:
        return v.pread(v.size, 0)


def source(c):
    """v@s1, then scattered 64 KiB writes, a zeroed run and an overlay, v@s2."""
    rng = random.Random(7)
    c.create("v", SIZE)
    with c.volume("v") as v:
        v.pwrite(rng.randbytes(6 * MiB), MiB)
        v.flush()
    c.snapshot("v", "s1")
    with c.volume("v") as v:
        for i in rng.sample(range(SIZE // K64), 40):
            v.pwrite(rng.randbytes(K64), i * K64)
        v.pwrite(bytes(2 * K64), 2 * MiB)
        v.pwrite(rng.randbytes(3 * K64 + 100), 5 * MiB + 7)
        v.flush()
    c.snapshot("v", "s2")


@pytest.fixture
def counted(monkeypatch):
    """How often the in-process read and write paths ran."""
    n = {"read": 0, "write": 0}
    read0, cached0, write0 = S._Direct.readinto, S._Direct.read_cached, K._write_extents

    def readinto(self, buf, off):
        n["read"] += 1
        return read0(self, buf, off)

    def read_cached(self, buf, off):
        done = cached0(self, buf, off)
        n["read"] += done
        return done

    def write_extents(store, extents, data):
        n["write"] += 1
        return write0(store, extents, data)

    monkeypatch.setattr(S._Direct, "readinto", readinto)
    monkeypatch.setattr(S._Direct, "read_cached", read_cached)
    monkeypatch.setattr(K, "_write_extents", write_extents)
    return n


def test_direct_send_sends_the_same_records(tmp_path, counted):
    a = node(tmp_path / "a", direct=True)
    source(a)
    raw_direct, st_direct = stream(a, "v@s2", from_snap="s1")
    assert counted["read"] > 0
    a._direct.close()
    a._direct, a._direct_open = None, None        # the peers path from here on
    n = counted["read"]
    raw_peers, st_peers = stream(a, "v@s2", from_snap="s1")
    assert counted["read"] == n
    assert records(raw_direct) == records(raw_peers)
    for k in ("records", "data_bytes", "zero_bytes"):     # (the header's time varies)
        assert st_direct[k] == st_peers[k]
    full_direct = node(tmp_path / "a", direct=True)
    raw_full, _ = stream(full_direct, "v@s2")
    assert records(raw_full) == records(stream(a, "v@s2")[0])
    a.close()
    full_direct.close()


def test_reads_not_in_the_page_cache_go_to_the_pool(tmp_path, monkeypatch):
    """Every other piece "not cached": those go through the pool's readinto, and the
    records are the same as an all-cached send's."""
    a = node(tmp_path / "a", direct=True)
    source(a)
    all_cached, _ = stream(a, "v@s2", from_snap="s1")
    calls = {"cached": 0, "pool": 0}
    cached0, read0 = FileStore.readinto_cached, S._Direct.readinto

    def flaky(self, name, offset, buf):
        calls["cached"] += 1
        return calls["cached"] % 2 == 0 and cached0(self, name, offset, buf)

    def pool_read(self, buf, off):
        calls["pool"] += 1
        return read0(self, buf, off)
    monkeypatch.setattr(FileStore, "readinto_cached", flaky)
    monkeypatch.setattr(S._Direct, "readinto", pool_read)
    mixed, _ = stream(a, "v@s2", from_snap="s1")
    assert calls["pool"] > 0 and calls["cached"] > calls["pool"]
    assert records(mixed) == records(all_cached)
    a.close()


def test_direct_commit_writes_the_same_volume(tmp_path, counted):
    a, b = node(tmp_path / "a", direct=True), node(tmp_path / "b", direct=True)
    source(a)
    sync.receive(b, "v", io.BytesIO(stream(a, "v@s1")[0]), state_dir=str(tmp_path / "st"))
    raw, _ = stream(a, "v@s2", from_snap="s1")
    res = sync.receive(b, "v", io.BytesIO(raw), state_dir=str(tmp_path / "st"))
    assert res["snapshot"] == "s2" and counted["write"] > 0
    assert read(b, "v@s2") == read(a, "v@s2") == read(b, "v")
    # what the commit wrote in-process reads the same through a fresh stack
    b.close()
    again = node(tmp_path / "b", direct=False)
    assert read(again, "v@s2") == read(a, "v@s2")
    again.close()
    a.close()


def test_snapshot_removed_while_sent_fails_the_send(tmp_path, monkeypatch):
    a = node(tmp_path / "a", direct=True)
    source(a)
    map0 = Volume.map_extents

    def map_then_remove(self, ranges):
        got = map0(self, ranges)
        a.remove("v@s2")
        return got

    monkeypatch.setattr(Volume, "map_extents", map_then_remove)
    with pytest.raises(NotFound):
        stream(a, "v@s2", from_snap="s1")
    a.close()


def test_no_direct_store_for_other_stores(tmp_path):
    from archipelago.store.memory import MemoryStore
    c = client.local(MemoryStore())
    assert c.direct_store() is None
    c.close()


def _roles(text=""):
    from archipelago import config as C
    from archipelago.peers import config as PC
    _xseg, roles = PC.check(C.from_text(text))
    return roles, PC.find_type(roles, "vlmcd")


def test_direct_store_only_on_an_own_filed_store(run_dir, monkeypatch):
    roles, vlmcd = _roles()
    blocks = run_dir / "state" / "blocks"
    assert client._direct_store(roles, vlmcd) is None        # no store on this machine
    FileStore(blocks).close()                                # the blocker made it
    s = client._direct_store(roles, vlmcd)
    assert isinstance(s, FileStore) and s.root == str(blocks)
    s.close()
    monkeypatch.setenv(client.DIRECT_ENV, "0")
    assert client._direct_store(roles, vlmcd) is None
    monkeypatch.delenv(client.DIRECT_ENV)
    monkeypatch.setattr(client.os, "geteuid", lambda: 12345)  # the peers' user is another
    assert client._direct_store(roles, vlmcd) is None


def test_direct_store_never_on_memd(run_dir):
    roles, vlmcd = _roles("[blockerb]\ntype = memd\n")
    assert client._direct_store(roles, vlmcd) is None
