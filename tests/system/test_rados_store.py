"""RadosStore against a real one-node Ceph: the shared ObjectStore contract, plus
two clients on one pool (the lease keeps one writer, a fenced holder's late write is
refused by the cluster), an OSD restart during I/O, and the configuration.

One cluster per session (tests/lib/ceph.py); each test gets a RADOS namespace of its
own, so stores start empty without a pool per test."""
import itertools
import threading
import time

import pytest
from ceph import ceph_cluster  # noqa: F401  (session fixture)
from store_contract import *  # noqa: F403

from archipelago import config
from archipelago.errors import (
    ArchipelagoError,
    Busy,
    ConfigError,
    Fenced,
    Timeout,
    Unavailable,
)
from archipelago.store import rados_aio
from archipelago.store.rados import Blocklisted, RadosStore

pytestmark = pytest.mark.ceph
_ns = itertools.count(1)


@pytest.fixture
def make_store(ceph_cluster):  # noqa: F811
    made = []

    def make(namespace, **kw):
        s = RadosStore(conf=ceph_cluster.conf, pool=ceph_cluster.pool, namespace=namespace,
                       op_timeout=kw.pop("op_timeout", 20), **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


@pytest.fixture
def namespace(request):
    return f"{request.node.name[:40]}.{next(_ns)}"


@pytest.fixture
def store(make_store, namespace):
    return make_store(namespace)


@pytest.fixture
def store2(make_store, namespace, store):
    """A second RADOS client (its own librados instance) on the same namespace."""
    return make_store(namespace)


# -- two clients on one pool ---------------------------------------------------------------
def test_lease_keeps_one_writer(store, store2):
    a = store.lease_acquire("vol", "host-a", 30)
    with pytest.raises(Busy):
        store2.lease_acquire("vol", "host-b", 30)
    store.write("vol.0", 0, b"A" * 512, lease=a)
    got = []
    t = threading.Thread(target=lambda: got.append(
        store2.lease_acquire("vol", "host-b", 30, wait=True, timeout=30)))
    t.start()
    time.sleep(0.3)
    assert not got                               # still waiting: one writer at a time
    store.lease_release(a)
    t.join(30)
    b = got[0]
    store2.write("vol.0", 0, b"B" * 512, lease=b)
    with pytest.raises(Fenced):
        store.write("vol.0", 0, b"A" * 512, lease=a)
    assert store.read("vol.0", 0, 512) == b"B" * 512


def test_fenced_holder_late_write_refused_by_cluster(store, store2):
    """The holder does not know it lost the lease (its own view says valid): the OSDs
    refuse its write because the breaker blocklisted its client."""
    a = store.lease_acquire("vol", "host-a", 30)
    store.write("vol.0", 0, b"A1", lease=a)
    store2.lease_break("vol")                    # vlmc unlock -f on another node
    b = store2.lease_acquire("vol", "host-b", 30)
    with pytest.raises(Blocklisted):
        store.write("vol.1", 0, b"late", lease=a)     # an object B never wrote
    assert store2.stat("vol.1") is None
    store2.write("vol.0", 0, b"B1", lease=b)
    assert store2.read("vol.0", 0, 2) == b"B1"
    # The fenced store reconnects with a new client: reads work, the old lease stays
    # fenced, and it can take other leases.
    assert store.read("vol.0", 0, 2) == b"B1"
    with pytest.raises(Fenced):
        store.write("vol.0", 0, b"A2", lease=a)
    other = store.lease_acquire("vol2", "host-a", 30)
    store.write("vol2.0", 0, b"ok", lease=other)


def test_generation_guard_refuses_without_blocklist(make_store, namespace):
    """With blocklisting off, the per-object generation guard (omap compare in the same
    RADOS op) still refuses an older holder on objects the newer holder has written."""
    a_store = make_store(namespace)
    b_store = make_store(namespace, fence_blocklist=False)
    a = a_store.lease_acquire("vol", "host-a", 0.5)
    a_store.write("vol.0", 0, b"A1", lease=a)
    time.sleep(0.7)
    b = b_store.lease_acquire("vol", "host-b", 30)
    b_store.write("vol.0", 0, b"B1", lease=b)
    b_store.replace("vol.map", b"map-b", lease=b)
    # Bypass a_store's own lease check to see what the cluster alone does.
    a_store.check_lease = lambda lease, conn: None
    for call in (lambda: a_store.write("vol.0", 0, b"A2", lease=a),
                 lambda: a_store.replace("vol.map", b"map-a", lease=a),
                 lambda: a_store.delete("vol.0", lease=a)):
        with pytest.raises(Fenced):
            call()
    assert b_store.read("vol.0", 0, 2) == b"B1"
    assert b_store.get("vol.map") == b"map-b"


def test_renew_after_reconnect_keeps_other_leases(store, store2):
    """Blocklisting a client for one lease does not lose its other, still valid leases:
    after reconnecting it re-validates them against their records."""
    v1 = store.lease_acquire("v1", "host-a", 30)
    v2 = store.lease_acquire("v2", "host-a", 30)
    store2.lease_break("v1")
    with pytest.raises(Blocklisted):
        store.write("v2.0", 0, b"x", lease=v2)   # in flight when the client was fenced
    store.write("v2.0", 0, b"y", lease=v2)       # re-validated on the new client
    assert store.lease_renew(v2, 30).generation == v2.generation
    with pytest.raises(Fenced):
        store.lease_renew(v1, 30)
    assert store2.read("v2.0", 0, 1) == b"y"


# -- aio queue -------------------------------------------------------------------------------
def test_aio_bounded_queue(make_store, namespace):
    s = make_store(namespace, queue_depth=4)
    futs = [s.aio_write(f"q{i}", 0, bytes([i]) * 4096) for i in range(64)]
    for f in futs:
        f.result()
    bufs = [bytearray(4096) for _ in range(64)]
    futs = [s.aio_readinto(f"q{i}", 0, memoryview(bufs[i])) for i in range(64)]
    for f in futs:
        f.result()
    assert all(bytes(b) == bytes([i]) * 4096 for i, b in enumerate(bufs))


# -- OSD restart during I/O ------------------------------------------------------------------
@pytest.mark.slow
def test_osd_restart_during_io(ceph_cluster, make_store, namespace):  # noqa: F811
    """Writers keep going while the OSD stops and comes back: each request either
    succeeds or fails with a clear error (Timeout), and afterwards every object holds
    the last acknowledged value or a later attempted one -- never garbage."""
    s = make_store(namespace, op_timeout=4)
    n_obj, size = 8, 65536
    acked = {i: bytes(size) for i in range(n_obj)}
    tried = {i: set() for i in range(n_obj)}
    failures, stop = [], threading.Event()

    def writer(i):
        for gen in itertools.count(1):
            if stop.is_set():
                return
            data = bytes([gen % 251 + 1]) * size
            tried[i].add(data)
            try:
                s.write(f"r{i}", 0, data)
                acked[i] = data
                tried[i] = set()
            except ArchipelagoError as e:
                failures.append(e)
                time.sleep(0.2)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_obj)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        ceph_cluster.stop_osd()
        time.sleep(6)                    # longer than op_timeout: requests must fail
        ceph_cluster.start_osd()
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert failures, "no request failed while the OSD was down"
    assert all(isinstance(e, (Timeout, Unavailable)) for e in failures), failures[:3]
    for i in range(n_obj):
        now = s.read(f"r{i}", 0, size)
        assert now == acked[i] or now in tried[i], f"object r{i} holds garbage"
    s.write("after", 0, b"ok")
    assert s.read("after", 0, 2) == b"ok"


# -- configuration ---------------------------------------------------------------------------
def test_from_config(ceph_cluster, namespace):  # noqa: F811
    cfg = config.from_text(f"""
[blockerb]
type = rados
pool = {ceph_cluster.pool}
namespace = {namespace}
ceph_conf = {ceph_cluster.conf}
op_timeout = 15
portno_start = 1
""")
    s = RadosStore.from_config(cfg)
    try:
        assert s.kind == "rados" and s.cfg.op_timeout == 15
        s.replace("x", b"1")
        assert list(s.list()) == ["x"]
    finally:
        s.close()


def test_config_errors(ceph_cluster, tmp_path):  # noqa: F811
    bad = config.from_text("[blockerb]\ntype = rados\nop_timeout = soon\n")
    with pytest.raises(ConfigError, match="op_timeout"):
        RadosStore.from_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        RadosStore(conf=tmp_path / "nope.conf", pool="p")
    with pytest.raises(ConfigError, match="pool 'no-such-pool'"):
        RadosStore(conf=ceph_cluster.conf, pool="no-such-pool")


def test_unreachable_monitor(ceph_cluster, tmp_path):  # noqa: F811
    text = ceph_cluster.conf.read_text()
    conf = tmp_path / "ceph.conf"
    conf.write_text("\n".join(
        "mon host = [v2:127.0.0.1:9]" if line.startswith("mon host") else line
        for line in text.splitlines()) + "\n")
    with pytest.raises(Unavailable):
        RadosStore(conf=conf, pool=ceph_cluster.pool, connect_timeout=2)


def test_shared_lease_namespace_fences_data_writes(make_store, namespace):
    """A node's data and map stores sharing `lease_namespace`: a data write carrying
    the volume lease is checked against the record in the map store's namespace, and
    breaking the lease fences the data store's client too."""
    leases = f"{namespace}.L"
    maps = make_store(f"{namespace}.m", lease_namespace=leases)
    data = make_store(f"{namespace}.d", lease_namespace=leases)
    other = make_store(f"{namespace}.m", lease_namespace=leases)
    lease = maps.lease_acquire("vol", "nodea:mapperd", 30)
    data.write("vd.1", 0, b"ok", lease=lease)          # joins: registers its client
    other.lease_break("vol")
    with pytest.raises(Fenced):
        data.write("vd.1", 0, b"late", lease=lease)
    assert other.lease_inquire("vol") is None
    assert data.read("vd.1", 0, 2) == b"ok"


# -- the native data path (store/rados_aio.py, src/rados-aio) --------------------------------
def test_native_path_is_built(store):
    """make build compiles the extension (librados-dev): RadosStore uses it."""
    assert rados_aio.available(), "src/rados-aio not built: make build (needs librados-dev)"
    assert store.conn().aio is not None and len(store.conn().addrs) == 2


@pytest.mark.parametrize("writer_native,reader_native", [(True, False), (False, True)])
def test_native_and_python_paths_agree(make_store, namespace, writer_native, reader_native):
    w = make_store(namespace, native_aio=writer_native)
    r = make_store(namespace, native_aio=reader_native)
    data = bytes(range(256)) * 64
    w.write("o1", 4096, data)
    w.aio_write("o2", 0, memoryview(data)[:100]).result()
    buf = bytearray(4096 + len(data) + 512)           # 512 bytes past the end
    r.readinto("o1", 0, buf)
    assert bytes(buf) == bytes(4096) + data + bytes(512)
    view = memoryview(bytearray(b"x" * 300))
    assert r.aio_readinto("o2", 0, view).result() == 300
    assert bytes(view) == data[:100] + bytes(200)
    view[:] = b"x" * 300
    r.aio_readinto("missing", 10, view).result()      # a missing object reads as zeros
    assert bytes(view) == bytes(300)
    r.flush()
    w.flush()


def test_native_write_of_fenced_client_refused(store, store2):
    """Both client addresses of a store are registered in the lease record, so
    breaking the lease blocklists the native data path too: its raw writes fail,
    then the store reconnects (new addresses) and works again."""
    a = store.lease_acquire("vol", "host-a", 30)
    store.write("vol.0", 0, b"A1", lease=a)          # registers store's addresses
    old = store.conn().addrs
    store2.lease_break("vol")
    with pytest.raises(Blocklisted):
        store.aio_write("vol.1", 0, b"late").result()   # unleased, native handle
    assert store2.stat("vol.1") is None
    store.write("vol.2", 0, b"again")                 # reconnected
    assert set(store.conn().addrs).isdisjoint(old)
    assert store2.read("vol.2", 0, 5) == b"again"


def test_native_callback_may_submit_more(make_store, namespace):
    """A completion callback runs on the drainer thread; one that starts more I/O
    with every slot taken must not wait for slots only the drainer can free."""
    s = make_store(namespace, queue_depth=1)
    done = threading.Event()
    chain = []

    def next_write(_op):
        if len(chain) < 20:
            chain.append(s.aio_write(f"c{len(chain)}", 0, b"c"))
            chain[-1].add_done_callback(next_write)
        else:
            done.set()
    next_write(None)
    assert done.wait(60)
    for op in chain:
        op.result()
    assert s.read("c19", 0, 1) == b"c"


def test_close_with_requests_in_flight(make_store, namespace):
    s = make_store(namespace)
    ops = [s.aio_write(f"f{i}", 0, b"z" * 65536) for i in range(32)]
    s.close()                                        # waits for them, then refuses
    for op in ops:
        op.result()
    with pytest.raises(Unavailable):
        s.aio_write("f0", 0, b"late")


def test_submit_io_lean_path(make_store, namespace):
    """submit_io (nbdd's co-located hot path): reads land in the buffer with zeros
    past the end and for a missing object, callbacks run on the completion thread,
    after_batch there runs once the batch is handled (elsewhere it says no), and
    a callback may submit more with every slot taken."""
    s = make_store(namespace, queue_depth=1)
    data = bytes(range(256)) * 16
    got, after, threads = [], [], set()
    ev = threading.Event()

    def wrote(exc):
        got.append(("w", exc))
        threads.add(threading.get_ident())
        buf = memoryview(bytearray(b"x" * 8192))
        # one slot, taken by nobody now; the callback itself must not wait for one
        assert s.submit_io(False, "lean1", 0, buf, lambda e: read(e, buf))

    def read(exc, buf):
        got.append(("r", exc, bytes(buf)))
        threads.add(threading.get_ident())
        assert s.after_batch(ev.set)
        after.append(len(got))
    assert s.submit_io(True, "lean1", 0, memoryview(data), wrote)
    assert ev.wait(60)
    assert got[0] == ("w", None)
    assert got[1] == ("r", None, data + bytes(8192 - len(data)))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert not s.after_batch(lambda: None)            # not on the completion thread
    view = memoryview(bytearray(b"x" * 300))
    done = threading.Event()
    errs = []
    s.submit_io(False, "missing", 0, view, lambda e: (errs.append(e), done.set()))
    assert done.wait(60) and errs == [None] and bytes(view) == bytes(300)
    s.close()
    with pytest.raises(Unavailable):
        s.submit_io(False, "lean1", 0, view, lambda e: None)
