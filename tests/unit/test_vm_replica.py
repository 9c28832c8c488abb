"""The compute node's copy-on-read replica (archipelago_vm.replica.fetch), against an
in-memory engine and a fake NAS: reads of chunks not yet copied return the NAS's
data, writes are never overwritten by the background copy, presence survives."""
import os

import pytest

from archipelago.nbd import proto
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine
from archipelago_vm.replica.fetch import Fetcher, ReplicaBackend

CHUNK = 64 << 10
SIZE = 16 * CHUNK


@pytest.fixture
def nas_data():
    data = bytearray(SIZE)
    data[3 * CHUNK + 100:3 * CHUNK + 5000] = os.urandom(4900)
    data[10 * CHUNK:12 * CHUNK] = os.urandom(2 * CHUNK)
    return bytes(data)


def make(tmp_path, nas_data, paused=True):
    eng = VolumeEngine(MemoryStore())
    eng.create("r", SIZE)
    f = Fetcher(eng, "r", "nbd://nas/r", str(tmp_path / "r.present"), SIZE, CHUNK,
                paused=paused)
    reads = []

    def remote(off, n):
        reads.append(off // CHUNK)
        return nas_data[off:off + n]
    f._read_remote = remote
    f._status_remote = lambda off, n: None        # a NAS without block status
    return eng, f, ReplicaBackend(eng, "r", f), reads


def test_reads_fetch_only_what_they_touch(tmp_path, nas_data):
    _eng, f, be, reads = make(tmp_path, nas_data)
    buf = bytearray(8192)
    be.pread(buf, 3 * CHUNK)
    assert bytes(buf) == nas_data[3 * CHUNK:3 * CHUNK + 8192]
    assert reads == [3] and f.progress()["fetched"] == CHUNK
    be.pread(buf, 3 * CHUNK + 4096)             # already local: no second fetch
    assert reads == [3]
    big = bytearray(3 * CHUNK)
    be.pread(big, 9 * CHUNK + 10)
    assert bytes(big) == nas_data[9 * CHUNK + 10:12 * CHUNK + 10]
    f.stop()


def test_writes_survive_the_background_copy(tmp_path, nas_data):
    eng, f, be, reads = make(tmp_path, nas_data)
    mine = os.urandom(1000)
    be.pwrite(memoryview(mine), 10 * CHUNK + 50)      # partial chunk: fetched first
    f.paused.clear()
    f.start()
    f.thread.join(timeout=30)
    assert f.done
    want = bytearray(nas_data)
    want[10 * CHUNK + 50:10 * CHUNK + 1050] = mine
    assert eng.read("r", 0, SIZE) == bytes(want)
    assert reads.count(10) == 1
    f.stop()


def test_presence_is_durable(tmp_path, nas_data):
    eng, f, be, _reads = make(tmp_path, nas_data)
    be.pread(bytearray(10), 5 * CHUNK)
    f.stop()
    f2 = Fetcher(eng, "r", "nbd://nas/r", str(tmp_path / "r.present"), SIZE, CHUNK,
                 paused=True)
    assert 5 in f2.present and f2.present.count == 1
    f2.stop()


def nas_status(data, calls):
    """A NAS answering base:allocation per CHUNK: all-zero chunks are holes."""
    def status(off, n):
        calls.append((off, n))
        out = []
        for pos in range(off, off + n, CHUNK):
            k = min(CHUNK, off + n - pos)
            zero = data[pos:pos + k] == bytes(k)
            flags = proto.STATE_HOLE | proto.STATE_ZERO if zero else 0
            if out and out[-1][1] == flags:
                out[-1] = (out[-1][0] + k, flags)
            else:
                out.append((k, flags))
        return out[:2]                  # a server may describe less than asked
    return status


def test_background_copy_skips_the_nas_holes(tmp_path, nas_data):
    eng, f, be, reads = make(tmp_path, nas_data)
    calls = []
    f._status_remote = nas_status(nas_data, calls)
    mine = os.urandom(100)
    be.pwrite(memoryview(mine), 6 * CHUNK)            # a hole the VM writes first
    assert reads == [6]
    f.paused.clear()
    f.start()
    f.thread.join(timeout=30)
    assert f.done and calls
    assert sorted(reads) == [3, 6, 10, 11]            # only chunks with data, and 6
    p = f.progress()
    assert p["read"] == 4 * CHUNK and p["skipped"] == 12 * CHUNK
    assert p["fetched"] == SIZE and p["percent"] == 100.0
    want = bytearray(nas_data)
    want[6 * CHUNK:6 * CHUNK + 100] = mine
    assert eng.read("r", 0, SIZE) == bytes(want)
    f.stop()
    f2 = Fetcher(eng, "r", "nbd://nas/r", str(tmp_path / "r.present"), SIZE, CHUNK,
                 paused=True)                          # the counts survive a restart
    assert f2.progress()["skipped"] == 12 * CHUNK and f2.done
    f2.stop()


def test_replica_block_status(tmp_path, nas_data):
    _eng, f, be, _reads = make(tmp_path, nas_data)
    assert be.extents(0, SIZE) == [(SIZE, 0)]            # nothing local: data
    f._status_remote = nas_status(nas_data, [])
    f.skip_holes(0, 3)
    hole = proto.STATE_HOLE | proto.STATE_ZERO
    assert be.extents(0, SIZE) == [(3 * CHUNK, hole)]
    assert be.extents(3 * CHUNK, SIZE - 3 * CHUNK) == [(SIZE - 3 * CHUNK, 0)]
    f.stop()
