"""The xseg binding against real segments, across processes: data without copies,
routing, wakeups, recovery, and every kind of bad input as a clear error."""
import errno
import itertools
import mmap
import os
import struct
import subprocess
import sys
import textwrap

import pytest

import xseg

_seq = itertools.count()


def unique(tag):
    return f"pytest-{tag}-{os.getpid()}-{next(_seq)}"


@pytest.fixture
def seg():
    name = unique("xseg")
    s = xseg.Segment.create(f"posix:{name}:4:16:8:12:256")
    yield s
    s.destroy()
    assert not os.path.exists(f"/dev/shm/{name}")


def run_child(code, *args, timeout=60):
    """Run a Python snippet in a child process; returns its stdout."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_round_trip_across_processes(seg):
    """A child serves: it reads and writes the data in place; we see its bytes."""
    with seg.bind(1, owner="parent") as port:
        req = port.get(6, op=xseg.Op.WRITE, target="vol", offset=512,
                       flags=xseg.Flag.FUA)
        req.data[:] = b"abcdef"
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import sys, xseg
            seg = xseg.Segment.join(sys.argv[1])
            with seg.bind(2, owner="child") as p:
                while not p.wait(10) or not p.pending():
                    pass
                [r] = p.accept()
                assert (r.op, r.target, r.offset, r.flags) == (2, "vol", 512, 4), r
                r.data[:] = bytes(r.data).upper()
                r.serviced = 6
                p.respond(r)
            """), seg.name])
        try:
            for _ in range(200):
                if seg.port_info(2)["state"] == "bound":
                    break
                port.wait(0.05)
            port.submit(2, req)
            while not port.pending():
                port.wait(10)
            [rep] = port.receive()
            assert rep is req and rep.served and rep.serviced == 6
            assert bytes(rep.data) == b"ABCDEF" and rep.path == []
            port.put(rep)
        finally:
            assert child.wait(30) == 0


def test_forwarding_and_failure_errno(seg):
    with seg.bind(1) as a, seg.bind(2) as b, seg.bind(3) as c:
        req = a.get(0, op=xseg.Op.INFO, target="x")
        a.submit(2, req)
        [r] = b.accept()
        b.submit(3, r)                          # forward the same request
        [r] = c.accept()
        assert r.path == [1, 2]
        c.fail(r, errno.ENOENT)
        assert a.receive() == []
        [r] = b.receive()
        b.respond(r)
        [r] = a.receive()
        assert r.failed and r.errno == errno.ENOENT
        with pytest.raises(xseg.RequestFailed) as e:
            r.raise_for_error()
        assert e.value.errno == errno.ENOENT
        a.put(r)


def test_batches_and_wait(seg):
    with seg.bind(1) as a, seg.bind(2) as b:
        assert not b.wait(0.01)                 # timed out: nothing to do
        reqs = a.get_many(50, 16)
        assert len(reqs) == 50
        a.submit_many(2, reqs)
        assert b.wait(0) and b.pending() == 50
        got = b.accept(64)
        assert len(got) == 50
        b.respond_many(got)
        back = a.receive(64)
        assert sorted(r.index for r in back) == sorted(r.index for r in reqs)
        a.put_many(back)
        assert a.info()["free_q"] == 50


def test_context_managers_give_everything_back(seg):
    before = seg.info()
    with seg.bind(1) as a, seg.bind(2):
        with a.get(100):
            pass
        held = a.get(1000)
        a.submit(2, held)                       # left queued at port 2
    after = seg.info()
    assert after["pool_free"] == before["pool_free"]
    assert after["heap_free"] == before["heap_free"]


def test_bad_spec_strings():
    for bad in ["", "tcp:x", "posix:a/b", "posix:x:9:4", "posix:x:1:2:0", "posix:x:1:2:3:99",
                "posix:x:1:2:3:12:5:6", "posix:x:a"]:
        with pytest.raises(xseg.BadArgument) as e:
            xseg.Segment.create(bad)
        assert e.value.errno == errno.EINVAL and "bad segment spec" in str(e.value)
    assert not [n for n in os.listdir("/dev/shm") if n in ("x", "a")]


def test_another_version_is_refused_and_left_alone(seg):
    with open(f"/dev/shm/{seg.name}", "r+b") as f, mmap.mmap(f.fileno(), 4096) as m:
        major, minor = struct.unpack_from("<HH", m, 8)[::-1]
        struct.pack_into("<I", m, 8, (major + 1) << 16)
        with pytest.raises(xseg.VersionMismatch) as e:
            xseg.Segment.join(seg.name)
        assert e.value.errno == errno.EPROTO
        assert f"version {major + 1}.0" in str(e.value) and f"{major}.{minor}" in str(e.value)
        assert struct.unpack_from("<I", m, 8)[0] == (major + 1) << 16   # untouched
        struct.pack_into("<I", m, 8, (major << 16) | minor)
    xseg.Segment.join(seg.name).close()


def test_no_such_segment_and_exists(seg):
    with pytest.raises(xseg.NoSuchSegment):
        xseg.Segment.join(unique("absent"))
    with pytest.raises(FileExistsError):
        xseg.Segment.create(f"posix:{seg.name}")
    with pytest.raises(xseg.NoSuchSegment):
        xseg.Segment.destroy(unique("absent"))


def test_port_errors(seg):
    with seg.bind(1, owner="first") as a:
        with pytest.raises(xseg.PortInUse, match=r"bound by pid .* \(first\)"):
            seg.bind(1)
        out = run_child("""
            import sys, xseg
            seg = xseg.Segment.join(sys.argv[1])
            try:
                seg.bind(1)
            except xseg.PortInUse as e:
                print("in use", e.errno)
            """, seg.name)
        assert out.strip() == f"in use {errno.EADDRINUSE}"
        with pytest.raises(xseg.BadArgument, match="out of range"):
            seg.bind(99)
        dyn = [seg.bind() for _ in range(4)]
        assert sorted(p.portno for p in dyn) == [12, 13, 14, 15]
        with pytest.raises(xseg.NoFreePort):
            seg.bind()
        for p in dyn:
            p.close()
        req = a.get(10)
        with pytest.raises(xseg.PortNotBound, match=r"port 5 .* is not bound"):
            a.submit(5, req)                    # nobody serves port 5
        assert req.path == [] and req.data.nbytes == 10   # untouched, still ours
        a.put(req)
        with pytest.raises(xseg.RequestTooLarge):
            a.get(seg.info()["max_data"] + 1)
        with pytest.raises(xseg.BadArgument, match="over the limit"):
            a.get(0, target="x" * (xseg.MAX_TARGETLEN + 1))
        with pytest.raises(xseg.BadArgument, match="not held"):
            a.put(req)                          # already put
    with pytest.raises(xseg.PortUnbound):
        a.get(0)


def test_requests_limit_and_heap_exhaustion(seg):
    with seg.bind(1, max_requests=4) as a:
        reqs = [a.get(0) for _ in range(4)]
        with pytest.raises(xseg.NoBuffers, match="all its 4 requests"):
            a.get(0)
        a.put_many(reqs)
        big = seg.info()["max_data"]
        r1, r2 = a.get(big), a.get(big)
        with pytest.raises(xseg.NoBuffers, match="no free run"):
            a.get(big)
        a.put_many([r1, r2])
    assert seg.info()["heap_free"] == seg.info()["heap_size"]


def test_dead_owner_is_recovered(seg):
    """A process dies holding a bound port with requests queued: they fail back."""
    with seg.bind(1) as a:
        run_child("""
            import os, sys, xseg
            seg = xseg.Segment.join(sys.argv[1])
            p = seg.bind(2, owner="doomed")
            os._exit(0)          # no unbind: as if killed
            """, seg.name)
        assert seg.port_info(2)["owner_alive"] is False
        reqs = a.get_many(3)
        a.submit_many(2, reqs)                  # queued for a dead peer
        assert seg.check() == 1
        back = a.receive()
        assert len(back) == 3 and all(r.errno == errno.ECONNRESET for r in back)
        a.put_many(back)
        with seg.bind(2, owner="restarted"):
            pass


def _open_and_count(spec):
    s = xseg.Segment.open(spec)
    try:
        return s.info()["nr_ports"]
    finally:
        s.close()


def test_open_races_create():
    """Peers starting together: one creates the segment, the rest join it."""
    import multiprocessing

    name = unique("race")
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            assert pool.map(_open_and_count, [f"posix:{name}:4:8:64"] * 8) == [8] * 8
    finally:
        xseg.Segment.destroy(name)
