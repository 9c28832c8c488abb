"""Peers killed with -9 mid-stream and restarted; peers stopped with SIGTERM.

Survivors see failures (ECONNRESET), never hangs; the restarted peer re-binds
its port and serves; nothing is leaked in the segment."""
import errno
import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import xseg
from archipelago.errors import ArchipelagoError
from archipelago.peer import Endpoint, Op

_seq = itertools.count()
PORT = 3

PEER = textwrap.dedent("""
    import sys, time, xseg
    from archipelago.peer import Peer, serve_forever

    class Echo(Peer):
        name = "echo"
        def write(self, req):
            if req.flags & 0x100:          # "slow" requests: a peer mid-work
                time.sleep(0.5)
            return bytes(req.data[:req.size]).upper()

    seg = xseg.Segment.join(sys.argv[1])
    peer = Echo(seg, [int(sys.argv[2])], nr_threads=int(sys.argv[3]))
    serve_forever(peer, ready=lambda: print("ready", flush=True))
    """)


@pytest.fixture
def seg():
    name = f"pytest-kill-{os.getpid()}-{next(_seq)}"
    s = xseg.Segment.create(f"posix:{name}:4:16:32:12:1024")
    yield s
    s.destroy()


class PeerProc:
    def __init__(self, seg, threads=2):
        self.p = subprocess.Popen([sys.executable, "-c", PEER, seg.name, str(PORT),
                                   str(threads)], stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def kill(self, sig=signal.SIGKILL):
        self.p.send_signal(sig)
        return self.p.wait(30)


@pytest.fixture
def peers(seg):
    started = []

    def start(**kw):
        started.append(PeerProc(seg, **kw))
        return started[-1]
    yield start
    for p in started:
        if p.p.poll() is None:
            p.kill()


def load(client, stop, results):
    """Keep requests in flight until told to stop; record what each one got."""
    while not stop.is_set():
        try:
            pends = [client.submit(PORT, Op.WRITE, "obj", data=b"abc") for _ in range(16)]
        except xseg.PortNotBound:
            results.append("refused")            # the peer is gone (recovered)
            time.sleep(0.01)
            continue
        for p in pends:
            try:
                with p.result(timeout=30) as rep:
                    assert bytes(rep.data) == b"ABC"
                    results.append("ok")
            except ArchipelagoError as e:
                results.append(e.errno)


@pytest.mark.parametrize("threads", [0, 2])
def test_kill_mid_stream_then_restart(seg, peers, threads):
    peer = peers(threads=threads)
    with Endpoint(seg, name="survivor") as client:
        stop, results = threading.Event(), []
        loaders = [threading.Thread(target=load, args=(client, stop, results))
                   for _ in range(2)]
        for t in loaders:
            t.start()
        time.sleep(random.uniform(0.2, 0.6))     # a random point mid-stream
        assert peer.kill() == -signal.SIGKILL
        time.sleep(1.5)                           # survivors notice (loop check <= 1 s)
        n_dead = len(results)
        peer = peers(threads=threads)             # restart: re-binds the same port
        time.sleep(0.5)
        stop.set()
        for t in loaders:
            t.join(60)
            assert not t.is_alive(), "a survivor hung"
        outcomes = set(results)
        assert "ok" in results[:n_dead] and "ok" in results[n_dead:]
        assert outcomes <= {"ok", "refused", errno.ECONNRESET}, outcomes
        assert outcomes - {"ok"}, "the kill went unnoticed"
        with client.call(PORT, Op.WRITE, "after", data=b"x") as rep:
            assert bytes(rep.data) == b"X"
        assert seg.port_info(PORT)["owner_pid"] == peer.p.pid
    peer.kill(signal.SIGTERM)
    seg.check()
    info = seg.info()
    assert info["pool_free"] == info["nr_reqs"] and info["heap_free"] == info["heap_size"]


def test_kill_while_serving_fails_the_request(seg, peers):
    peer = peers(threads=1)
    with Endpoint(seg) as client:
        slow = client.submit(PORT, Op.WRITE, "slow", data=b"a", flags=0x100)
        time.sleep(0.2)                           # accepted, in the handler
        queued = [client.submit(PORT, Op.WRITE, "q", data=b"b") for _ in range(5)]
        peer.kill()
        for p in [slow, *queued]:
            with pytest.raises(ArchipelagoError) as e:
                p.result(timeout=30)
            assert e.value.errno == errno.ECONNRESET
        with pytest.raises(xseg.PortNotBound):
            client.submit(PORT, Op.WRITE, "x", data=b"c")


def test_sigterm_finishes_work_then_unbinds(seg, peers, tmp_path):
    peer = peers(threads=1)
    with Endpoint(seg) as client:
        slow = client.submit(PORT, Op.WRITE, "slow", data=b"abc", flags=0x100)
        while seg.port_info(PORT)["accepted"] == 0:   # in the handler now
            time.sleep(0.01)
        assert peer.kill(signal.SIGTERM) == 0     # graceful: exit code 0
        with slow.result(timeout=30) as rep:      # the request it held was finished
            assert bytes(rep.data) == b"ABC"
    assert seg.port_info(PORT)["state"] == "free"


def test_run_role_from_config(seg, tmp_path):
    conf = tmp_path / "archipelago.conf"
    conf.write_text(f"[XSEG]\nSEGMENT_NAME = {seg.name}\n\n"
                    "[echo]\nportno_start = 5\nportno_end = 6\nnr_threads = 1\n"
                    "log_level = debug\n")
    code = textwrap.dedent("""
        import sys
        from archipelago.peer import Peer, role_section, run_role
        class Echo(Peer):
            def ping(self, req):
                return b"pong"
        sys.exit(run_role(Echo, role_section("echo", "test"), sys.argv[1],
                          ready=lambda: print("ready", flush=True)))
        """)
    p = subprocess.Popen([sys.executable, "-c", code, str(conf)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        with Endpoint(seg) as client:
            for port in (5, 6):
                with client.call(port, Op.PING, timeout=30) as rep:
                    assert bytes(rep.data) == b"pong"
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
        assert "serving ports [5, 6]" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    # a bad setting fails at start with the key named
    conf.write_text("[echo]\nportno_start = 5\nnr_thread = 1\n")
    bad = subprocess.run([sys.executable, "-c", code, str(conf)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown setting 'nr_thread'" in bad.stderr
