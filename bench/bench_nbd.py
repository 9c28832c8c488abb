#!/usr/bin/env python3
"""NBD data path: our nbdd vs nbdkit's file plugin vs qemu-nbd, same file, same run.

    .venv/bin/python bench/bench_nbd.py [--runtime 4] [--rounds 3] [--size 1G] [--json F]
                                        [--extra NAME=URI ...] [--no-map]

fio --ioengine=nbd on four patterns — 4K random read QD16, 4K random write
QD16, 1M sequential read QD8, 1M sequential write QD8 — against each server in
turn, all serving one raw file on the same disk; fio runs one at a time,
interleaved over several rounds, and each figure is the median of its rounds.
Prints each result and our ratio to each anchor
(targets, DESIGN §8: >= 1.0x qemu-nbd on all four, >= 0.8x nbdkit on 1M).
Also: the peak RSS of our nbdd and its RSS per idle connection, and the time
`map` takes to give a usable block device (FUSE+loop here; needs root), median
of several runs.
Also two volume targets on a real node (segment, peer processes, FileStore on
the same disk; --no-volume skips them; --datapath picks one):
  "vol-peers": `archipelago start` with [nbd] datapath = peers (nbdd -> vlmcd ->
               mapperd/blockerb peers over xseg; the original layout);
  "vol-coloc": `archipelago start` with [nbd] datapath = colocated, the default
               (nbdd is the vlmcd role's process, object I/O on its own FileStore;
               nbd/colocated.py).
Each volume is filled first (1M writes), as the raw file is.
--extra adds more targets by URI (e.g. a node's nbdd) to the table.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = [("4k-randread-qd16", "randread", "4k", 16),
            ("4k-randwrite-qd16", "randwrite", "4k", 16),
            ("1m-read-qd8", "read", "1m", 8),
            ("1m-write-qd8", "write", "1m", 8)]
EXPORT = "bench.raw"
VOLUME_TARGETS = {"peers": "vol-peers", "colocated": "vol-coloc"}


def wait_for(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.02)


def start_ours(work, file):
    sock = work / "ours.sock"
    proc = subprocess.Popen([sys.executable, "-m", "archipelago.nbd", "--listen", f"unix:{sock}",
                             "--exports-dir", str(file.parent), "--no-volumes"],
                            env={**os.environ, "ARCHIPELAGO_RUN_DIR": str(work / "run")})
    wait_for(sock, proc)
    return proc, f"nbd+unix:///{EXPORT}?socket={sock}"


def start_nbdkit(work, file):
    sock = work / "nbdkit.sock"
    proc = subprocess.Popen(["nbdkit", "--foreground", "-U", str(sock), "--exportname",
                             EXPORT, "file", str(file)])
    wait_for(sock, proc)
    return proc, f"nbd+unix:///{EXPORT}?socket={sock}"


class _NodeNbdd:
    """The nbdd of a real node (`archipelago start` runs it); stop() stops the node."""

    def __init__(self, node):
        self.node = node
        self.pid = node.pid("nbdd")
        self.args = ["archipelago-nbdd"]

    def poll(self):
        return None if Path(f"/proc/{self.pid}").exists() else 0

    def terminate(self):
        self.node.stop()

    kill = terminate

    def wait(self, timeout=None):
        return 0


def start_node_volume(work, size, datapath):
    """A node started by `archipelago start` with [nbd] datapath = `datapath` (peers on
    a segment, FileStore under `work`, nbdd on a Unix socket), serving volume vm1 of
    `size` bytes, filled."""
    sys.path.insert(0, str(ROOT / "tests" / "lib"))
    from archipelago_node import Node
    sock = work / f"vol-{datapath}.sock"
    node = Node(work, f"node-{datapath}", shared=work / f"shared-{datapath}",
                settings={"nbd": {"datapath": datapath, "listen": f"unix:{sock}"},
                          "XSEG": {"segment_size": 256}})
    try:
        node.start()
        node.vlmc("create", "vm1", "--size", f"{size >> 20}M")
        srv = _NodeNbdd(node)
    except BaseException:
        node.stop()
        raise
    uri = f"nbd+unix:///vm1?socket={sock}"
    try:
        subprocess.run(["fio", "--name=fill", "--ioengine=nbd", f"--uri={uri}", "--rw=write",
                        "--bs=1m", "--iodepth=8", f"--size={size}", "--output-format=terse"],
                       check=True, capture_output=True)
    except BaseException:
        stop(srv)
        raise
    return srv, uri


def start_qemu_nbd(work, file):
    sock = work / "qemu.sock"
    proc = subprocess.Popen(["qemu-nbd", "-k", str(sock), "-f", "raw", "-x", EXPORT,
                             "--persistent", "--shared=8", "--cache=writeback", str(file)])
    wait_for(sock, proc)
    return proc, f"nbd+unix:///{EXPORT}?socket={sock}"


def fio(uri, rw, bs, qd, runtime, size):
    out = subprocess.run(["fio", "--name=bench", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}",
                          f"--bs={bs}", f"--iodepth={qd}", f"--size={size}",
                          f"--runtime={runtime}", "--time_based", "--output-format=json"],
                         capture_output=True, text=True, check=True).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read"] if "read" in rw else job["write"]
    return {"iops": side["iops"], "mbps": side["bw_bytes"] / 1e6}


def peak_rss_mib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_connection_kib(proc, uri, n=200):
    """RSS growth of nbdd per open, idle connection (each has done one 4K read)."""
    from archipelago.nbd.client import Client
    before = rss_mib(proc.pid)
    clients = []
    try:
        for _ in range(n):
            c = Client.connect_uri(uri)
            c.go()
            c.read(0, 4096)
            clients.append(c)
        time.sleep(0.5)
        return (rss_mib(proc.pid) - before) * 1024 / n
    finally:
        for c in clients:
            c.close()


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def map_times(work, file, runs=7):
    """Median seconds for map to a usable device: in-process (Mapper API) and
    `vlmc map` (a new interpreter, as an operator or a script runs it)."""
    if os.geteuid() != 0 or not shutil.which("nbdfuse"):
        return None
    sys.path.insert(0, str(ROOT / "src" / "kernel"))
    from archipelago import config
    from archipelago.nbd.testing import serve
    from archipelago_kernel.mapper import Mapper
    run_dir = work / "maprun"
    run_dir.mkdir()
    cfg = config.from_text(f"[node]\nrun_dir = {run_dir}\n")
    api, cli = [], []
    env = {**os.environ, "ARCHIPELAGO_RUN_DIR": str(run_dir)}
    with serve(exports_dir=file.parent, status_path=str(run_dir / "nbdd.json")):
        mapper = Mapper(cfg, run_dir=run_dir, method="fuse")
        for _ in range(runs):
            t0 = time.perf_counter()
            dev = mapper.map(EXPORT).device
            with open(dev, "rb") as f:           # usable: the first sector reads
                f.read(512)
            api.append(time.perf_counter() - t0)
            mapper.unmap(dev)
            t0 = time.perf_counter()
            dev = subprocess.run([sys.executable, "-m", "archipelago.cli.vlmc", "map",
                                  "--method", "fuse", EXPORT], capture_output=True, text=True,
                                 env=env, check=True).stdout.strip()
            with open(dev, "rb") as f:
                f.read(512)
            cli.append(time.perf_counter() - t0)
            mapper.unmap(dev)
    return statistics.median(api), statistics.median(cli)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", type=int, default=4, help="seconds per fio run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per server and pattern")
    ap.add_argument("--size", default="1G", help="size of the raw file")
    ap.add_argument("--dir", default="/var/tmp", help="where the raw file lives")
    ap.add_argument("--extra", action="append", default=[], help="NAME=URI, another target")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--no-map", action="store_true", help="skip the map-time measurement")
    ap.add_argument("--no-volume", action="store_true", help="skip the volume targets")
    ap.add_argument("--datapath", action="append", choices=("peers", "colocated"),
                    help="volume target(s) to run (default: both)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only these targets (names as in the table)")
    args = ap.parse_args()
    for tool in ("fio", "nbdkit", "qemu-nbd"):
        if not shutil.which(tool):
            print(f"bench_nbd: {tool} is not installed", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench-nbd-", dir=args.dir))
    try:
        file = work / "exports" / EXPORT
        file.parent.mkdir()
        subprocess.run(["fio", "--name=fill", f"--filename={file}", "--rw=write", "--bs=1m",
                        f"--size={args.size}", "--refill_buffers", "--output-format=terse"],
                       check=True, capture_output=True)
        targets = [("nbdd", start_ours), ("nbdkit", start_nbdkit), ("qemu-nbd", start_qemu_nbd)]
        procs, uris = {}, {}
        try:
            for name, start in targets:
                procs[name], uris[name] = start(work, file)
            for dp in ([] if args.no_volume else args.datapath or ["peers", "colocated"]):
                name = VOLUME_TARGETS[dp]
                try:
                    procs[name], uris[name] = start_node_volume(work, file.stat().st_size, dp)
                except (RuntimeError, subprocess.CalledProcessError, AssertionError) as e:
                    print(f"({name} skipped: {e})")
            for spec in args.extra:
                name, _, uri = spec.partition("=")
                uris[name] = uri
            # Rounds interleave the servers so load drift on a shared host hits all
            # of them alike; each figure is the median of its rounds.
            nbdd_uri = uris["nbdd"]
            if args.only:
                uris = {n: u for n, u in uris.items()
                        if n in args.only or n in ("nbdkit", "qemu-nbd")}
            runs = {n: {p: [] for p, *_ in PATTERNS} for n in uris}
            for p, rw, bs, qd in PATTERNS:
                for _ in range(args.rounds):
                    for name, uri in uris.items():
                        runs[name][p].append(fio(uri, rw, bs, qd, args.runtime, args.size))
            results = {n: {p: {k: statistics.median(r[k] for r in rs) for k in ("iops", "mbps")}
                           for p, rs in per.items()} for n, per in runs.items()}
            rss = {n: peak_rss_mib(p.pid) for n, p in procs.items()
                   if n == "nbdd" or n.startswith("vol-")}
            per_conn = idle_connection_kib(procs["nbdd"], nbdd_uri)
        finally:
            for proc in procs.values():
                stop(proc)
        report(results, rss)
        print(f"nbdd RSS per idle connection: {per_conn:.0f} KiB "
              f"(1,000 connections ~ {per_conn * 1000 / 1024:.0f} MiB)")
        maps = None if args.no_map else map_times(work, file)
        if maps:
            print(f"\nmap to a usable device (FUSE+loop), median of 7: "
                  f"{maps[0] * 1000:.0f} ms (API), {maps[1] * 1000:.0f} ms (`vlmc map`, incl. "
                  f"Python start-up); target < 200 ms")
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "nbdd_peak_rss_mib": rss,
                                                   "idle_connection_kib": per_conn,
                                                   "map_seconds": maps}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(results, rss):
    names = list(results)
    ours = [n for n in ("nbdd", *VOLUME_TARGETS.values()) if n in results]
    ratio_cols = [(o, a) for o in ours for a in ("nbdkit", "qemu-nbd")]
    print(f"{'pattern':<18}" + "".join(f"{n:>16}" for n in names)
          + "".join(f"{o + '/' + a:>22}" for o, a in ratio_cols))
    for p, _, bs, _ in PATTERNS:
        key = "iops" if bs == "4k" else "mbps"
        unit = "IOPS" if bs == "4k" else "MB/s"
        cells = [f"{results[n][p][key]:>10.0f} {unit}" for n in names]
        ratios = [results[o][p]["iops"] / results[a][p]["iops"] if results[a][p]["iops"]
                  else float("nan") for o, a in ratio_cols]
        print(f"{p:<18}" + "".join(f"{c:>16}" for c in cells)
              + "".join(f"{r:>21.2f}x" for r in ratios))
    for n, r in (rss or {}).items():
        if r is not None:
            print(f"{'' if n != 'nbdd' else chr(10)}{n} (nbdd process) peak RSS: {r:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
