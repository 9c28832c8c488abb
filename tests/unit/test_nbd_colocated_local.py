"""The co-located data path without a segment (nbd.colocated.local) and the
transmission loop's worker dispatch for parallel() backends."""
import threading
import time

from archipelago.nbd import proto
from archipelago.nbd.client import Client
from archipelago.nbd.colocated import ColocatedBackend, local
from archipelago.nbd.memory import MemoryBackend
from archipelago.nbd.registry import Provider
from archipelago.nbd.testing import serve
from archipelago.store.memory import MemoryStore

MiB = 1 << 20


def test_colocated_round_trip_snapshot_and_diff():
    prov, c = local(MemoryStore())
    c.create("vm1", 16 * MiB)
    with serve(providers=[prov]) as srv, Client.connect_uri(srv.uri("vm1")) as n:
        n.go()
        data = bytes(range(256)) * 64 * 3                 # 48 KiB across 4 MiB boundary
        n.write(4 * MiB - 20000, data)
        n.flush()
        assert n.read(4 * MiB - 20000, len(data)) == data
        assert n.read(12 * MiB, 4096) == bytes(4096)      # never written: zeros
        exp = srv.registry.acquire("vm1")
        assert isinstance(exp.backend, ColocatedBackend)
        srv.registry.release(exp)
        c.snapshot("vm1", "s1")                           # freezes the same vlmcd
        n.write(8 * MiB + 512, b"N" * 1000)
        n.flush()
        with c.volume("vm1@s1") as s, c.volume("vm1") as v:
            assert s.pread(len(data), 4 * MiB - 20000) == data
            assert s.pread(1000, 8 * MiB + 512) == bytes(1000)
            assert v.pread(1000, 8 * MiB + 512) == b"N" * 1000
        changed = c.diff("vm1@s1", "vm1")
        assert any(o <= 8 * MiB + 512 and 8 * MiB + 1512 <= o + n_ for o, n_ in changed)
    with serve(providers=[prov]) as srv, Client.connect_uri(srv.uri("vm1@s1")) as n:
        n.go()
        assert n.read(4 * MiB - 20000, len(data)) == data
        assert n.request(proto.CMD_WRITE, 0, 4, data=b"xxxx") == proto.EPERM


class Slow(MemoryBackend):
    """A memory disk whose reads of offset 0 take a while: a latency-bound store."""

    def pread(self, buf, offset):
        if offset == 0:
            time.sleep(0.3)
        super().pread(buf, offset)

    def pwrite(self, buf, offset):
        time.sleep(0.05)
        super().pwrite(buf, offset)

    def parallel(self):
        return True


class SlowProvider(Provider):
    def __init__(self):
        self.disk = Slow(1 * MiB)

    def open(self, volume, snapshot):
        return self.disk


def _replies(n, count):
    out = []
    for _ in range(count):
        magic, err, cookie = proto.SIMPLE_REPLY.unpack(n.recv(proto.SIMPLE_REPLY.size))
        assert magic == proto.SIMPLE_REPLY_MAGIC and err == 0
        out.append(cookie)
    return out


def test_parallel_backend_overlaps_requests_and_flush_covers_writes():
    prov = SlowProvider()
    with serve(providers=[prov]) as srv, Client.connect_uri(srv.uri("d")) as n:
        n.go(export="d")
        # two writes and a FLUSH pipelined: the FLUSH reply comes after both writes
        n.send(proto.request(proto.CMD_WRITE, 4096, 4, 1) + b"abcd"
               + proto.request(proto.CMD_WRITE, 0, 4, 2) + b"wxyz"
               + proto.request(proto.CMD_FLUSH, 0, 0, 3))
        assert _replies(n, 3)[2] == 3
        # a slow read then a fast one: the fast one is answered first
        t0 = time.monotonic()
        n.send(proto.request(proto.CMD_READ, 0, 4, 4) + proto.request(proto.CMD_READ, 4096, 4, 5))
        first = _replies(n, 1)[0]
        assert first == 5 and n.recv(4) == b"abcd"
        assert _replies(n, 1)[0] == 4 and n.recv(4) == b"wxyz"
        assert time.monotonic() - t0 < 5


def test_parallel_backend_many_in_flight():
    prov = SlowProvider()
    with serve(providers=[prov]) as srv:
        def worker(k):
            with Client.connect_uri(srv.uri("d")) as n:
                n.go(export="d")
                for i in range(20):
                    n.write(8192 * (k * 20 + i) % (1 * MiB - 4096), bytes([k + 1]) * 4096)
                n.flush()
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not any(t.is_alive() for t in ts)


def test_datapath_setting():
    import pytest

    from archipelago import config
    from archipelago.errors import ArchipelagoError
    from archipelago.nbd.settings import NBD
    cfg = config.from_text("[nbd]\ndatapath = colocated\n")
    cfg.check(config.NODE, NBD)
    assert cfg.section(NBD).datapath == "colocated"
    assert config.from_text("").section(NBD).datapath == "colocated"     # the default
    with pytest.raises(ArchipelagoError, match="datapath"):
        config.from_text("[nbd]\ndatapath = fast\n").check(config.NODE, NBD)


class Recording(MemoryStore):
    """A MemoryStore that records which writes asked for FUA and every flush."""

    def __init__(self):
        super().__init__()
        self.fua, self.flushes = [], 0

    def write(self, name, offset, data, *, fua=False, lease=None):
        if fua:
            self.fua.append(name)
        return super().write(name, offset, data, fua=fua, lease=lease)

    def flush(self):
        self.flushes += 1
        return super().flush()


def test_fua_write_syncs_its_objects_not_the_volume():
    store = Recording()
    prov, c = local(store)
    c.create("vm1", 16 * MiB)
    with serve(providers=[prov]) as srv, Client.connect_uri(srv.uri("vm1")) as n:
        n.go()
        n.write(0, b"a" * 4096)
        flushes = store.flushes
        # across an object boundary: two objects, each written with FUA
        assert n.request(proto.CMD_WRITE, 4 * MiB - 2048, 4096, data=b"b" * 4096,
                         flags=proto.CMD_FLAG_FUA) == 0
        assert len(store.fua) == 2 and len(set(store.fua)) == 2
        assert store.flushes == flushes                  # no whole-store flush
        assert n.read(4 * MiB - 2048, 4096) == b"b" * 4096
        n.flush()
        assert store.flushes > flushes                   # FLUSH still flushes


def test_reads_confirm_the_cache_in_the_background():
    """A read hit on a cache past half its TTL is served from the cache and starts
    one MAPR in the background that confirms the epoch (no read waits for it)."""
    prov, c = local(MemoryStore())
    c.create("vm1", 8 * MiB)
    b = prov.open("vm1", None)
    vd = prov.vlmcd
    vd.ttl = 1000.0
    b.pwrite(b"x" * MiB, 0)
    v = vd.enter("vm1")
    v.leave()
    calls, mcall, gate = [], vd.mcall, threading.Event()

    def held(method, target="", **args):       # the confirmation waits for the gate
        calls.append(method)
        gate.wait(30)
        return mcall(method, target, **args)
    vd.mcall = held
    old = v.cache.confirmed = v.cache.seen = time.monotonic() - 600   # past TTL/2
    buf = bytearray(4096)
    for _ in range(3):
        b.pread(memoryview(buf), 8192)             # served while the MAPR is held
        assert buf == b"x" * 4096
    assert v.refreshing
    gate.set()
    deadline = time.monotonic() + 30
    while v.refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == ["map_read"]                   # one confirmation, not one per read
    assert v.cache.seen > old


class Counting(MemoryBackend):
    """Counts flushes; with `fua`, also offers pwrite_fua (and counts those)."""

    def __init__(self, size, fua):
        super().__init__(size)
        self.flushes, self.fua_writes = 0, 0
        if fua:
            self.pwrite_fua = self._pwrite_fua

    def flush(self):
        self.flushes += 1

    def _pwrite_fua(self, buf, offset):
        self.fua_writes += 1
        self.pwrite(buf, offset)


class One(Provider):
    def __init__(self, backend):
        self.backend = backend

    def open(self, volume, snapshot):
        return self.backend

    def names(self):
        return ["d"]


def test_fua_uses_pwrite_fua_or_else_a_flush():
    for fua in (False, True):
        b = Counting(MiB, fua)
        with serve(providers=[One(b)]) as srv, Client.connect_uri(srv.uri("d")) as n:
            n.go()
            for length in (4096, 256 * 1024):          # inline and worker-thread paths
                assert n.request(proto.CMD_WRITE, 0, length, data=b"f" * length,
                                 flags=proto.CMD_FLAG_FUA) == 0
            assert n.read(0, 4096) == b"f" * 4096
        assert (b.fua_writes, b.flushes) == ((2, 0) if fua else (0, 2))


def test_concurrent_first_writes_keep_one_mapping_cache():
    """Two first writes to a volume both fetch its geometry; what the first learns
    must not be lost when the second arrives (those chunks' reads would then ask
    mapperd for the rest of the epoch)."""
    prov, c = local(MemoryStore())
    c.create("vm1", 16 * MiB)
    vd = prov.vlmcd
    vd.ttl = 1000.0
    both = threading.Barrier(2, timeout=30)
    mcall = vd.mcall

    def racing(method, target="", **args):
        if method == "geometry":
            both.wait()                              # both threads see no cache yet
        return mcall(method, target, **args)
    vd.mcall = racing

    def write(offset):
        v = vd.enter("vm1")
        try:
            vd.map_write(v, "vm1", offset, 4096)
        finally:
            v.leave()
    threads = [threading.Thread(target=write, args=(off,)) for off in (0, 8 * MiB)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    v = vd.enter("vm1")
    v.leave()
    vd.mcall = mcall
    assert vd.cached(v, "vm1", 0, 4096, write=True) is not None
    assert vd.cached(v, "vm1", 8 * MiB, 4096, write=True) is not None


class AsyncDisk(MemoryBackend):
    """A parallel backend with asynchronous submit (as ColocatedBackend on RADOS):
    requests queue until `complete()` runs them all as one batch on a 'drainer'
    thread, where `defer` holds the replies back until the batch is done."""

    def __init__(self, size):
        super().__init__(size)
        self.queue = []
        self.lock = threading.Lock()
        self.after = None          # the batch's deferred calls, while one runs
        self.batches = []          # deferred calls made per batch

    def parallel(self):
        return True

    def submit_pread(self, buf, offset, done):
        return self._queue(lambda: super(AsyncDisk, self).pread(buf, offset), done)

    def submit_pwrite(self, buf, offset, done):
        return self._queue(lambda: super(AsyncDisk, self).pwrite(buf, offset), done)

    def _queue(self, fn, done):
        with self.lock:
            self.queue.append((fn, done))
        return True

    def defer(self, fn):
        if self.after is None:
            return False
        self.after.append(fn)
        return True

    def complete(self, fail=None):
        """Complete everything queued as one batch on a new thread; its size."""
        with self.lock:
            batch, self.queue = self.queue, []

        def drain():
            self.after = []
            for fn, done in batch:
                try:
                    fn()
                    done(fail)
                except Exception as e:
                    done(e)
            after, self.after = self.after, None
            self.batches.append(len(after))
            for fn in after:
                fn()
        t = threading.Thread(target=drain)
        t.start()
        t.join(10)
        return len(batch)


def test_async_submit_replies_batched_after_the_completion_batch():
    disk = AsyncDisk(1 * MiB)

    class P(Provider):
        def open(self, volume, snapshot):
            return disk

    with serve(providers=[P()]) as srv, Client.connect_uri(srv.uri("d")) as n:
        n.go(export="d")
        n.send(proto.request(proto.CMD_WRITE, 0, 4, 1) + b"abcd"
               + proto.request(proto.CMD_WRITE, 8192, 4, 2) + b"efgh")
        deadline = time.monotonic() + 10
        while len(disk.queue) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert disk.complete() == 2
        assert sorted(_replies(n, 2)) == [1, 2]
        assert disk.batches == [1]             # two replies, one deferred send
        # reads, and a FLUSH that must wait for them (it drains the connection)
        n.send(proto.request(proto.CMD_READ, 0, 4, 3) + proto.request(proto.CMD_READ, 8192, 4, 4)
               + proto.request(proto.CMD_FLUSH, 0, 0, 5))
        while len(disk.queue) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert disk.complete() == 2
        got = {}
        for _ in range(2):
            magic, err, cookie = proto.SIMPLE_REPLY.unpack(n.recv(proto.SIMPLE_REPLY.size))
            assert magic == proto.SIMPLE_REPLY_MAGIC and err == 0
            got[cookie] = n.recv(4)
        assert got == {3: b"abcd", 4: b"efgh"}
        assert _replies(n, 1) == [5]
        # a failed completion is an error reply, and the connection goes on
        n.send(proto.request(proto.CMD_READ, 0, 4, 6))
        while len(disk.queue) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        disk.complete(fail=OSError(5, "boom"))
        magic, err, cookie = proto.SIMPLE_REPLY.unpack(n.recv(proto.SIMPLE_REPLY.size))
        assert (cookie, err) == (6, proto.EIO)
        n.send(proto.request(proto.CMD_READ, 8192, 4, 7))
        while len(disk.queue) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        disk.complete()
        assert _replies(n, 1) == [7] and n.recv(4) == b"efgh"
