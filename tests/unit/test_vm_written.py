"""What a replica's sync sends (archipelago_vm.replica.written): only what the VM
wrote since the base, never the chunks the copy fetched from the NAS; the record
is durable (a restarted vmd sends the same) and every write lands in exactly one
interval, also when it races with the snapshot."""
import io
import os
import threading

import pytest

from archipelago.store.memory import MemoryStore
from archipelago.sync.send import send
from archipelago.volume import VolumeEngine
from archipelago_vm.replica import written
from archipelago_vm.replica.fetch import Fetcher, ReplicaBackend
from archipelago_vm.replica.service import ReplicaClient

KiB, MiB = 1 << 10, 1 << 20
CHUNK = 256 * KiB
SIZE = 8 * MiB


class Replica:
    """A replica as the vmd builds it, over a memory engine and a fake NAS."""

    def __init__(self, root, nas_data, eng=None):
        self.root = str(root)
        self.eng = eng or VolumeEngine(MemoryStore())
        if eng is None:
            self.eng.create("r", SIZE)
            self.eng.snapshot("r", "base")
        self.since = "base"
        self.open(nas_data)

    def open(self, nas_data):
        self.fetcher = Fetcher(self.eng, "r", "nbd://nas/r", os.path.join(self.root, "p"),
                               SIZE, CHUNK, paused=True)
        self.fetcher._read_remote = lambda off, n: nas_data[off:off + n]
        self.tracker = written.WriteTracker(self.root, "r", SIZE, self.since)
        self.be = ReplicaBackend(self.eng, "r", self.fetcher, writes=self.tracker)
        self.client = ReplicaClient(self.eng, lambda v, s, r: self.tracker.clip(s, r))

    def close(self):
        self.fetcher.stop()
        self.tracker.close()

    def snapshot(self, snap):
        with self.tracker.rotating(snap):
            self.eng.snapshot("r", snap)
            self.since = snap

    def send(self, snap, base):
        return send(self.client, f"r@{snap}", io.BytesIO(), from_snap=base)


@pytest.fixture
def nas_data():
    return os.urandom(SIZE)


def test_fetched_chunks_are_not_sent_back(tmp_path, nas_data):
    r = Replica(tmp_path, nas_data)
    buf = bytearray(SIZE)
    r.be.pread(buf, 0)                                # everything fetched
    assert bytes(buf) == nas_data and r.fetcher.done
    r.be.pwrite(memoryview(os.urandom(128 * KiB)), 3 * MiB)
    r.be.pwrite(memoryview(os.urandom(64 * KiB)), 5 * MiB + 64 * KiB)
    r.snapshot("s1")
    stats = r.send("s1", "base")
    assert stats["data_bytes"] == 192 * KiB
    # the next interval starts empty: a write after s1 goes with the next sync only
    r.be.pwrite(memoryview(os.urandom(4 * KiB)), 7 * MiB)
    r.snapshot("s2")
    assert r.send("s2", "s1")["data_bytes"] == written.GRAIN
    r.close()


def test_the_record_survives_a_restart(tmp_path, nas_data):
    r = Replica(tmp_path, nas_data)
    r.be.pread(bytearray(SIZE), 0)
    r.be.pwrite(memoryview(os.urandom(64 * KiB)), MiB)
    r.close()                                         # vmd stops; files stay
    r2 = Replica(tmp_path, nas_data, eng=r.eng)
    r2.be.pwrite(memoryview(os.urandom(64 * KiB)), 2 * MiB)
    r2.snapshot("s1")
    assert r2.send("s1", "base")["data_bytes"] == 128 * KiB
    r2.close()


def test_a_crash_makes_the_interval_send_the_whole_diff(tmp_path, nas_data):
    """The record is not fsynced per write: after a crash (no clean close) it may
    miss grains whose data reached the disk, so that interval sends everything."""
    r = Replica(tmp_path, nas_data)
    r.be.pread(bytearray(SIZE), 0)
    r.be.pwrite(memoryview(os.urandom(64 * KiB)), MiB)
    r.fetcher.stop()                                  # kill -9: the log stays OPEN
    r2 = Replica(tmp_path, nas_data, eng=r.eng)
    r2.snapshot("s1")
    assert r2.send("s1", "base")["data_bytes"] == SIZE
    r2.be.pwrite(memoryview(os.urandom(4 * KiB)), 0)  # the next interval is exact again
    r2.snapshot("s2")
    assert r2.send("s2", "s1")["data_bytes"] == written.GRAIN
    r2.close()


def test_no_record_sends_the_whole_diff(tmp_path, nas_data):
    r = Replica(tmp_path, nas_data)
    r.be.pread(bytearray(SIZE), 0)
    r.snapshot("s1")
    os.unlink(written.log_path(r.root, "r", "base"))   # a replica of an older vmd
    assert r.send("s1", "base")["data_bytes"] == SIZE
    r.close()


def test_a_write_racing_the_snapshot_is_in_exactly_one_interval(tmp_path, nas_data):
    r = Replica(tmp_path, nas_data)
    r.be.pread(bytearray(SIZE), 0)
    stop = threading.Event()
    offsets = [i * written.GRAIN for i in range(0, SIZE // written.GRAIN, 3)]

    def writer():
        for off in offsets:
            r.be.pwrite(memoryview(b"w" * 4096), off)
        stop.set()
    t = threading.Thread(target=writer)
    t.start()
    r.snapshot("s1")
    t.join(timeout=60)
    r.snapshot("s2")
    first = {o for o, _ in r.client.diff("r@base", "r@s1")}
    second = {o for o, _ in r.client.diff("r@s1", "r@s2")}
    # every write is sent exactly once, and no fetched chunk at all
    covered = sorted(
        g * written.GRAIN for o, n in r.client.diff("r@base", "r@s1") +
        r.client.diff("r@s1", "r@s2") for g in range(o // written.GRAIN,
                                                     (o + n - 1) // written.GRAIN + 1))
    assert covered == offsets
    assert not first & second
    r.close()


def test_log_file_is_checked(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError):
        written.WriteLog(str(p), SIZE)
