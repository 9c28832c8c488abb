#!/usr/bin/env python3
"""RadosStore vs Ceph's own `rados bench` on the same pool of a one-node Ceph.

Starts a private cluster (tools/ceph-cluster, memstore) under a temp dir, then per
pattern runs `rados bench` (the anchor) and the same load through RadosStore's aio
queue at the same concurrency, and prints MiB/s, IOPS and the ratio store/anchor:

  write-4M   48 x 4 MiB objects written whole, 16 in flight
  read-4M    the same objects read back, 16 in flight
  write-4K   4 KiB objects, 16 in flight (request rate)
  write-4K-leased  the same through a lease (generation guard in every op; no anchor)

Then the block path (issue 7's target: >= 0.8x RBD on every pattern): fio through
our nbdd serving a volume whose maps and blocks are in RADOS (the in-process peer
stack: vlmcd/mapperd/radosd code over RadosStore; "nbdd-rados" = [nbd] datapath =
peers, object I/O through the blocker role; "nbdd-rados-coloc" = datapath =
colocated, object I/O on nbdd's own RadosStore) vs `fio --ioengine=rbd` on an RBD
image of the same size in the same pool, on the four patterns of bench_nbd (4K
random read/write QD16, 1M sequential read/write QD8), interleaved, median of rounds.
A second anchor, "qemu-nbd-rbd", is qemu-nbd (Debian: qemu-block-extra, its rbd
driver) exporting that same RBD image over a unix socket (cache=none), driven by the
same fio nbd engine: what an off-the-shelf NBD server in front of librbd gets on
this machine (the NBD hop plus qemu-nbd's own costs: one main loop, so a floor for
what an NBD server can do, not a ceiling). Each line prints ours/rbd and
ours/qemu-nbd-rbd, and a line per pattern gives qemu-nbd-rbd/rbd.
A ceiling reference, "nbdkit-rados-ref": nbdkit (multi-threaded C NBD server, thread
model parallel) running bench/nbdkit_rados_ref.c, a plugin built here with cc that
serves its own objects of the same pool straight through librados (4 MiB objects,
sync rados_read/rados_write per piece, no maps, no Python); filled and driven like
nbdd, with ratio and CPU per request (nbdkit's process) printed the same way, plus
"ceiling: an ideal C NBD server over librados gets X.XXx rbd" per pattern: what an
NBD server over RADOS can get on this machine at all. REF=0 leaves it out; without
nbdkit, cc, nbdkit-plugin-dev or librados-dev it says why and goes on without it.
The RBD anchor runs twice per round: with librbd's default configuration (`rbd`:
rbd_cache = true, Pacific's writearound policy, writethrough until the first flush)
and with `rbd cache = false` in the client's ceph.conf (`rbd-nocache`); every ratio
is taken against the FASTER of the two per pattern (median IOPS), so a client-side
cache can never make the target easier. Each line gives the ratio of the medians and
the median of the per-round ratios (ours / that anchor in the same round, runs
seconds apart: robust to the load swinging between rounds); odd rounds run the
targets in reverse order. A target whose export had 4K random writes is rewritten whole
(1M writes) before its next run: those writes fragment the memstore OSD's objects and
slow every later request on them (the RBD image, written by rbd, rbd-nocache and
qemu-nbd-rbd, most of all), so each round starts from the same state.
CPU per request: each fio run's own CPU (getrusage of the waited child) and, for
our servers, the server process's CPU over the run from /proc/PID/task/*/stat,
per thread name ("exited" = threads gone by the end: nbdd's connection thread,
nbdkit's per-connection workers), in
us per request (median of the rounds).
Env: BENCH_ROUNDS (default 3), FIO_RUNTIME (s, default 4), FIO_SIZE (default 256M),
CEPH_BENCH_DIR (keep the cluster there), BLOCK_ONLY=1 (only the block path), PY_AIO=1
(also co-located with native_aio = no: python-rados' aio, for comparison), COLOC_ONLY=1
(no peers-datapath server), BASE_SRC=DIR (A/B: one more co-located server,
"nbdd-rados-coloc-base", run from another tree's src/archipelago, e.g. a
`git worktree add /tmp/rados-base COMMIT` with its extension built), NO_QEMU=1,
BENCH_PATTERNS=a,b (only these patterns, by label), REF=0 (no nbdkit-rados-ref).
"""
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "archipelago"))

from archipelago import process  # noqa: E402
from archipelago.store.rados import RadosStore  # noqa: E402

TOOL = ROOT / "tools" / "ceph-cluster"
MiB = 1 << 20
QD = 16
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FIO_RUNTIME = int(os.environ.get("FIO_RUNTIME", "4"))
FIO_SIZE = os.environ.get("FIO_SIZE", "256M")
# (target, [nbd] datapath, RadosStore data path); PY_AIO=1 adds co-located on
# python-rados' own aio (native_aio = no) to see what src/rados-aio buys
SERVERS = [("nbdd-rados", "peers", "native"), ("nbdd-rados-coloc", "colocated", "native")]
if os.environ.get("COLOC_ONLY"):
    SERVERS = SERVERS[1:]
if os.environ.get("PY_AIO"):
    SERVERS.append(("nbdd-rados-coloc-py", "colocated", "python"))
BASE_SRC = os.environ.get("BASE_SRC")
if BASE_SRC:
    SERVERS.append(("nbdd-rados-coloc-base", "colocated", "native"))
ANCHORS = ("rbd", "rbd-nocache")
STORAGE = {"rbd-nocache": "rbd", "qemu-nbd-rbd": "rbd"}   # targets sharing one image
PATTERNS = [("4k-randread-qd16", "randread", "4k", 16),
            ("4k-randwrite-qd16", "randwrite", "4k", 16),
            ("1m-read-qd8", "read", "1m", 8),
            ("1m-write-qd8", "write", "1m", 8)]
if os.environ.get("BENCH_PATTERNS"):        # e.g. 4k-randread-qd16,1m-write-qd8
    PATTERNS = [p for p in PATTERNS if p[0] in os.environ["BENCH_PATTERNS"].split(",")]
VOLUME_SERVER = """
import os, signal, sys, threading, time
from archipelago import client
parent = os.getppid()
def orphaned():                      # the bench was killed: do not outlive it
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)
threading.Thread(target=orphaned, daemon=True).start()
from archipelago.nbd.testing import serve
from archipelago.nbd.volume import VolumeProvider
from archipelago.store.rados import RadosStore
conf, pool, size, datapath, aio, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
mk = lambda ns: RadosStore(conf=conf, pool=pool, namespace=f"{ns}-{tag}",
                           native_aio=aio == "native")
if datapath == "colocated":
    from archipelago.nbd.colocated import local
    provider, c = local(mk("vol-data"), mk("vol-maps"))
else:
    c = client.local(mk("vol-data"), mk("vol-maps"))
    provider = VolumeProvider(connect=lambda _conf: c)
c.create("vm1", size)
with serve(providers=[provider]) as srv:
    print(srv.uri("vm1"), flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
"""


def rados_bench(env, pool, seconds, mode, block, max_objects=None):
    """MiB/s and IOPS of `rados bench` (write leaves its objects for seq)."""
    argv = ["rados", "-p", pool, "bench", str(seconds), mode, "-t", str(QD)]
    if mode == "write":
        argv += ["-b", str(block), "--no-cleanup", "--run-name", f"b{block}"]
        if max_objects:
            argv += ["--max-objects", str(max_objects)]
    else:
        argv += ["--run-name", f"b{block}"]
    out = process.run(argv, env=env, timeout=seconds + 120).stdout
    bw = float(re.search(r"Bandwidth \(MB/sec\):\s+([\d.]+)", out).group(1))
    iops = float(re.search(r"Average IOPS:\s+([\d.]+)", out).group(1))
    return bw, iops


def cleanup(env, pool, block):
    process.run(["rados", "-p", pool, "cleanup", "--run-name", f"b{block}"], env=env,
                timeout=120, check=False)


def store_write(store, names, data, lease=None):
    t0 = time.perf_counter()
    futs = [store.aio_write(n, 0, data, lease=lease) for n in names]
    for f in futs:
        f.result()
    dt = time.perf_counter() - t0
    return len(names) * len(data) / MiB / dt, len(names) / dt


def store_read(store, names, size):
    bufs = [bytearray(size) for _ in range(QD * 2)]
    t0 = time.perf_counter()
    futs = [store.aio_readinto(n, 0, memoryview(bufs[i % len(bufs)]))
            for i, n in enumerate(names)]
    for f in futs:
        f.result()
    dt = time.perf_counter() - t0
    return len(names) * size / MiB / dt, len(names) / dt


def best(results):
    return max(results, key=lambda r: r[0])


def row(name, ours, anchor):
    ratio = f"{ours[1] / anchor[1]:.2f}x" if anchor else "-"
    a = f"{anchor[0]:9.1f} MiB/s {anchor[1]:8.0f} IOPS" if anchor else " " * 29
    print(f"{name:18} RadosStore {ours[0]:9.1f} MiB/s {ours[1]:8.0f} IOPS | rados bench "
          f"{a} | ratio {ratio}", flush=True)


def fio(engine_args, rw, bs, qd, runtime, env):
    """(MiB/s, IOPS, fio's own CPU in us per request)."""
    argv = ["fio", "--name=bench", *engine_args, f"--rw={rw}", f"--bs={bs}",
            f"--iodepth={qd}", f"--size={FIO_SIZE}", "--output-format=json"]
    if runtime:
        argv += [f"--runtime={runtime}", "--time_based"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = process.run(argv, env=env, timeout=300 + runtime).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read"] if "read" in rw else job["write"]
    ios = max(side["total_ios"], 1)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / ios * 1e6
    return side["bw_bytes"] / MiB, side["iops"], cpu, ios


def threads_cpu(pid):
    """{tid: (name, CPU seconds)} of a live process, and its total CPU seconds
    (exited threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                st = f.read()
        except OSError:
            continue                    # gone in between
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[t] = (re.sub(r"[-_]?\d+$", "", name), (int(f[11]) + int(f[12])) / tick)
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return out, (int(f[11]) + int(f[12])) / tick


def cpu_split(before, after, ios):
    """us per request by thread name between two threads_cpu samples."""
    (t0, tot0), (t1, tot1) = before, after
    per, live = {}, 0.0
    for tid, (name, sec) in t1.items():
        d = sec - t0.get(tid, (name, 0.0))[1]
        per[name] = per.get(name, 0.0) + d
        live += d
    per["exited"] = max(tot1 - tot0 - live, 0.0)
    per["total"] = tot1 - tot0
    return {k: v / ios * 1e6 for k, v in per.items()}


def start_qemu_nbd(d, pool, env):
    """qemu-nbd serving the RBD image bench-img over a unix socket: (proc, uri), or
    (None, None) without qemu-nbd or its rbd driver (qemu-block-extra)."""
    if not shutil.which("qemu-nbd"):
        print("qemu-nbd not installed: no qemu-nbd-rbd anchor")
        return None, None
    sock = d / "qemu-nbd.sock"
    log = open(d / "qemu-nbd.log", "w")
    proc = process.spawn(["qemu-nbd", "-k", sock, "-f", "raw", "-x", "img", "--persistent",
                          "--shared=8", "--cache=none", "--aio=threads",
                          f"rbd:{pool}/bench-img:conf={d / 'ceph.conf'}:id=admin"],
                         env=env, stdout=log, stderr=log)
    log.close()
    if not wait_socket(proc, sock, d / "qemu-nbd.log",
                       "qemu-nbd did not start (rbd driver missing? qemu-block-extra): "):
        return None, None
    return proc, f"nbd+unix:///img?socket={sock}"


def wait_socket(proc, sock, logpath, why):
    """Wait up to 30 s for server `proc` to create unix socket `sock`: true, or false
    with the server ended and `why` printed with the tail of its log."""
    deadline = time.monotonic() + 30
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            print(why + logpath.read_text().strip()[-300:])
            return False
        time.sleep(0.05)
    return True


REF_SRC = Path(__file__).resolve().parent / "nbdkit_rados_ref.c"
REF = "nbdkit-rados-ref"


def start_nbdkit_ref(d, pool, env, nbytes):
    """nbdkit running bench/nbdkit_rados_ref.c (built here with cc) over objects
    "nbdref.<16 hex>" of the pool, on a unix socket: (proc, uri), or (None, None) with
    the reason printed (REF=0, no nbdkit / cc / nbdkit-plugin-dev / librados-dev)."""
    if os.environ.get("REF", "1") == "0":
        return None, None
    for tool, pkg in (("nbdkit", "nbdkit"), ("cc", "build-essential")):
        if not shutil.which(tool):
            print(f"{tool} not installed ({pkg}): no {REF} contender")
            return None, None
    so = d / "nbdkit_rados_ref.so"
    r = process.run(["cc", "-O2", "-Wall", "-fPIC", "-shared", "-o", so, REF_SRC, "-lrados"],
                    timeout=120, check=False)
    if r.rc != 0:
        print(f"{REF} not built (nbdkit-plugin-dev, librados-dev?): "
              + (r.stderr or r.stdout).strip()[-300:])
        return None, None
    sock = d / "nbdkit-ref.sock"
    log = open(d / "nbdkit-ref.log", "w")
    proc = process.spawn(["nbdkit", "-f", "--exit-with-parent", "-U", sock, so,
                          f"conf={d / 'ceph.conf'}", f"pool={pool}", "prefix=nbdref",
                          f"size={nbytes}"], env=env, stdout=log, stderr=log)
    log.close()
    if not wait_socket(proc, sock, d / "nbdkit-ref.log", f"{REF}: nbdkit did not start: "):
        return None, None
    return proc, f"nbd+unix:///?socket={sock}"


def block_path(d, pool, env):
    """fio nbd on a RADOS-backed volume vs fio rbd on an RBD image, same pool."""
    if not shutil.which("rbd"):
        print("rbd not installed: block-path comparison skipped")
        return
    size = FIO_SIZE
    process.run(["ceph", "osd", "pool", "application", "enable", pool, "rbd",
                 "--yes-i-really-mean-it"], env=env, timeout=60, check=False)
    process.run(["rbd", "create", "-p", pool, "--size", size, "bench-img"], env=env,
                timeout=120)
    qemu = ref = None
    nbytes = int(size[:-1]) << {"M": 20, "G": 30}[size[-1]]
    # the second RBD anchor: librbd with its client cache off
    conf = (d / "ceph.conf").read_text()
    (d / "ceph-rbd-nocache.conf").write_text(
        conf.replace("[client]\n", "[client]\nrbd cache = false\n", 1))
    nocache_env = dict(env, CEPH_CONF=str(d / "ceph-rbd-nocache.conf"))
    servers, targets, pids = [], {}, {}
    try:
        for name, dp, aio in SERVERS:
            senv = env
            if name.endswith("-base"):
                senv = dict(env, PYTHONPATH=BASE_SRC)
            server = subprocess.Popen([sys.executable, "-c", VOLUME_SERVER, str(d / "ceph.conf"),
                                       pool, str(nbytes), dp, aio, name], stdout=subprocess.PIPE,
                                      text=True, env=senv)
            servers.append(server)
            uri = server.stdout.readline().strip()
            if not uri:
                raise RuntimeError("the RADOS volume nbd server did not start")
            targets[name] = (["--ioengine=nbd", f"--uri={uri}"], env)
            pids[name] = server.pid
        rbd_args = ["--ioengine=rbd", "--clientname=admin", f"--pool={pool}",
                    "--rbdname=bench-img"]
        targets["rbd"] = (rbd_args, env)
        targets["rbd-nocache"] = (rbd_args, nocache_env)
        if not os.environ.get("NO_QEMU"):
            qemu, uri = start_qemu_nbd(d, pool, env)
            if uri:
                targets["qemu-nbd-rbd"] = (["--ioengine=nbd", f"--uri={uri}"], env)
        ref, uri = start_nbdkit_ref(d, pool, env, nbytes)
        if uri:
            targets[REF] = (["--ioengine=nbd", f"--uri={uri}"], env)
            pids[REF] = ref.pid
        contenders = [name for name, _dp, _aio in SERVERS] + ([REF] if ref else [])
        for name, (args, tenv) in targets.items():   # fill all, so reads hit real data
            if name != "rbd-nocache":
                fio(args, "write", "1m", 8, 0, tenv)
        dirty = {}      # storage -> randomly written since its last whole rewrite
        print(f"\nblock path: fio on a {size} volume, {FIO_RUNTIME}s per run, median of "
              f"{ROUNDS} interleaved rounds; load {os.getloadavg()[0]:.1f}")
        for label, rw, bs, qd in PATTERNS:
            got = {name: [] for name in targets}
            cpu = {name: [] for name in pids}
            order = list(targets)
            for rnd in range(ROUNDS):
                # odd rounds in reverse: a drift within the run hits every target alike
                for name in (order if rnd % 2 == 0 else order[::-1]):
                    args, tenv = targets[name]
                    # 4K random writes fragment the memstore OSD's objects (a buffer
                    # list piece per write), which slows every later request on them
                    # (4K writes measured: 3.5k -> 1.5k IOPS over ~40 s of writes):
                    # rewrite the export whole first, so every round starts alike
                    if dirty.pop(STORAGE.get(name, name), False):
                        fio(args, "write", "1m", 8, 0, tenv)
                    before = threads_cpu(pids[name]) if name in pids else None
                    r = fio(args, rw, bs, qd, FIO_RUNTIME, tenv)
                    if rw == "randwrite":
                        dirty[STORAGE.get(name, name)] = True
                    got[name].append(r)
                    if before is not None:
                        cpu[name].append(cpu_split(before, threads_cpu(pids[name]), r[3]))
            med = {n: tuple(statistics.median(r[i] for r in v) for i in range(3))
                   for n, v in got.items()}
            a_name = max(ANCHORS, key=lambda n: med[n][1])
            rbd, qn = med[a_name], med.get("qemu-nbd-rbd")
            print(f"{label:18} anchors: rbd {med['rbd'][1]:.0f} IOPS (fio CPU "
                  f"{med['rbd'][2]:.1f} us/req), rbd-nocache {med['rbd-nocache'][1]:.0f} IOPS "
                  f"(fio CPU {med['rbd-nocache'][2]:.1f} us/req): ratios against {a_name}; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            for name in contenders:
                ours = med[name]
                vs_qemu = f" | {ours[1] / qn[1]:.2f}x qemu-nbd-rbd" if qn else ""
                # the same pair of runs each round (seconds apart), so a load swing
                # between rounds cancels out; against the same (faster) anchor
                paired = statistics.median(
                    o[1] / a[1] for o, a in zip(got[name], got[a_name], strict=True))
                print(f"{label:18} {name:21} {ours[0]:8.1f} MiB/s {ours[1]:8.0f} IOPS | "
                      f"{a_name} {rbd[0]:8.1f} MiB/s {rbd[1]:8.0f} IOPS | ratio "
                      f"{ours[1] / rbd[1]:.2f}x, per round {paired:.2f}x (target >= 0.8x)"
                      f"{vs_qemu}", flush=True)
                keys = sorted({k for c in cpu[name] for k in c},
                              key=lambda k: -statistics.median(c.get(k, 0) for c in cpu[name]))
                print(f"{label:18} {name:21} CPU us/req: fio {ours[2]:.1f}; server " + ", ".join(
                    f"{k} {statistics.median(c.get(k, 0.0) for c in cpu[name]):.1f}"
                    for k in keys if statistics.median(c.get(k, 0.0) for c in cpu[name]) >= 0.5
                    or k == "total"), flush=True)
            if ref:
                coloc = med.get("nbdd-rados-coloc")
                of_it = f"; nbdd-rados-coloc gets {coloc[1] / med[REF][1]:.2f}x of it" \
                    if coloc else ""
                print(f"{label:18} ceiling: an ideal C NBD server over librados gets "
                      f"{med[REF][1] / rbd[1]:.2f}x rbd ({a_name}{of_it})", flush=True)
            if qn:
                print(f"{label:18} {'qemu-nbd-rbd':21} {qn[0]:8.1f} MiB/s {qn[1]:8.0f} IOPS | "
                      f"{qn[1] / rbd[1]:.2f}x {a_name} (an NBD server over librbd)", flush=True)
            print(f"{label:18} rounds (IOPS): " + "; ".join(
                f"{n} " + " ".join(f"{r[1]:.0f}" for r in v) for n, v in got.items()),
                flush=True)
    finally:
        for proc in (qemu, ref):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in servers:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main():
    if not shutil.which("ceph-osd"):
        print("ceph-osd not installed: skipping (tools/deps-debian.txt)")
        return 0
    d = Path(os.environ.get("CEPH_BENCH_DIR") or tempfile.mkdtemp(prefix="bench-ceph-"))
    pool = "bench"
    env = dict(os.environ, POOL=pool, STORE_BYTES=str(3 << 30), CEPH_CONF=str(d / "ceph.conf"))
    process.run([TOOL, "start", d], env=env, timeout=300)
    # Killed before the finally below runs: a watchdog stops the cluster anyway.
    if not os.environ.get("CEPH_BENCH_DIR"):
        subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; "
                          f"done; '{TOOL}' stop '{d}' >/dev/null 2>&1; rm -rf '{d}'"],
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = None
    try:
        if os.environ.get("BLOCK_ONLY"):
            if shutil.which("fio"):
                block_path(d, pool, env)
            return 0
        store = RadosStore(conf=d / "ceph.conf", pool=pool, queue_depth=QD)
        n4m, n4k = 48, 2000
        big, small = os.urandom(4 * MiB), os.urandom(4096)
        print(f"one-node Ceph (memstore), pool {pool}, {QD} requests in flight, "
              f"best of {ROUNDS}")

        # Anchor and store alternate round by round, so load from other work on the
        # machine hits both alike; the best round of each is reported.
        names = [f"w4m.{j}" for j in range(n4m)]
        aw, ar, ow, orr = [], [], [], []
        for _ in range(ROUNDS):
            aw.append(rados_bench(env, pool, 30, "write", 4 * MiB, n4m))
            ar.append(rados_bench(env, pool, 30, "seq", 4 * MiB))
            cleanup(env, pool, 4 * MiB)
            ow.append(store_write(store, names, big))
            orr.append(store_read(store, names, 4 * MiB))
            for n in names:
                store.delete(n)
        row("write-4M", best(ow), best(aw))
        row("read-4M", best(orr), best(ar))

        names = [f"w4k.{j}" for j in range(n4k)]
        lease = store.lease_acquire("bench-vol", "bench", 600)
        ak, ok, okl = [], [], []
        for _ in range(ROUNDS):
            ak.append(rados_bench(env, pool, 3, "write", 4096))
            cleanup(env, pool, 4096)
            ok.append(store_write(store, names, small))
            okl.append(store_write(store, names, small, lease=lease))
        store.lease_release(lease)
        ok, okl = best(ok), best(okl)
        row("write-4K", ok, best(ak))
        row("write-4K-leased", okl, None)
        print(f"lease guard cost on 4K writes: {okl[1] / ok[1]:.2f}x the unleased rate")
        store.close()
        store = None
        if shutil.which("fio"):
            block_path(d, pool, env)
    finally:
        if store is not None:
            store.close()
        process.run([TOOL, "stop", d], env=env, timeout=300, check=False)
        if not os.environ.get("CEPH_BENCH_DIR"):
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
