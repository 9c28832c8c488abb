"""The ObjectStore contract (store/base.py, API v1): every backend must pass it.

Use from a backend's test module:

    from store_contract import *        # noqa: F403

    @pytest.fixture
    def store(tmp_path):
        s = FileStore(tmp_path / "s"); yield s; s.close()

    @pytest.fixture                     # optional: a second handle on the *same*
    def store2(tmp_path, store): ...    # backing store (another process/client)

Without a `store2` override the suite uses `store` itself for the second party.
Tests are plain functions; nothing here depends on the backend's internals.
"""
import threading
import time

import pytest

from archipelago.errors import Busy, Fenced, InvalidArgument, NotFound, Timeout
from archipelago.store.base import Lease, ObjectStore, StoreInfo

BAD_NAMES = ["", "a/b", "../etc", "a\\b", "a b", "x" * 124, "caf\u00e9", "a\0b", "a\nb",
             "/abs", "%x", "#tmp", None, 7]
ODD_NAMES = [".", "..", ".hidden", "..x", "-lead", ":@", "a:b@c-1.2_3", "x" * 123, "UPPER", "0"]


@pytest.fixture
def store2(store):
    """A second handle on the same store; backends override it (another client)."""
    return store


# -- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_rejected(store, bad):
    calls = [
        lambda: store.read(bad, 0, 1), lambda: store.write(bad, 0, b"x"),
        lambda: store.get(bad), lambda: store.replace(bad, b"x"),
        lambda: store.put_if_absent(bad, b"x"), lambda: store.delete(bad),
        lambda: store.stat(bad), lambda: store.copy("ok", bad), lambda: store.copy(bad, "ok"),
        lambda: store.lease_acquire(bad, "me", 10), lambda: store.lease_inquire(bad),
        lambda: store.lease_break(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument):
            call()
    assert list(store.list()) == []


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_but_valid_names_are_plain_objects(store, name):
    store.write(name, 0, b"data")
    assert store.read(name, 0, 4) == b"data"
    store.replace(name, b"whole")
    assert store.get(name) == b"whole"
    assert name in set(store.list())
    assert set(store.list()) == {name}
    assert store.delete(name)


def test_interface_version(store):
    assert isinstance(store, ObjectStore)
    assert store.api_version == 1
    assert isinstance(store.kind, str) and store.kind


# -- data objects --------------------------------------------------------------------------
def test_missing_object_reads_zeros(store):
    assert store.read("nothing", 0, 4096) == bytes(4096)
    assert store.read("nothing", 1 << 30, 10) == bytes(10)
    assert store.stat("nothing") is None


def test_write_read_and_zero_fill(store):
    store.write("o", 100, b"hello")
    assert store.stat("o") == 105
    assert store.read("o", 0, 110) == bytes(100) + b"hello" + bytes(5)
    assert store.read("o", 102, 2) == b"ll"
    assert store.read("o", 5000, 3) == bytes(3)
    store.write("o", 101, b"EL")
    assert store.read("o", 100, 5) == b"hELlo"


def test_write_returns_and_accepts_buffers(store):
    store.write("b", 0, bytearray(b"abc"))
    store.write("b", 3, memoryview(b"def"))
    assert store.read("b", 0, 6) == b"abcdef"


def test_readinto_memoryview(store):
    store.write("r", 0, b"0123456789")
    buf = bytearray(b"\xff" * 16)
    store.readinto("r", 4, memoryview(buf)[2:10])
    assert bytes(buf) == b"\xff\xff456789" + bytes(2) + b"\xff" * 6


def test_large_sparse_object(store):
    store.write("big", 4 << 20, b"end")
    assert store.stat("big") == (4 << 20) + 3
    assert store.read("big", 0, 65536) == bytes(65536)
    assert store.read("big", (4 << 20) - 1, 5) == b"\0end\0"


def test_fua_and_flush(store):
    store.write("f", 0, b"a" * 4096, fua=True)
    store.write("f", 4096, b"b" * 4096)
    store.flush()
    store.flush()
    assert store.read("f", 0, 8192) == b"a" * 4096 + b"b" * 4096


def test_delete_idempotent(store):
    store.write("d", 0, b"x")
    assert store.delete("d") is True
    assert store.delete("d") is False
    assert store.stat("d") is None
    assert store.read("d", 0, 1) == b"\0"
    with pytest.raises(NotFound):
        store.get("d")
    store.write("d", 1, b"y")        # a deleted name can be created again
    assert store.read("d", 0, 2) == b"\0y"


def test_copy(store):
    store.write("src", 0, b"abc")
    store.write("src", 1 << 20, b"tail")
    store.copy("src", "dst")
    assert store.stat("dst") == store.stat("src")
    assert store.read("dst", 0, 3) == b"abc"
    assert store.read("dst", 1 << 20, 4) == b"tail"
    assert store.read("dst", 1000, 1000) == bytes(1000)
    store.write("dst", 0, b"X")              # independent afterwards
    assert store.read("src", 0, 1) == b"a"
    store.write("src", 1, b"Y")
    assert store.read("dst", 0, 3) == b"Xbc"


def test_copy_overwrites_and_missing_source(store):
    store.write("dst", 0, b"old content that is long")
    store.write("src", 0, b"new")
    store.copy("src", "dst")
    assert store.stat("dst") == 3
    assert store.read("dst", 0, 5) == b"new\0\0"
    store.copy("absent", "dst")
    assert store.stat("dst") == 0
    assert store.read("dst", 0, 3) == bytes(3)


def test_write_after_copy_over_cached_object(store):
    store.write("a", 0, b"aaaa")
    store.write("b", 0, b"bbbb")     # b is now open/cached in the backend
    store.copy("a", "b")
    store.write("b", 2, b"ZZ")
    assert store.read("b", 0, 4) == b"aaZZ"


# -- whole objects -------------------------------------------------------------------------
def test_get_replace(store):
    with pytest.raises(NotFound):
        store.get("m")
    store.replace("m", b"v1" * 1000)
    assert store.get("m") == b"v1" * 1000
    store.replace("m", b"v2")
    assert store.get("m") == b"v2"
    store.replace("m", b"")
    assert store.get("m") == b""
    assert store.stat("m") == 0


def test_replace_after_write_and_write_after_replace(store):
    store.write("w", 0, b"written")
    store.replace("w", b"replaced")
    assert store.read("w", 0, 8) == b"replaced"
    store.write("w", 0, b"R")
    assert store.get("w") == b"Replaced"


def test_put_if_absent(store):
    assert store.put_if_absent("h", b"first") is True
    assert store.put_if_absent("h", b"second") is False
    assert store.get("h") == b"first"
    assert store.delete("h")
    assert store.put_if_absent("h", b"third") is True
    assert store.get("h") == b"third"


def test_list_prefix(store):
    for n in ("map.a", "map.b", "obj.1", "obj.2", "mapx"):
        store.replace(n, b"x")
    assert sorted(store.list("map.")) == ["map.a", "map.b"]
    assert sorted(store.list("obj")) == ["obj.1", "obj.2"]
    assert sorted(store.list()) == ["map.a", "map.b", "mapx", "obj.1", "obj.2"]
    assert list(store.list("zzz")) == []
    store.delete("map.a")
    assert sorted(store.list("map")) == ["map.b", "mapx"]


def test_info(store):
    before = store.info()
    assert isinstance(before, StoreInfo)
    assert before.used >= 0 and before.free >= 0
    store.write("big", 0, b"\x5a" * (1 << 20))
    store.flush()
    assert store.info().used >= before.used + (1 << 19)


# -- threads -------------------------------------------------------------------------------
def _run_threads(target, n):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_writes(store):
    def worker(i):
        for j in range(20):
            store.write("shared", (i * 20 + j) * 512, bytes([i + 1]) * 512)
            store.write(f"own{i}", j * 10, bytes([j + 1]) * 10)
    _run_threads(worker, 8)
    for i in range(8):
        for j in range(20):
            assert store.read("shared", (i * 20 + j) * 512, 512) == bytes([i + 1]) * 512
        assert store.read(f"own{i}", 0, 200) == b"".join(bytes([j + 1]) * 10 for j in range(20))


def test_concurrent_put_if_absent_one_winner(store):
    wins = []
    _run_threads(lambda i: wins.append(store.put_if_absent("c", bytes([i]) * 100)), 8)
    assert wins.count(True) == 1
    data = store.get("c")
    assert len(data) == 100 and len(set(data)) == 1


def test_concurrent_replace_never_torn(store):
    store.replace("t", b"\0" * 65536)
    seen = []

    def worker(i):
        for _ in range(10):
            if i % 2:
                store.replace("t", bytes([i]) * 65536)
            else:
                seen.append(store.get("t"))
    _run_threads(worker, 6)
    for data in seen:
        assert len(data) == 65536 and len(set(data)) == 1


# -- leases --------------------------------------------------------------------------------
def test_lease_acquire_and_inquire(store):
    assert store.lease_inquire("vol") is None
    t0 = time.time()
    lease = store.lease_acquire("vol", "host-a:mapper", 30)
    assert isinstance(lease, Lease)
    assert (lease.name, lease.owner) == ("vol", "host-a:mapper")
    assert lease.generation >= 1
    assert t0 + 29 <= lease.expires <= time.time() + 31
    assert store.lease_inquire("vol") == lease


def test_lease_idempotent_for_owner(store):
    a = store.lease_acquire("vol", "a", 30)
    again = store.lease_acquire("vol", "a", 30)
    assert again.generation == a.generation and again.owner == "a"
    assert again.expires >= a.expires


def test_lease_busy_for_other_owner(store, store2):
    a = store.lease_acquire("vol", "a", 30)
    with pytest.raises(Busy) as exc:
        store2.lease_acquire("vol", "b", 30)
    assert not isinstance(exc.value, Fenced)
    assert "a" in str(exc.value)
    assert store2.lease_inquire("vol") == a


def test_lease_generation_increases(store, store2):
    a = store.lease_acquire("vol", "a", 30)
    store.lease_release(a)
    assert store.lease_inquire("vol") is None
    b = store2.lease_acquire("vol", "b", 30)
    assert b.generation > a.generation
    store2.lease_release(b)
    a2 = store.lease_acquire("vol", "a", 30)
    assert a2.generation > b.generation


def test_lease_release_idempotent_and_fenced(store, store2):
    a = store.lease_acquire("vol", "a", 30)
    store.lease_release(a)
    store.lease_release(a)                   # idempotent
    b = store2.lease_acquire("vol", "b", 30)
    with pytest.raises(Fenced):
        store.lease_release(a)               # someone else holds it now
    assert store.lease_inquire("vol") == b


def test_lease_renew(store, store2):
    a = store.lease_acquire("vol", "a", 5)
    r = store.lease_renew(a, 60)
    assert r.generation == a.generation and r.owner == "a"
    assert r.expires > a.expires
    store2.lease_break("vol")
    with pytest.raises(Fenced):
        store.lease_renew(r, 60)


def test_lease_break(store, store2):
    store.lease_break("vol")                 # idempotent on a free lease
    a = store.lease_acquire("vol", "a", 30)
    store2.lease_break("vol")
    store2.lease_break("vol")
    assert store.lease_inquire("vol") is None
    b = store2.lease_acquire("vol", "b", 30)
    assert b.generation > a.generation


def test_lease_expiry_lets_others_take_over(store, store2):
    a = store.lease_acquire("vol", "a", 0.2)
    time.sleep(0.4)
    b = store2.lease_acquire("vol", "b", 30)
    assert b.owner == "b" and b.generation > a.generation
    with pytest.raises(Fenced):
        store.lease_renew(a, 30)


def test_lease_ttl_zero_never_expires(store, store2):
    a = store.lease_acquire("vol", "a", 0)
    assert a.expires == 0
    with pytest.raises(Busy):
        store2.lease_acquire("vol", "b", 30)


def test_lease_wait_until_released(store, store2):
    a = store.lease_acquire("vol", "a", 30)
    got = []
    t = threading.Thread(target=lambda: got.append(
        store2.lease_acquire("vol", "b", 30, wait=True, timeout=30)))
    t.start()
    time.sleep(0.3)
    assert not got
    store.lease_release(a)
    t.join(30)
    assert got and got[0].owner == "b" and got[0].generation > a.generation


def test_lease_wait_timeout(store, store2):
    store.lease_acquire("vol", "a", 30)
    t0 = time.monotonic()
    with pytest.raises(Timeout):
        store2.lease_acquire("vol", "b", 30, wait=True, timeout=0.3)
    assert time.monotonic() - t0 < 10


def test_lease_version_handover(store, store2):
    a = store.lease_acquire("vol", "src", 30)
    seen = store2.lease_inquire("vol")               # inquire -> release -> acquire(version)
    store.lease_release(a)
    b = store2.lease_acquire("vol", "dst", 30, version=seen.generation)
    assert b.owner == "dst" and b.generation == a.generation + 1
    store2.lease_release(b)
    store.lease_acquire("vol", "third", 30)
    with pytest.raises(Busy):
        store2.lease_acquire("vol", "dst", 30, version=b.generation)


def test_lease_version_mismatch_is_busy(store):
    a = store.lease_acquire("vol", "a", 30)
    store.lease_release(a)
    with pytest.raises(Busy):
        store.lease_acquire("vol", "b", 30, version=a.generation + 5)


def test_leases_are_independent(store):
    store.lease_acquire("v1", "a", 30)
    b = store.lease_acquire("v2", "b", 30)
    assert b.owner == "b"
    assert list(store.list()) == []           # leases are not objects


# -- fencing -------------------------------------------------------------------------------
def test_mutations_with_current_lease(store):
    lease = store.lease_acquire("vol", "a", 30)
    store.write("obj", 0, b"data", lease=lease)
    store.replace("map", b"m1", lease=lease)
    store.copy("obj", "obj2", lease=lease)
    assert store.delete("obj2", lease=lease)
    assert store.read("obj", 0, 4) == b"data" and store.get("map") == b"m1"


def test_stale_lease_is_fenced(store, store2):
    old = store.lease_acquire("vol", "a", 30)
    store.write("obj", 0, b"old", lease=old)
    store.replace("map", b"old", lease=old)
    store2.lease_break("vol")
    new = store2.lease_acquire("vol", "b", 30)
    for call in (lambda: store.write("obj", 0, b"BAD", lease=old),
                 lambda: store.write("obj", 0, b"BAD", fua=True, lease=old),
                 lambda: store.replace("map", b"BAD", lease=old),
                 lambda: store.copy("obj", "map", lease=old),
                 lambda: store.delete("obj", lease=old)):
        with pytest.raises(Fenced):
            call()
    assert store2.read("obj", 0, 3) == b"old"
    assert store2.get("map") == b"old"
    store2.write("obj", 0, b"new", lease=new)
    assert store.read("obj", 0, 3) == b"new"


def test_released_lease_is_fenced(store):
    lease = store.lease_acquire("vol", "a", 30)
    store.lease_release(lease)
    with pytest.raises(Fenced):
        store.replace("map", b"x", lease=lease)
    with pytest.raises(NotFound):
        store.get("map")


def test_expired_and_taken_lease_is_fenced(store, store2):
    old = store.lease_acquire("vol", "a", 0.2)
    time.sleep(0.4)
    store2.lease_acquire("vol", "b", 30)
    with pytest.raises(Fenced):
        store.write("obj", 0, b"late", lease=old)
    assert store.stat("obj") is None


__all__ = ["store2"] + [n for n in dir() if n.startswith("test_")]
