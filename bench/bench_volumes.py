#!/usr/bin/env python3
"""The volume engine on a FileStore on disk (no peers): snapshot and clone latency of
thin volumes (1 GiB, 100 GiB, 10 TiB) next to `qemu-img create -b` (qcow2 backing
file) and `cp --reflink=auto` of a sparse file; diff time for 1% vs 0.01% changed;
dedup of 20 clones of a hashed image each with 1% rewritten; engine write/read
throughput of 1 GiB vs `cp` on the same disk; RSS with 1,000 open 100 GiB volumes.

    .venv/bin/python bench/bench_volumes.py [--image-mib 1024] [--diff-gib 100]

Everything lives under one temp dir in BENCH_DIR (default /var/tmp), removed at exit.
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "archipelago"))

from archipelago import process  # noqa: E402
from archipelago.store.file import FileStore  # noqa: E402
from archipelago.volume import VolumeEngine  # noqa: E402

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


def ms(seconds):
    return f"{seconds * 1000:8.2f} ms"


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


class Times:
    """Median and minimum of several runs (the minimum is the steadier figure on a
    shared, loaded machine)."""

    def __init__(self, samples):
        self.median, self.min = statistics.median(samples), min(samples)

    def __str__(self):
        return f"{self.median * 1000:6.2f}/{self.min * 1000:5.2f}"


def median_time(fn, rounds):
    return Times([timed(fn, i)[0] for i in range(rounds)])


# -- snapshot / clone -----------------------------------------------------------------------
def bench_snapshots(work, rounds):
    print(f"snapshot and clone of thin volumes (median of {rounds}; durable FileStore; "
          "sizes interleaved so that disk noise hits them alike)")
    store = FileStore(work / "snapstore")
    eng = VolumeEngine(store, owner="bench:snap")
    qemu = process.which("qemu-img")
    sizes = (("1 GiB", GiB), ("100 GiB", 100 * GiB), ("10 TiB", 10 * TiB))
    samples = {label: {"snap": [], "clone": [], "qcow": [], "cp": []} for label, _ in sizes}
    for label, size in sizes:
        name = "v" + label.replace(" ", "")
        eng.create(name, size)
        for off in (0, size // 2, size - 4096):       # full-depth paths in the map
            eng.write(name, off, b"x" * 4096)
        eng.open(name)
        if qemu:
            process.run([qemu, "create", "-q", "-f", "qcow2", str(work / f"{name}.qcow2"),
                         str(size)])
        with open(work / f"{name}.raw", "wb") as f:
            f.truncate(size)
            for off in (0, size // 2, size - 4096):
                f.seek(off)
                f.write(b"x" * 4096)
    for i in range(rounds):
        for label, _size in sizes:
            name = "v" + label.replace(" ", "")
            got = samples[label]
            got["snap"].append(timed(eng.snapshot, name, f"s{i}")[0])
            got["clone"].append(timed(eng.clone, f"{name}@s{i}", f"{name}c{i}")[0])
            if qemu:
                got["qcow"].append(timed(process.run, [
                    qemu, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(work / f"{name}.qcow2"), str(work / f"ov{name}{i}.qcow2")])[0])
            got["cp"].append(timed(process.run, [
                "cp", "--reflink=auto", "--sparse=always", str(work / f"{name}.raw"),
                str(work / "cp.raw")], timeout=600)[0])
            (work / "cp.raw").unlink()
    rows = [(label, Times(samples[label]["snap"]), Times(samples[label]["clone"]),
             Times(samples[label]["qcow"]) if qemu else None, Times(samples[label]["cp"]))
            for label, _ in sizes]
    print("  times in ms, median/min")
    print(f"  {'size':>8} {'snapshot':>12} {'clone':>12} {'qcow2 -b':>12} {'cp reflink':>12}")
    for label, snap, clone, qcow, reflink in rows:
        print(f"  {label:>8} {snap!s:>12} {clone!s:>12} {(str(qcow) if qcow else 'n/a'):>12}"
              f" {reflink!s:>12}")
    big, small = rows[-1], rows[0]
    print(f"  10 TiB / 1 GiB (min): snapshot {big[1].min / small[1].min:.2f}, clone "
          f"{big[2].min / small[2].min:.2f} (flat in size = ~1)")
    if big[3]:
        print(f"  10 TiB clone vs qcow2 backing file: {big[2].min / big[3].min:.2f}x; "
              f"vs cp --reflink=auto of a sparse file: {big[2].min / big[4].min:.2f}x")
    eng.shutdown()
    store.close()


# -- diff -------------------------------------------------------------------------------------
def bench_diff(work, gib):
    size = gib * GiB
    osize = 4 * MiB
    print(f"\ndiff of a {gib} GiB volume (every object allocated; 64 KiB scattered writes)")
    # Set-up only: no fsync (like cache=unsafe); diff itself only reads.
    store = FileStore(work / "diffstore", durable=False)
    eng = VolumeEngine(store, owner="bench:diff")
    eng.create("d", size, object_size=osize)
    leaf_span = 512 * osize
    for off in range(0, size, leaf_span):            # allocate every object in the map
        eng.map_write("d", off, min(leaf_span, size - off))
    eng.snapshot("d", "a")
    rnd = random.Random(5)
    chunks = size // (64 * KiB)
    results = []
    for label, frac, snap in (("1%", 0.01, "b"), ("0.01%", 0.0001, "c")):
        n = max(1, int(chunks * frac))
        _, _ = timed(lambda n=n: [eng.map_write("d", c * 64 * KiB, 64 * KiB)
                                      for c in rnd.sample(range(chunks), n)])
        eng.snapshot("d", snap)
        results.append((label, n, snap))
    prev = "a"
    rows = []
    for label, n, snap in results:
        cold = VolumeEngine(store, owner="bench:diff-cold")       # no cached map nodes
        t_cold, ranges = timed(cold.diff, f"d@{prev}", f"d@{snap}")
        t_warm, _ = timed(cold.diff, f"d@{prev}", f"d@{snap}")
        changed = sum(r[1] for r in ranges)
        rows.append((label, n, t_cold, t_warm, changed))
        prev = snap
    print(f"  {'changed':>8} {'writes':>7} {'diff cold':>11} {'diff warm':>11} "
          f"{'diff bytes':>12} {'of volume':>9}")
    for label, n, t_cold, t_warm, changed in rows:
        print(f"  {label:>8} {n:7d} {ms(t_cold)} {ms(t_warm)} {changed:12d} "
              f"{changed / size * 100:8.4f}%")
    print(f"  time ratio 1% / 0.01%: {rows[0][2] / rows[1][2]:.1f} "
          f"(change ratio {rows[0][1] / rows[1][1]:.0f}; a full scan would be ~1)")
    eng.shutdown()
    store.close()
    shutil.rmtree(work / "diffstore")


# -- dedup and throughput ---------------------------------------------------------------------
def bench_dedup(work, mib):
    size = mib * MiB
    print(f"\ndedup: 20 clones of a hashed {mib} MiB image, each with 1% rewritten "
          "(scattered 64 KiB writes); durable FileStore")
    store = FileStore(work / "dedupstore")
    eng = VolumeEngine(store, owner="bench:dedup", gc_grace=0)
    eng.create("src", size)
    src = work / "image.raw"
    rnd = random.Random(9)
    with open(src, "wb") as f:
        for _ in range(size // MiB):
            f.write(rnd.randbytes(MiB))
    os.sync()
    # Both sides include making the data durable (the engine flushes at the end).
    t_cp, _ = timed(lambda: (process.run(["cp", str(src), str(work / "copy.raw")],
                                         timeout=600), os.sync()))

    def import_image():
        with open(src, "rb") as f:
            off = 0
            while chunk := f.read(4 * MiB):
                eng.write("src", off, chunk)
                off += len(chunk)
        eng.flush("src")
    t_write, _ = timed(import_image)
    def export_image():
        for off in range(0, size, 4 * MiB):
            eng.read("src", off, 4 * MiB)
    t_read, _ = timed(export_image)
    print(f"  engine write {size / t_write / MiB:7.1f} MiB/s, read {size / t_read / MiB:7.1f} "
          f"MiB/s; cp+sync {size / t_cp / MiB:7.1f} MiB/s (write/cp time ratio "
          f"{t_write / t_cp:.2f})")
    eng.snapshot("src", "s")
    t_hash, image = timed(eng.hash, "src@s")
    eng.remove("src@s")
    eng.remove("src")
    eng.gc()
    base = store.info().used
    clones = 20
    n = max(1, size // 100 // (64 * KiB))
    payload = rnd.randbytes(64 * KiB)
    t_clones, _ = timed(lambda: [
        (eng.clone(image, f"vm{i}"),
         [eng.write(f"vm{i}", c * 64 * KiB, payload)
          for c in rnd.sample(range(size // (64 * KiB)), n)]) for i in range(clones)])
    eng.flush()
    used = store.info().used
    logical = size * (clones + 1)
    print(f"  hash {t_hash:.2f} s; image stored {base / MiB:.1f} MiB; 20 clones x {n} "
          f"writes in {t_clones:.2f} s")
    print(f"  stored {used / GiB:.3f} GiB for {logical / GiB:.1f} GiB logical "
          f"({used / size:.3f}x the image; target <= 1.25 GiB for 1 GiB) "
          f"dedup ratio {logical / used:.1f}:1")
    eng.shutdown()
    store.close()


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def bench_open_volumes(work, count):
    print(f"\nmemory: {count} open 100 GiB volumes, 20 scattered 4 KiB writes each")
    store = FileStore(work / "openstore", durable=False)
    eng = VolumeEngine(store, owner="bench:open", lease_ttl=0)
    rnd = random.Random(3)
    before = rss_mib()
    t0 = time.perf_counter()
    for i in range(count):
        eng.create(f"v{i}", 100 * GiB)
        eng.open(f"v{i}")
        for _ in range(20):
            eng.write(f"v{i}", rnd.randrange(0, 100 * GiB // 4096) * 4096, b"x" * 4096)
    took = time.perf_counter() - t0
    print(f"  engine RSS grew {rss_mib() - before:.0f} MiB to {rss_mib():.0f} MiB "
          f"({took:.0f} s; DESIGN budget: 512 MiB for all peers and daemons)")
    eng.shutdown()
    store.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-mib", type=int, default=1024)
    ap.add_argument("--diff-gib", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--open-volumes", type=int, default=1000)
    ap.add_argument("--only", choices=["snap", "diff", "dedup", "mem"])
    args = ap.parse_args()
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    work = Path(tempfile.mkdtemp(prefix="bench-volumes-", dir=base))
    try:
        if args.only in (None, "snap"):
            bench_snapshots(work, args.rounds)
        if args.only in (None, "diff"):
            bench_diff(work, args.diff_gib)
        if args.only in (None, "dedup"):
            bench_dedup(work, args.image_mib)
        if args.only in (None, "mem"):
            bench_open_volumes(work, args.open_volumes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
