#!/usr/bin/env python3
"""Incremental sync of a volume with 1% rewritten (scattered 64 KiB writes):
`vlmc send --from | vlmc receive` between two nodes, next to `rsync --inplace` of
the raw image and a full copy (`cp`), same disk, same run.

Two private nodes (own run dirs, segments and stores) are started; the raw image,
its copy and both stores share one directory (BENCH_DIR, default /var/tmp). The
volume is filled with data (--fill) and snapshotted, node B gets the same base
(imported with the same snapshot identity, or with --full-stream a full stream);
then the same scattered writes go to the volume and to the raw image, and we time:

  sync   vlmc send VOL@s2 --from s1 -o - | vlmc receive VOL   (two processes, pipe)
  rsync  rsync --inplace --no-whole-file -I --stats SRC.img DST.img (the delta
         algorithm, as over a network: both images read in full)
  cp     cp SRC.img DST.img (the full copy)

Bytes on the wire: the stream's size for sync, rsync's "Total bytes sent" for
rsync, the image size for cp. Targets: sync wire <= 1.1x the changed bytes, sync
>= 20x faster than rsync. On these FileStore nodes `vlmc send` reads and the commit
writes the objects in-process (client.direct_store); --peers-io sends all of it
through vlmcd and the blockers instead (ARCHIPELAGO_DIRECT_STORE=0), as on RADOS.

    .venv/bin/python bench/bench_sync.py [--size-gib 10] [--changed-pct 1] [--fill 1]
                                         [--peers-io] [--repeat N] [--fs dir|ext4] [--churn N]
                                         [--variants 2:clone,2:spool,1:spool]

--repeat N adds N more rounds of the same sync, each into a fresh clone of B's
vol@s1 (given A's s1 identity), the --variants interleaved in every round (A/B on
a shared machine): FORMAT:STAGING, the stream format (`vlmc send --format`) and
how B stages an incremental stream (clone: `[sync] spool_max = 1K`, a staging
clone adopted at commit; spool: the spool file applied at commit; default: B's
configuration); a variant ending in @DIR runs both vlmc processes with the
archipelago package of source tree DIR (e.g. `git worktree add DIR HEAD~1`: A/B of
code; the nodes' daemons stay this tree's). One line per sync with the load
average, then the medians. --churn N runs, during the rounds, a process that
creates and deletes N files in B's object directories every 0.5 s (as a GC
deleting objects does; on ext4 without a journal new inodes then pass over
recently freed ones).
The timed sync, rsync and every --repeat round follow an os.sync() (the set-up's
and the other contenders' writes flushed first).
--fs ext4 runs everything on a fresh journaled ext4 (loop device over a sparse
file in BENCH_DIR; ScratchExt4 says why: this machine's root ext4 has no journal).

Measured (docs/streams.md, runs 10-15, 21 Nov 2026, load 4.4-8.6): format 2 +
staging clone adopted at commit 1.02-2.95 s per round against 1.39-3.31 s for
format 1 + spool in the same runs (interleaved); at load 4.4-5.9 medians 1.23 s
against 1.50 s, rsync 20.41 s. The commit is 0.04-0.15 s. Runs 16-20 (load
4.7-8.8, A/B against run 15's tree with @DIR): CPU per sync ~0.45 s sender +
~0.72 s receiver; rounds 1.21-2.54 s, medians 1.37-2.05 s, no better than
run 15's tree in the same runs (writeback started per write: +0.2 s receiver
CPU, dropped; lazy vlmc imports: ~9 ms per process, kept). Runs 21-22 (load
3.2-7.3), a group's in-process writes as 4 tasks: medians 1.00 / 1.01 s (best
0.96 s) against 1.10 / 1.11 s, receiver CPU 0.76-0.82 s against 0.92-1.00 s.
Runs 23-24 (load 3.0-4.6), the stream read in chunks without a copy per record
and the pipe grown to 1 MiB: medians 0.96 / 1.00 s (best 0.87 s) against 0.97 /
1.05 s, receiver CPU 0.65 / 0.80 s against 0.75 / 0.83 s (more than half of it
system time); rsync 16.3-16.5 s. Runs 26-31 (load 5-9): spare object files
renamed into place on a new object's first write (made by a background thread
as the receive starts): medians 1.25 / 2.00 / 1.44 / 2.09 s against 1.61 / 2.14
/ 1.52 / 1.76 s, receiver CPU +0.02 to +0.25 s (the ~1,194 spares a sync takes,
all made in one directory, cost up to 0.4 s while other work deleted files):
dropped.
"""
import argparse
import json
import os
import random
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
sys.path.insert(0, str(ROOT / "tests" / "lib"))

from archipelago_node import Node  # noqa: E402

MiB, GiB = 1 << 20, 1 << 30
WRITE = 64 << 10


def vlmc_cmd(node, *args, conf=None):
    return [sys.executable, "-m", "archipelago.cli.vlmc", "-c", str(conf or node.conf),
            *map(str, args)]


def tree_env(env, tree):
    """`env` with the archipelago package imported from source tree `tree` (its
    src/archipelago first on PYTHONPATH: ahead of the editable install)."""
    if tree:
        pkg = str(Path(tree).resolve() / "src" / "archipelago")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg, env.get("PYTHONPATH")]))
    return env



def splits(res, unit=""):
    """The receive result's commit and stream splits as "name 0.12, ..." text."""
    return tuple(", ".join(f"{k} {x:.2f}{unit}" for k, x in sorted((res.get(key) or {}).items()))
                 for key in ("commit_split", "stream_split"))

def pipe_sync(a, b, send_args, recv_args, recv_conf=None, tree=None):
    """`vlmc send ... -o - | vlmc receive ... --json`: (seconds, receive result); the
    result's "send_seconds" is the time the sender reports for itself. `tree`: both
    vlmc processes run the archipelago package of that source tree (A/B of code)."""
    t0 = time.perf_counter()
    c0, k0 = _children_cpu(), _children_sys()
    s = subprocess.Popen(vlmc_cmd(a, "send", *send_args, "-o", "-"),
                         env=tree_env(a.env(), tree),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    r = subprocess.Popen(vlmc_cmd(b, "receive", *recv_args, "--json", conf=recv_conf),
                         env=tree_env(b.env(), tree),
                         stdin=s.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    s.stdout.close()
    out, err = r.communicate()
    c1 = _children_cpu()            # the receiver's CPU (reaped first), then the sender's
    k1 = _children_sys()
    serr = s.stderr.read().decode()
    s.wait()
    secs = time.perf_counter() - t0
    cpu = {"recv": c1 - c0, "send": _children_cpu() - c1, "recv_sys": k1 - k0,
           "send_sys": _children_sys() - k1}
    if s.returncode or r.returncode:
        raise SystemExit(f"sync failed: {err.decode()} {serr}")
    res = json.loads(out)
    m = re.search(r"bytes on the wire, ([\d.]+)s", serr)
    res["send_seconds"] = float(m.group(1)) if m else float("nan")
    res["cpu"] = cpu
    return secs, res


def _children_cpu():
    """User + system CPU seconds of this process's reaped children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _children_sys():
    """System (kernel) CPU seconds of this process's reaped children."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime


def load():
    return os.getloadavg()[0]


STAGING = {"clone": "[sync]\nspool_max = 1K\n", "spool": "[sync]\nspool_max = 1T\n"}


CHURN = """
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
dirs = sorted(os.path.join(root, d) for d in os.listdir(root))
k = 0
while True:
    paths = [os.path.join(dirs[i % len(dirs)], f"#churn-{k}-{i}") for i in range(n)]
    for p in paths:
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644))
    for p in paths:
        os.unlink(p)
    k += 1
    time.sleep(0.5)
"""


def churn(b, n):
    """A process that creates and deletes `n` files in B's object directories every
    half second (as a GC deleting objects does): the receivers' new inodes then
    pass over recently freed ones (ext4 without a journal). Popen or None."""
    if not n:
        return None
    objects = b.shared / "blocks" / "objects"
    return subprocess.Popen([sys.executable, "-c", CHURN, str(objects), str(n)])


def repeat_rounds(a, b, rounds, variants, slots, size, rsync_secs=None, first=None):
    """`rounds` x len(variants) more syncs of vol@s1 -> vol@s2, each into a new clone
    of B's vol@s1 (with A's s1 identity), variants interleaved; prints each and the
    median per variant."""
    with a.client() as ca:
        guid = ca.info("vol@s1")["guid"]
    confs = {}
    for v in variants:
        staging = v.partition("@")[0].partition(":")[2] or "default"
        if staging != "default":
            confs[v] = b.conf.with_name(f"archipelago-{staging}.conf")
            confs[v].write_text(b.conf.read_text() + STAGING[staging])
    seen = {v: [] for v in variants}
    cpus = {v: [] for v in variants}
    k = 0
    for r in range(rounds):
        for v in variants:
            f = v.partition(":")[0]
            tree = v.partition("@")[2] or None
            k += 1
            name = f"rep{k}"
            with b.client() as cb:
                cb.clone("vol@s1", name)
                cb.snapshot(name, "s1", guid=guid)
            os.sync()       # as before the single sync: not rsync's leftover writeback
            la = load()
            secs, res = pipe_sync(a, b, ["vol@s2", "--from", "s1", "--format", f],
                                  [name], recv_conf=confs.get(v), tree=tree)
            seen[v].append(secs)
            cpus[v].append(res["cpu"])
            verify(a, b, "vol", slots, size, name)
            split, ssplit = splits(res)
            print(f"round {r + 1} {v}: sync {secs:.2f}s (send {res['send_seconds']:.2f}"
                  f", stream {res['stream_seconds']:.2f}: {ssplit}; commit "
                  f"{res['commit_seconds']:.2f}: {split}); CPU send "
                  f"{res['cpu']['send']:.2f} s (sys {res['cpu']['send_sys']:.2f}), receive "
                  f"{res['cpu']['recv']:.2f} s (sys {res['cpu']['recv_sys']:.2f}); load "
                  f"{la:.2f}", flush=True)
    for v, xs in seen.items():
        xs = sorted(xs)
        cs = sorted(c["send"] for c in cpus[v])
        cr = sorted(c["recv"] for c in cpus[v])
        print(f"{v}: median {xs[len(xs) // 2]:.2f}s, min {xs[0]:.2f}s of {len(xs)}; CPU "
              f"median send {cs[len(cs) // 2]:.2f} s, receive {cr[len(cr) // 2]:.2f} s")
        if rsync_secs:
            every = sorted(xs + ([first] if first else []))
            print(f"{v}: rsync / median round {rsync_secs / xs[len(xs) // 2]:.1f}x; "
                  f"rsync / median of all {len(every)} syncs (the single one too) "
                  f"{rsync_secs / statistics.median(every):.1f}x (target >= 20x)")


def make_image(path, size, fill, seed=1):
    """`fill` of the image is data (random, varied per 4 MiB), the rest holes."""
    rng = random.Random(seed)
    pool = rng.randbytes(8 * MiB)
    with open(path, "wb") as f:
        f.truncate(size)
        data_end = int(size * fill) // (4 * MiB) * (4 * MiB)
        for off in range(0, data_end, 4 * MiB):
            k = (off // (4 * MiB) * 4099) % (4 * MiB)
            f.write(pool[k:k + 4 * MiB])
        os.fsync(f.fileno())


def scatter(a, vol, img, size, pct, seed=2):
    """pct% of the volume rewritten as scattered 64 KiB writes, to the volume and to
    the raw image alike; returns the bytes written."""
    rng = random.Random(seed)
    n = int(size * pct / 100) // WRITE
    slots = rng.sample(range(size // WRITE), n)
    fd = os.open(img, os.O_WRONLY)
    try:
        with a.client() as c, c.volume(vol) as v:
            for i in slots:
                data = rng.randbytes(WRITE)
                v.pwrite(data, i * WRITE)
                os.pwrite(fd, data, i * WRITE)
            v.flush()
        os.fsync(fd)
    finally:
        os.close(fd)
    return n * WRITE, slots


def timed_run(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, p.stdout


def drop_caches():
    """Cold-ish caches for every contender (needs root; skipped otherwise)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


class ScratchExt4:
    """--fs ext4: a fresh ext4 with mkfs's defaults (a journal) on a loop device over a
    sparse file in BENCH_DIR, holding both nodes' stores and both raw images, so every
    contender runs on it. This machine's root filesystem is ext4 *without* a journal,
    where creating a file scans the inodes freed in the last minutes
    (`recently_deleted`: ~20% of the receiver's samples under other work's deletions);
    a NAS's filesystem has one. The loop device uses direct I/O (no second copy of
    the images in the page cache)."""

    def __init__(self, base, size):
        self.img = Path(tempfile.mkdtemp(prefix="bench-sync-fs-", dir=base)) / "fs.img"
        self.size, self.mnt, self.dev = size, None, None

    def mount(self):
        # two 1x images + two stores + the clones' new objects
        with open(self.img, "wb") as f:
            f.truncate(4 * self.size + 8 * GiB)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.img)], check=True)
        self.dev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on",
                                   str(self.img)], check=True, capture_output=True,
                                  text=True).stdout.strip()
        self.mnt = self.img.parent / "mnt"
        self.mnt.mkdir()
        subprocess.run(["mount", self.dev, str(self.mnt)], check=True)
        return str(self.mnt)

    def close(self):
        if self.mnt is not None and os.path.ismount(self.mnt):
            subprocess.run(["umount", str(self.mnt)], check=False)
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], check=False)
        shutil.rmtree(self.img.parent, ignore_errors=True)


def verify(a, b, vol, slots, size, target=None):
    """The changed 64 KiB blocks and some random others read the same on both nodes
    (A's VOL@s2, B's TARGET@s2)."""
    rng = random.Random(3)
    picks = rng.sample(slots, min(64, len(slots))) + [rng.randrange(size // WRITE)
                                                       for _ in range(16)]
    with a.client() as ca, b.client() as cb:
        va, vb = ca.volume(f"{vol}@s2"), cb.volume(f"{target or vol}@s2")
        for i in picks:
            if va.pread(WRITE, i * WRITE) != vb.pread(WRITE, i * WRITE):
                raise SystemExit(f"MISMATCH at {i * WRITE}")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=10.0)
    p.add_argument("--changed-pct", type=float, default=1.0)
    p.add_argument("--fill", type=float, default=1.0, help="fraction of data (rest holes)")
    p.add_argument("--full-stream", action="store_true",
                   help="give node B its base with a full stream (slower setup)")
    p.add_argument("--drop-caches", action="store_true",
                   help="drop the page cache before each contender (root; machine-wide)")
    p.add_argument("--peers-io", action="store_true",
                   help="send and commit through vlmcd and the blockers (no in-process "
                        "object I/O)")
    p.add_argument("--repeat", type=int, default=0,
                   help="more rounds of the sync, into clones (A/B of --formats)")
    p.add_argument("--churn", type=int, default=0,
                   help="during the --repeat rounds, create and delete this many files "
                        "in B's object directories every 0.5 s (deletions elsewhere)")
    p.add_argument("--fs", choices=["dir", "ext4"], default="dir",
                   help="dir: BENCH_DIR as it is; ext4: a fresh journaled ext4 on a loop "
                        "device in BENCH_DIR for everything (root; see ScratchExt4)")
    p.add_argument("--variants", default="2:default",
                   help="FORMAT:STAGING[@TREE] interleaved in --repeat rounds, e.g. "
                        "2:clone,2:spool,1:spool or 2:clone,2:clone@/tmp/base")
    args = p.parse_args(argv)
    if args.peers_io:
        os.environ["ARCHIPELAGO_DIRECT_STORE"] = "0"     # inherited by the vlmc processes
    size = int(args.size_gib * GiB) // (4 * MiB) * (4 * MiB)
    if not shutil.which("rsync"):
        raise SystemExit("rsync is not installed")
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    fs = ScratchExt4(base, size) if args.fs == "ext4" else None
    try:
        if fs is not None:
            base = fs.mount()
            print(f"filesystem: a fresh journaled ext4 on {fs.dev} ({fs.img})", flush=True)
        work = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=base))
        _run(args, size, work)
    finally:
        if fs is not None:
            fs.close()


def _run(args, size, work):
    a = Node(work, "sendnode", shared=work / "store-a")
    b = Node(work, "recvnode", shared=work / "store-b")
    try:
        a.start()
        b.start()
        src, dst = work / "src.img", work / "dst.img"
        t = time.perf_counter()
        make_image(src, size, args.fill)
        if args.full_stream:
            a.vlmc("import", "vol", src, timeout=3600)
            a.vlmc("snapshot", "vol", "s1")
            full_secs, full = pipe_sync(a, b, ["vol@s1"], ["vol"])
            how = (f"full stream {full['wire_bytes'] / MiB:.0f} MiB in {full_secs:.1f}s "
                   f"({full['wire_bytes'] / MiB / full_secs:.0f} MiB/s)")
        else:
            # B's base without a 10 GiB stream: the same image imported on both nodes
            # (in parallel), B's snapshot given A's identity, as a full receive would.
            imports = [subprocess.Popen(vlmc_cmd(n, "import", "vol", src), env=n.env())
                       for n in (a, b)]
            if any(p.wait() for p in imports):
                raise SystemExit("import failed")
            a.vlmc("snapshot", "vol", "s1")
            with a.client() as ca, b.client() as cb:
                cb.snapshot("vol", "s1", guid=ca.info("vol@s1")["guid"])
            how = "base imported on both nodes (--full-stream sends it instead)"
        print(f"setup: {size / GiB:.1f} GiB volume, {args.fill:.0%} data; {how}; "
              f"setup {time.perf_counter() - t:.0f}s", flush=True)
        dropped = args.drop_caches and drop_caches()
        cp_secs, _ = timed_run(["cp", "--sparse=never", str(src), str(dst)])
        changed, slots = scatter(a, "vol", src, size, args.changed_pct)
        a.vlmc("snapshot", "vol", "s2")
        diff = json.loads(a.vlmc("diff", "vol@s1", "vol@s2", "--json").out)["changed"]

        dropped = args.drop_caches and drop_caches()
        os.sync()       # the set-up's ~30 GiB of writes: not in the measured writeback
        sync_load = load()
        sync_secs, res = pipe_sync(a, b, ["vol@s2", "--from", "s1"], ["vol"])
        verify(a, b, "vol", slots, size)
        dropped = args.drop_caches and drop_caches()
        os.sync()
        rsync_load = load()
        rsync_secs, out = timed_run(["rsync", "--inplace", "--no-whole-file", "-I", "--stats",
                                     str(src), str(dst)])
        m = re.search(r"Total bytes sent: ([\d,.]+)", out)
        rsync_wire = int(m.group(1).replace(",", "").replace(".", "")) if m else 0

        print(f"\nincremental sync of {size / GiB:.1f} GiB with {args.changed_pct}% "
              f"rewritten ({len(slots)} x 64 KiB scattered writes = {changed / MiB:.1f} "
              f"MiB; engine diff {diff / MiB:.1f} MiB); caches "
              f"{'dropped before each' if dropped else 'warm'}; object I/O "
              f"{'through the peers' if args.peers_io else 'in-process where possible'}")
        print(f"{'':24}{'seconds':>10}{'wire MiB':>12}{'wire/changed':>14}")
        rows = [("vlmc send | receive", sync_secs, res["wire_bytes"]),
                ("rsync --inplace (delta)", rsync_secs, rsync_wire),
                ("cp (full copy)", cp_secs, size)]
        for name, secs, wire in rows:
            print(f"{name:<24}{secs:>10.2f}{wire / MiB:>12.1f}{wire / changed:>14.2f}")
        print(f"\nsync wire / changed bytes: {res['wire_bytes'] / changed:.3f} "
              f"(target <= 1.1)")
        print(f"rsync / sync time: {rsync_secs / sync_secs:.1f}x (target >= 20x); "
              f"cp / sync time: {cp_secs / sync_secs:.1f}x")
        print(f"sync throughput: {res['data_bytes'] / MiB / sync_secs:.0f} MiB/s of "
              f"changed data; records {res['records']}")
        limit = 25 * MiB
        thr = json.loads(a.vlmc("send", "vol@s2", "--from", "s1", "-o", "/dev/null",
                                "--limit", f"{limit}B", "--json").out)["sent"]
        got = thr["wire_bytes"] / thr["seconds"]
        print(f"throttle: --limit 25M sent {thr['wire_bytes'] / MiB:.1f} MiB at "
              f"{got / MiB:.2f} MiB/s = {got / limit:.1%} of the limit (target 90-110%)")
        split, ssplit = splits(res, "s")
        print(f"receive: stream verified and staged in {res['stream_seconds']:.2f}s "
              f"({ssplit}), commit {res['commit_seconds']:.2f}s = "
              f"{res['commit_seconds'] / max(1, len(slots)) * 1000:.2f} ms per scattered "
              f"write ({split})")
        print(f"send: {res['send_seconds']:.2f}s inside `vlmc send` (diff, reads, "
              "records); the rest is process start-up, the receiver's checks and the pipe")
        print(f"CPU (user + system): vlmc send {res['cpu']['send']:.2f}s (sys "
              f"{res['cpu']['send_sys']:.2f}), vlmc receive {res['cpu']['recv']:.2f}s (sys "
              f"{res['cpu']['recv_sys']:.2f})")
        print(f"load average (1 min) before sync {sync_load:.2f}, before rsync "
              f"{rsync_load:.2f}", flush=True)
        if args.repeat:
            churner = churn(b, args.churn)
            try:
                variants = [v.strip() for v in args.variants.split(",")]
                repeat_rounds(a, b, args.repeat, variants, slots, size, rsync_secs,
                              sync_secs if len(variants) == 1 else None)
            finally:
                if churner is not None:
                    churner.terminate()
                    churner.wait()
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
