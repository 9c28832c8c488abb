#!/usr/bin/env python3
"""xseg benchmarks: C ping-pong (one at a time and batched), wake-up latency, and
Python echo peers (raw binding loop and the peer framework) under a C load.

    .venv/bin/python bench/run.py xseg       (or: make bench)

Targets (issue 2): >= 1,000,000 req/s batched C ping-pong; >= 100,000 req/s
through a Python echo peer.  Figures vary with the machine's load.
"""
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "libxseg"
BENCH = LIB / "build" / "xseg-bench"

RAW_ECHO = """
    import resource, sys, xseg
    seg = xseg.Segment.join(sys.argv[1])
    port = seg.bind(2, owner="py-echo")
    print("ready", flush=True)
    stop = False
    while not stop:
        reqs = port.accept(256)
        if not reqs:
            port.wait()
            continue
        for r in reqs:
            if r.op == 0:
                stop = True
            r.serviced = r.size
        port.respond_many(reqs)
    port.close()
    print("rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""

PEER_ECHO = """
    import resource, sys, threading, xseg
    from archipelago.peer import Peer

    class Echo(Peer):
        name = "echo"
        def write(self, req):
            return None                       # serviced = size
        def info(self, req):
            return 0
        def ping(self, req):
            done.set()

    done = threading.Event()
    seg = xseg.Segment.join(sys.argv[1])
    peer = Echo(seg, [2], nr_threads=int(sys.argv[2])).start()
    print("ready", flush=True)
    done.wait()
    peer.close()
    print("rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""


def run(args):
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if out.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed: {out.stderr.strip()}")
    return dict((m[0], float(m[1])) for m in
                re.findall(r"^RESULT (\S+) ([\d.]+)", out.stdout, re.M))


def python_echo(code, n, batch, *args, size=0, latency=False):
    """req/s of a Python echo process loaded by the C client, and its peak RSS
    (and first, if asked, the wake-up latency of that peer while it sleeps)."""
    import xseg
    name = f"xsegbench-py-{os.getpid()}"
    seg = xseg.Segment.create(f"posix:{name}:4:8:64:12:4096")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), name, *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        lat = run([BENCH, "latency", "-g", name, "-p", "2", "-n", "1000"]) if latency else {}
        res = run([BENCH, "client", "-g", name, "-p", "2", "-n", str(n), "-b", str(batch),
                   "-s", str(size)])
        rss = proc.stdout.readline().split()
        proc.wait(60)
        rate, rss = res[f"client_b{batch}"], int(rss[1]) if rss else 0
        return (rate, rss, lat) if latency else (rate, rss)
    finally:
        if proc.poll() is None:
            proc.kill()
        seg.destroy()


def python_client(n_sync, n_async, batch):
    """A Python Endpoint against the C echo server: sync calls/s and pipelined req/s."""
    import xseg
    from archipelago.peer import Endpoint, Op
    name = f"xsegbench-cl-{os.getpid()}"
    seg = xseg.Segment.create(f"posix:{name}:4:8:64:12:4096")
    srv = subprocess.Popen([BENCH, "server", "-g", name, "-p", "2"])
    try:
        while seg.port_info(2)["state"] != "bound":
            time.sleep(0.01)
        with Endpoint(seg) as ep:
            t0 = time.perf_counter()
            for _ in range(n_sync):
                ep.call(2, Op.READ, "x", datalen=4096, size=4096).close()
            sync = n_sync / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(n_async // batch):
                reqs = [ep.prepare(Op.READ, "x", datalen=4096, size=4096)
                        for _ in range(batch)]
                for p in ep.submit_many(2, reqs):
                    p.result().close()
            pipelined = n_async // batch * batch / (time.perf_counter() - t0)
            ep.call(2, Op.PING, "stop").close()
        srv.wait(30)
        return sync, pipelined
    finally:
        if srv.poll() is None:
            srv.kill()
        seg.destroy()


def line(what, value, unit, target=None):
    goal = f"   (target {target:,}; {'met' if value >= target else 'MISSED'})" if target else ""
    print(f"  {what:<52} {value:>12,.1f} {unit}{goal}", flush=True)


def main():
    subprocess.run(["make", "-s", "-C", str(LIB), "all"], check=True)
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}", flush=True)
    print("C ping-pong between two processes (futex wake-ups, empty requests):")
    line("one at a time (1 in flight)",
         run([BENCH, "pingpong", "-n", "200000", "-b", "1"])["pingpong_b1"], "req/s")
    line("batched, 64 in flight", run([BENCH, "pingpong", "-n", "3000000", "-b", "64"])
         ["pingpong_b64"], "req/s")
    line("batched, 256 in flight", run([BENCH, "pingpong", "-n", "5000000", "-b", "256"])
         ["pingpong_b256"], "req/s", 1_000_000)
    print("Wake-up latency, one request, server asleep (2 ms between requests):")
    lat = run([BENCH, "latency", "-n", "2000", "-i", "2000"])
    for k in ("p50", "p99", "max"):
        line(f"round trip {k}", lat[f"wake_latency_{k}"], "us")
    print("Python echo peers, loaded by the C client (256 in flight):")
    t0 = time.monotonic()
    rate, rss = python_echo(RAW_ECHO, 1_000_000, 256)
    line("raw binding loop (accept/respond_many)", rate, "req/s", 100_000)
    line("  its peak RSS", rss / 1024, "MiB")
    print("Python peer framework, 512-byte WRITEs, loaded by the C client (256 in flight):")
    rate, rss, lat = python_echo(PEER_ECHO, 300_000, 256, "0", size=512, latency=True)
    line("handlers inline (nr_threads=0)", rate, "req/s", 100_000)
    line("  its peak RSS", rss / 1024, "MiB")
    for k in ("p50", "p99"):
        line(f"  wake-up round trip {k}, peer asleep (C client)", lat[f"wake_latency_{k}"],
             "us")
    rate, rss = python_echo(PEER_ECHO, 100_000, 256, "2", size=512)
    line("2 worker threads", rate, "req/s")
    line("  its peak RSS", rss / 1024, "MiB")
    print("Python client (archipelago.peer.Endpoint) against the C echo server, 4 KiB reads:")
    sync, piped = python_client(20_000, 200_000, 64)
    line("call() one at a time", sync, "req/s")
    line("submit_many(64) + result()", piped, "req/s")
    print(f"  (python part took {time.monotonic() - t0:.1f}s)")


if __name__ == "__main__":
    sys.path.insert(0, str(LIB))
    main()
