#!/usr/bin/env python3
"""vlmc through the peers: import/export of a 1 GiB raw image vs `cp` on the same
disk, and snapshot/clone latency of thin volumes (1 GiB .. 10 TiB).

A private node (its own run dir, segment and store) is started for the run and
stopped at the end; the image, the copy and the store share one directory
(BENCH_DIR, default /var/tmp) so every figure is on the same disk.

    .venv/bin/python bench/bench_vlmc.py [--size-mib 1024] [--rounds 5]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lib"))

from archipelago_node import ROLES, Node  # noqa: E402

from archipelago import process  # noqa: E402

MiB, GiB, TiB = 1 << 20, 1 << 30, 1 << 40


def timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def make_image(path, size):
    """Random (incompressible, no holes) data: the worst case for import."""
    with open(path, "wb") as f:
        for _ in range(size // (4 * MiB)):
            f.write(os.urandom(4 * MiB))
        os.fsync(f.fileno())


def private_rss(node):
    """RssAnon of each peer in MiB: its own memory, without the shared segment pages
    that VmHWM would also count."""
    out = {}
    for role in ROLES:
        pid = node.pid(role)
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("RssAnon:"):
                    out[role] = int(line.split()[1]) // 1024
        except (OSError, TypeError):
            pass
    return out


def bench_transfer(node, work, size):
    img, copy, out = work / "image.raw", work / "copy.raw", work / "export.raw"
    make_image(img, size)
    t_cp = timed(lambda: process.run(["cp", img, copy], timeout=600))
    copy.unlink()
    # import ends with a FLUSH (data durable); the fair anchor syncs its copy too
    t_cps = timed(lambda: (process.run(["cp", img, copy], timeout=600),
                           process.run(["sync", copy], timeout=600)))
    copy.unlink()
    t_imp = timed(lambda: node.vlmc("import", "bench", img, timeout=600))
    t_exp = timed(lambda: node.vlmc("export", "bench", out, timeout=600))
    same = subprocess.run(["cmp", "-s", img, out]).returncode == 0
    mb = size / MiB
    print(f"{'1 GiB raw image' if size == GiB else f'{mb:.0f} MiB image'} (random data):")
    print(f"  cp              {t_cp:7.2f} s  {mb / t_cp:8.1f} MiB/s")
    print(f"  cp + sync       {t_cps:7.2f} s  {mb / t_cps:8.1f} MiB/s")
    print(f"  vlmc import     {t_imp:7.2f} s  {mb / t_imp:8.1f} MiB/s  "
          f"({t_imp / t_cp:.1f}x cp, {t_imp / t_cps:.1f}x cp+sync; flushed)")
    print(f"  vlmc export     {t_exp:7.2f} s  {mb / t_exp:8.1f} MiB/s  "
          f"({t_exp / t_cp:.1f}x cp)  identical: {same}")
    for p in (img, out):
        p.unlink()


def bench_snapshots(node, rounds):
    print(f"snapshot / clone latency through the peers (median of {rounds}, ms):")
    print(f"  {'volume':<22} {'snapshot':>9} {'clone':>9}")
    with node.client() as c:
        cases = [("bench (1 GiB, written)", "bench")]
        for label, size in (("thin 1 GiB", GiB), ("thin 100 GiB", 100 * GiB),
                            ("thin 10 TiB", 10 * TiB)):
            name = f"thin{size >> 30}g"
            c.create(name, size)
            with c.volume(name) as v:          # a little data, so there is a map
                v.pwrite(b"x" * 65536, size // 2)
            cases.append((label, name))
        for label, name in cases:
            snap, clone = [], []
            for i in range(rounds):
                snap.append(timed(c.snapshot, name, f"b{i}"))
                clone.append(timed(c.clone, f"{name}@b{i}", f"{name}-c{i}"))
            print(f"  {label:<22} {statistics.median(snap) * 1e3:9.1f} "
                  f"{statistics.median(clone) * 1e3:9.1f}")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    base = Path(os.environ.get("BENCH_DIR", "/var/tmp"))
    work = Path(tempfile.mkdtemp(prefix="bench-vlmc-", dir=base))
    node = Node(work, "bench")
    try:
        node.start()
        bench_transfer(node, work, a.size_mib * MiB)
        bench_snapshots(node, a.rounds)
        rss = private_rss(node)
        print("private RSS of the peers after the run (MiB): "
              + ", ".join(f"{r} {m}" for r, m in rss.items())
              + f"; total {sum(rss.values())}")
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
