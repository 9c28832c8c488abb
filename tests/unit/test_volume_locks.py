"""Volume locks as leases with two engines (two owners) on one store: writes wait,
metadata operations fail with a clear message, force-break fences the old holder."""
import threading
import time

import pytest

from archipelago.errors import Busy, Fenced, Timeout
from archipelago.store.file import FileStore
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

M = 1 << 20


@pytest.fixture(params=["memory", "file"])
def stores(request, tmp_path):
    """Two handles on one store (as two hosts would have)."""
    if request.param == "memory":
        s = MemoryStore()
        yield s, s
    else:
        a, b = FileStore(tmp_path / "s"), FileStore(tmp_path / "s")
        yield a, b
        a.close()
        b.close()


@pytest.fixture
def engines(stores):
    a = VolumeEngine(stores[0], owner="host-a:mapperd", lease_ttl=5)
    b = VolumeEngine(stores[1], owner="host-b:mapperd", lease_ttl=5, write_wait=0.5)
    a.create("vol", 16 * M)
    yield a, b
    a.shutdown()
    b.shutdown()


def test_open_records_owner_and_generation(engines):
    a, b = engines
    a.open("vol")
    info = b.info("vol")
    assert info.lock_owner == "host-a:mapperd" and info.lock_generation >= 1
    a.open("vol")                      # idempotent for the owner
    assert b.info("vol").lock_generation == info.lock_generation


def test_second_host_write_waits_then_times_out(engines):
    a, b = engines
    a.write("vol", 0, b"a")
    with pytest.raises(Timeout):
        b.write("vol", 0, b"b")
    assert a.read("vol", 0, 1) == b"a"


def test_second_writer_proceeds_after_release(engines):
    a, b = engines
    b.write_wait = 30
    a.write("vol", 0, b"a")
    done = []
    t = threading.Thread(target=lambda: done.append(b.write("vol", 0, b"b")))
    t.start()
    time.sleep(0.3)
    assert not done                     # waiting for host a
    a.close("vol")
    t.join(30)
    assert done and a.read("vol", 0, 1) == b"b"
    assert a.info("vol").lock_owner == "host-b:mapperd"


def test_reads_are_best_effort(engines):
    a, b = engines
    a.write("vol", 0, b"data")
    assert b.read("vol", 0, 4) == b"data"
    assert b.map_read("vol", 0, 4)[1][0].obj


@pytest.mark.parametrize("op", ["snapshot", "remove", "resize", "rename", "open", "lock"])
def test_metadata_ops_fail_when_locked_elsewhere(engines, op):
    a, b = engines
    a.lock("vol")
    call = {"snapshot": lambda: b.snapshot("vol", "s"), "remove": lambda: b.remove("vol"),
            "resize": lambda: b.resize("vol", 32 * M), "rename": lambda: b.rename("vol", "x"),
            "open": lambda: b.open("vol"), "lock": lambda: b.lock("vol")}[op]
    with pytest.raises(Busy, match="locked by host-a:mapperd"):
        call()
    assert a.info("vol").snapshots == [] and a.info("vol").size == 16 * M


def test_metadata_op_releases_temporary_lock(engines):
    a, b = engines
    b.snapshot("vol", "s")
    assert a.info("vol").lock_owner is None
    a.snapshot("vol", "t")


def test_unlock_by_other_needs_force(engines):
    a, b = engines
    a.lock("vol")
    with pytest.raises(Busy):
        b.unlock("vol")
    b.unlock("vol", force=True)
    assert b.info("vol").lock_owner is None
    b.write("vol", 0, b"b")
    # The old holder is fenced: it must not write over host b.
    with pytest.raises(Fenced):
        a.write("vol", 0, b"a")
    assert b.read("vol", 0, 1) == b"b"
    assert a.read("vol", 0, 1) == b"b"       # a forgot its stale map
    b.snapshot("vol", "after")
    b.write("vol", 0, b"c")
    assert a.read("vol", 0, 1) == b"c" and a.read("vol@after", 0, 1) == b"b"


def test_unlock_idempotent_for_owner(engines):
    a, _ = engines
    a.lock("vol")
    a.unlock("vol")
    a.unlock("vol")
    a.close("vol")
    assert a.info("vol").lock_owner is None


def test_lease_renewed_while_held(stores):
    a = VolumeEngine(stores[0], owner="a:1", lease_ttl=0.6)
    b = VolumeEngine(stores[1], owner="b:1", lease_ttl=0.6, write_wait=0.1)
    try:
        a.create("v", 8 * M)
        a.write("v", 0, b"x")
        time.sleep(1.5)                 # several TTLs: renewal keeps it
        with pytest.raises((Busy, Timeout)):
            b.write("v", 0, b"y")
        a.write("v", 0, b"z")
    finally:
        a.shutdown()
        b.shutdown()


def test_dead_holder_lease_expires(stores):
    a = VolumeEngine(stores[0], owner="a:1", lease_ttl=0.5)
    b = VolumeEngine(stores[1], owner="b:1", lease_ttl=5, write_wait=10)
    a.create("v", 8 * M)
    a.write("v", 0, b"x")
    a.locks._stop.set()                 # a "dies": no more renewals
    time.sleep(0.3)
    b.write("v", 0, b"y")               # waits for the expiry, then takes over
    assert b.read("v", 0, 1) == b"y"
    with pytest.raises(Fenced):
        a.write("v", 0, b"z")
    b.shutdown()


def test_create_same_name_race(stores):
    a = VolumeEngine(stores[0], owner="a:1")
    b = VolumeEngine(stores[1], owner="b:1")
    results = []

    def make(e):
        try:
            e.create("race", 8 * M)
            results.append("ok")
        except Exception as err:
            results.append(type(err).__name__)
    ts = [threading.Thread(target=make, args=(e,)) for e in (a, b, a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results.count("ok") == 1 and results.count("Exists") == 3
    a.shutdown()
    b.shutdown()


def test_migration_handover_with_version(engines):
    a, b = engines
    a.write("vol", 0, b"src")
    seen = b.info("vol").lock_generation         # inquire
    a.close("vol")                               # the source releases
    b.lock("vol", version=seen)                  # the target takes exactly that one
    assert a.info("vol").lock_owner == "host-b:mapperd"
    b.close("vol")
    a.lock("vol")                                # a third party slipped in
    a.close("vol")
    with pytest.raises(Busy, match="generation"):
        b.lock("vol", version=seen)


def test_map_read_says_held_only_while_the_lease_is_ours(engines):
    """vlmcd keeps read mappings only from a MAPR answered holding the lease: a
    lease broken by another host must show at once, not at the next renewal."""
    a, b = engines
    a.write("vol", 0, b"a")
    assert a.map_read_held("vol", 0, 4096)[2] is True
    assert a.map_read_held("vol", 0, 4096)[1] == a.map_read("vol", 0, 4096)[1]
    a.snapshot("vol", "s")
    assert a.map_read_held("vol@s", 0, 4096)[2] is False    # snapshots: never kept
    assert b.map_read_held("vol", 0, 4096)[2] is False      # b does not hold it
    b.unlock("vol", force=True)
    b.write("vol", 0, b"b")
    assert a.map_read_held("vol", 0, 4096)[2] is False
