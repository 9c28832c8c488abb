"""The peer framework on a real (small, private) segment: dispatch, checks, errors,
replies, many requests in flight, nested calls, timeouts and shutdown."""
import errno
import itertools
import os
import threading
import time

import pytest

import xseg
from archipelago.errors import ArchipelagoError, NotFound, Timeout, Unavailable
from archipelago.peer import Endpoint, Flag, Op, Peer, payload

_seq = itertools.count()
PORT, OTHER = 3, 4


@pytest.fixture
def seg():
    name = f"pytest-peer-{os.getpid()}-{next(_seq)}"
    s = xseg.Segment.create(f"posix:{name}:8:16:16:12:512")
    yield s
    s.destroy()
    assert not os.path.exists(f"/dev/shm/{name}")


class Echo(Peer):
    name = "echo"

    def write(self, req):
        return bytes(req.data[:req.size]).upper()

    def read(self, req):
        req.data[:req.size] = b"r" * req.size       # in place, serviced = size

    def info(self, req):
        if req.target == "missing":
            raise NotFound(f"object {req.target} does not exist")
        return 42

    def copy(self, req):
        header, raw = payload.decode(req.data)
        return payload.encode({"copied": header["src"], "to": req.target}, raw)

    def hash(self, req):
        raise RuntimeError("boom")

    def delete(self, req):
        raise OSError(errno.EROFS, "read-only")


@pytest.fixture(params=[0, 2], ids=["inline", "threads"])
def peer(request, seg):
    with Echo(seg, [PORT], nr_threads=request.param) as p:
        p.start()
        yield p


@pytest.fixture
def client(seg):
    with Endpoint(seg, name="test-client") as c:
        yield c


def test_reply_data_and_serviced(peer, client):
    with client.call(PORT, Op.WRITE, "obj", data=b"hello") as rep:
        assert rep.ok and rep.serviced == 5 and bytes(rep.data) == b"HELLO"
    with client.call(PORT, Op.READ, "obj", datalen=8, size=8, offset=4096) as rep:
        assert bytes(rep.data) == b"r" * 8
    with client.call(PORT, Op.INFO, "obj") as rep:
        assert rep.serviced == 42


def test_payload_round_trip(peer, client):
    with client.call(PORT, Op.COPY, "dst", data=payload.encode({"src": "obj-a"}, b"xy")) as rep:
        header, raw = payload.decode(rep.data)
    assert header == {"copied": "obj-a", "to": "dst"} and bytes(raw) == b"xy"


@pytest.mark.parametrize("op, target, fields, err, text", [
    (Op.INFO, "missing", {}, errno.ENOENT, "object missing does not exist"),
    (Op.DELETE, "x", {}, errno.EROFS, "read-only"),
    (Op.HASH, "x", {}, errno.EIO, "internal error: boom"),
    (Op.SNAPSHOT, "x", {}, errno.EOPNOTSUPP, "echo does not serve snapshot"),
    (99, "x", {}, errno.EOPNOTSUPP, "unknown op 99"),
    (Op.READ, "x", {"datalen": 4, "size": 8}, errno.EINVAL, "over the 4-byte data buffer"),
    (Op.WRITE, "x", {"data": b""}, errno.EINVAL, "size 0"),
    (Op.INFO, "", {}, errno.EINVAL, "no target"),
])
def test_failures_carry_errno_and_message(peer, client, op, target, fields, err, text):
    with pytest.raises(ArchipelagoError) as e:
        client.call(PORT, op, target, **fields)
    assert e.value.errno == err and text in str(e.value)


def test_flush_is_a_zero_size_write(peer, client):
    with client.call(PORT, Op.WRITE, "x", data=b"", flags=Flag.FLUSH) as rep:
        assert rep.ok and rep.serviced == 0


def test_reply_without_check(peer, client):
    rep = client.submit(PORT, Op.INFO, "missing").result(check=False)
    with rep:
        assert not rep.ok and rep.errno == errno.ENOENT
        assert isinstance(rep.error(), NotFound)


def test_many_in_flight_from_many_threads(peer, client, seg):
    def worker(k):
        pends = [client.submit(PORT, Op.WRITE, f"t{k}", data=f"{k}-{i}".encode())
                 for i in range(50)]
        for i, p in enumerate(pends):
            with p.result(timeout=30) as rep:
                assert bytes(rep.data) == f"{k}-{i}".encode().upper()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reqs = [client.prepare(Op.WRITE, "batch", data=b"abc") for _ in range(20)]
    for p in client.submit_many(PORT, reqs):
        with p.result(timeout=30) as rep:
            assert bytes(rep.data) == b"ABC"
    assert seg.port_info(client.port.portno)["alloc"] <= 220


class Fanout(Peer):
    """A peer that serves a request by calling another peer (as vlmcd does)."""

    name = "fanout"

    def read(self, req):
        half = req.size // 2
        pends = [self.submit(PORT, Op.READ, f"{req.target}.{i}", datalen=half, size=half)
                 for i in range(2)]
        for i, p in enumerate(pends):
            with p.result(timeout=30) as rep:
                req.data[i * half:(i + 1) * half] = rep.data


def test_nested_calls(seg, client):
    with Echo(seg, [PORT], nr_threads=1) as e, Fanout(seg, [OTHER], nr_threads=2) as f:
        e.start()
        f.start()
        with client.call(OTHER, Op.READ, "vol", datalen=8, size=8) as rep:
            assert bytes(rep.data) == b"r" * 8


class Slow(Peer):
    name = "slow"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.gate = threading.Event()

    def read(self, req):
        self.gate.wait(30)


def test_timeout_abandons_and_recycles(seg, client):
    with Slow(seg, [PORT], nr_threads=1) as s:
        s.start()
        p = client.submit(PORT, Op.READ, "x", datalen=1, size=1)
        with pytest.raises(Timeout):
            p.result(timeout=0.2)
        s.gate.set()
        with client.call(PORT, Op.READ, "y", datalen=1, size=1):
            pass
    # the abandoned request came back and was put: nothing is held
    assert seg.port_info(client.port.portno)["alloc"] == seg.port_info(
        client.port.portno)["free_q"]


def test_unbound_port_and_close(seg, client):
    with pytest.raises(xseg.PortNotBound):
        client.submit(7, Op.INFO, "x")
    s = Slow(seg, [PORT], nr_threads=1).start()
    p = client.submit(PORT, Op.READ, "x", datalen=1, size=1)
    while seg.port_info(PORT)["accepted"] == 0:
        time.sleep(0.01)
    s.gate.set()
    s.close()                    # finishes what it holds, then unbinds
    with p.result(timeout=30):
        pass
    client.close()
    with pytest.raises(xseg.PortUnbound):
        client.submit(PORT, Op.INFO, "x")


def test_close_fails_waiters(seg):
    s = Slow(seg, [PORT], nr_threads=1).start()
    c = Endpoint(seg).start()
    p = c.submit(PORT, Op.READ, "x", datalen=1, size=1)
    c.close()
    with pytest.raises(Unavailable):
        p.result(timeout=5)
    s.gate.set()
    s.close()
    assert seg.info()["pool_free"] == seg.info()["nr_reqs"]


def test_failing_callback_does_not_kill_the_loop(peer, client):
    seen = []

    def bad(reply):
        seen.append(reply.serviced)
        raise RuntimeError("callback bug")

    p = client.submit(PORT, Op.INFO, "obj", callback=bad)
    with p.result(timeout=30) as rep:
        assert rep.serviced == 42
    assert seen == [42]
    with client.call(PORT, Op.INFO, "obj", timeout=30) as rep:   # the loop lives on
        assert rep.serviced == 42


def test_closing_the_segment_closes_endpoints_first():
    name = f"pytest-peer-{os.getpid()}-{next(_seq)}"
    s = xseg.Segment.create(f"posix:{name}:8:16:16:12:512")
    try:
        p = Echo(s, [PORT], nr_threads=1).start()
        c = Endpoint(s).start()              # both loops asleep on the segment
        with c.call(PORT, Op.INFO, "obj", timeout=30):
            pass
        s.close()                            # must not pull the memory from under them
        assert not p._thread.is_alive() and not c._thread.is_alive()
    finally:
        xseg.Segment.destroy(name)


@pytest.mark.timeout(120)
def test_no_lost_wakeups_between_caller_and_loop(seg, monkeypatch):
    """Caller and loop thread both receive replies; a lost wake-up would leave a
    call asleep until the idle timeout, here made longer than the test's."""
    from archipelago.peer import endpoint
    monkeypatch.setattr(endpoint, "IDLE_CHECK", 600.0)
    with Echo(seg, [PORT], nr_threads=0) as p, Endpoint(seg) as c:
        p.start()
        for _ in range(3000):
            c.call(PORT, Op.INFO, "obj").close()


def test_dropped_pendings_give_their_requests_back(seg, peer):
    with Endpoint(seg, nr_ops=4) as c:
        for i in range(40):                  # never result(): the replies are dropped
            c.submit(PORT, Op.WRITE, "x", data=b"%d" % i)
        with c.call(PORT, Op.INFO, "obj", timeout=30) as rep:
            assert rep.serviced == 42


def test_full_port_waits_for_a_request_to_come_back(seg, peer):
    with Endpoint(seg, nr_ops=2) as c:
        held = [c.submit(PORT, Op.INFO, "obj").result(timeout=30) for _ in range(2)]
        c.get_timeout = 0.2
        with pytest.raises(xseg.NoBuffers, match="all its 2 requests"):
            c.submit(PORT, Op.INFO, "obj")
        c.get_timeout = 30
        threading.Timer(0.2, held[0].close).start()
        with c.call(PORT, Op.INFO, "obj", timeout=30) as rep:   # waits for held[0]
            assert rep.serviced == 42
        held[1].close()
