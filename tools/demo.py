#!/usr/bin/env python3
"""`make demo`: a one-machine Archipelago cluster and a scripted scenario.

Starts a private RabbitMQ (state under the run dir, its own port), one NAS
(nas-0-0) and two compute nodes (compute-0-0, compute-0-1) as separate daemons with
separate ARCHIPELAGO_RUN_DIRs, then drives them only through `rocks` commands:
create and map volumes, write and read through the devices, list, move a volume
between nodes, unmap, delete. Prints every step and how long it took; stops
everything at the end (--keep leaves the cluster running, like `make up`).

--rados (`make demo RADOS=1`): the same scenario with the NAS's volumes in a RADOS
pool ([nas] store = rados) of a one-node Ceph that tools/ceph-cluster starts under
the run dir and stops at the end.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster, best_attacher, best_volumes

ROOT = Path(__file__).resolve().parents[1]
CEPH_CLUSTER = ROOT / "tools" / "ceph-cluster"
NAS, C0, C1 = "nas-0-0", "compute-0-0", "compute-0-1"
RADOS_POOL = "demo"
PATTERN = b"archipelago demo block %d\n"


class Demo:
    def __init__(self, cl):
        self.cl = cl
        self.times = []

    def step(self, what, fn):
        t0 = time.monotonic()
        out = fn()
        dt = time.monotonic() - t0
        self.times.append((what, dt))
        print(f"[{dt:6.2f}s] {what}", flush=True)
        return out

    def rocks(self, *words, expect_fail=False):
        def run():
            r = self.cl.rocks(*words)
            if (r.returncode != 0) != expect_fail:
                raise SystemExit(f"rocks {' '.join(words)} -> exit {r.returncode}\n"
                                 f"{r.stdout}{r.stderr}")
            return r
        r = self.step("rocks " + " ".join(words), run)
        text = (r.stderr if expect_fail else r.stdout).rstrip()
        if text:
            print("          " + text.replace("\n", "\n          "))
        return r.stdout

    def device_of(self, volume):
        import json
        rows = json.loads(self.cl.rocks("list", "host", "storagemap", NAS,
                                        "output-format=json").stdout)
        return next(r["device"] for r in rows if r["volume"] == volume)

    def write(self, volume, blocks=4):
        dev = self.device_of(volume)
        data = b"".join(PATTERN % i for i in range(blocks)).ljust(blocks * 4096, b"\0")
        self.step(f"write {len(data) // 1024} KiB through {dev} ({volume})",
                  lambda: _io(dev, data))
        return data

    def read(self, volume, expect):
        dev = self.device_of(volume)
        got = self.step(f"read {len(expect) // 1024} KiB back through {dev} ({volume})",
                        lambda: _io(dev, None, len(expect)))
        ok = got == expect
        print(f"          data {'matches' if ok else 'DIFFERS'}: {got[:26]!r}...")
        if not ok:
            raise SystemExit("demo failed: the data read back differs")


def _io(dev, data, length=None):
    """Write (data) or read (length bytes) at offset 0 of a block device or NBD URI."""
    if dev.startswith("/dev/"):
        if data is not None:
            fd = os.open(dev, os.O_WRONLY)
            try:
                os.pwrite(fd, data, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            return None
        fd = os.open(dev, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return os.pread(fd, length, 0)
        finally:
            os.close(fd)
    if dev.startswith("nbd://"):
        with tempfile.NamedTemporaryFile() as f:
            if data is not None:
                f.write(data)
                f.flush()
                subprocess.run(["qemu-io", "-f", "raw", "-c",
                                f"write -s {f.name} 0 {len(data)}", dev],
                               check=True, capture_output=True, timeout=60)
                return None
            subprocess.run(["nbdcopy", "--length", str(length), dev, f.name], check=True,
                           capture_output=True, timeout=120)
            return Path(f.name).read_bytes()[:length]
    raise SystemExit(f"no way to do I/O on {dev!r} (in-memory volumes have no data path)")


def scenario(d, real_io, show_store=None):
    d.rocks("list", "host", "storagenode", NAS)
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-a-disk", C0, "10G")
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-b-disk", C1, "1G")
    d.rocks("list", "host", "storagemap", NAS)
    d.rocks("list", "host", "storagedev", C0)
    d.rocks("list", "host", "storagedev", C1)
    data = d.write("vm-a-disk") if real_io else None
    if real_io:
        d.read("vm-a-disk", data)
    if show_store:
        show_store()
    print("          -- what goes wrong, and how it is reported:")
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-a-disk", C1, "10G", expect_fail=True)
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-c-disk", "compute-9-9", "1G",
            expect_fail=True)
    d.rocks("add", "host", "storagemap", NAS, "pool", "bad/name", C0, "1G", expect_fail=True)
    print("          -- move vm-a-disk from compute-0-0 to compute-0-1:")
    d.rocks("remove", "host", "storagemap", NAS, "vm-a-disk")
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-a-disk", C1, "10G")
    if real_io:
        d.read("vm-a-disk", data)
    d.rocks("set", "host", "volattr", NAS, "vm-a-disk", "frequency", "600")
    d.rocks("list", "host", "volattr", NAS, "vm-a-disk")
    d.rocks("list", "host", "storagemap", NAS, "output-format=json")
    d.rocks("remove", "host", "storagemap", NAS, "vm-a-disk")
    d.rocks("remove", "host", "storagemap", NAS, "vm-b-disk")
    d.rocks("remove", "host", "storageimg", NAS, "pool", "vm-a-disk")
    d.rocks("remove", "host", "storageimg", NAS, "pool", "vm-b-disk")
    d.rocks("list", "host", "storagemap", NAS)


def images(d, run_dir):
    """Import a small raw image and provision a VM disk as an O(1) clone of it."""
    print("          -- images: import once, clone for every VM:")
    data = b"".join(PATTERN % i for i in range(4)).ljust(4 * 4096, b"\0")
    src = run_dir / "demo-image.raw"
    with open(src, "wb") as f:
        f.truncate(64 << 20)                   # sparse: only the first 16 KiB hold data
        f.write(data)
    d.rocks("add", "host", "storageimg", NAS, "pool", "demo-image", f"source={src}")
    d.rocks("list", "host", "storageimg", NAS)
    d.rocks("add", "host", "storagemap", NAS, "pool", "vm-img-disk", C0, "1G",
            "image=demo-image")
    d.read("vm-img-disk", data)
    d.rocks("remove", "host", "storagemap", NAS, "vm-img-disk")
    d.rocks("remove", "host", "storageimg", NAS, "pool", "demo-image")   # clone kept
    d.rocks("remove", "host", "storageimg", NAS, "pool", "vm-img-disk")


class Ceph:
    """The one-node Ceph of --rados, all state under DIR (tools/ceph-cluster)."""

    def __init__(self, d):
        self.dir = d
        self.env = dict(os.environ, POOL=RADOS_POOL, STORE_BYTES=str(512 << 20))

    def tool(self, cmd):
        r = subprocess.run([str(CEPH_CLUSTER), cmd, str(self.dir)], env=self.env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise SystemExit(f"ceph-cluster {cmd} failed:\n{r.stdout}{r.stderr}")
        return r.stdout

    def start(self):
        self.tool("start")
        return f"pool {RADOS_POOL}, {self.dir / 'ceph.conf'}"

    def stop(self):
        r = subprocess.run([str(CEPH_CLUSTER), "stop", str(self.dir)], env=self.env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode:       # reported, but the rest of the teardown goes on
            print(f"          ceph-cluster stop failed:\n{r.stdout}{r.stderr}")

    def nas_conf(self):
        """The [rados] section of the NAS's archipelago.conf ([nas] store = rados
        goes in through Cluster's nas_options)."""
        return (f"\n[rados]\npool = {RADOS_POOL}\n"
                f"ceph_conf = {self.dir / 'ceph.conf'}\nop_timeout = 30\n")

    def objects(self):
        r = subprocess.run(["rados", "--conf", str(self.dir / "ceph.conf"), "-p", RADOS_POOL,
                            "ls", "--all"], capture_output=True, text=True, timeout=60,
                           check=True)
        return sorted(r.stdout.split("\n"))[1:]


def rados_objects(d, ceph):
    objs = d.step(f"rados ls --all -p {RADOS_POOL} (the NAS's volumes are RADOS objects)",
                  ceph.objects)
    print(f"          {len(objs)} objects, e.g. "
          + ", ".join(o.replace("\t", "/") for o in objs[:3]))
    if not objs:
        raise SystemExit("demo failed: no objects in the RADOS pool")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, help="run dir (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="leave the cluster running")
    p.add_argument("--rados", action="store_true",
                   help="the NAS's volumes in a RADOS pool of a one-node Ceph")
    a = p.parse_args(argv)
    if a.rados and a.keep:
        p.error("--rados with --keep: the Ceph cluster is stopped at the end")
    run_dir = a.dir or Path(tempfile.mkdtemp(prefix="archipelago-demo-"))
    volumes, attacher = best_volumes(), best_attacher()
    if a.rados and volumes != "engine":
        raise SystemExit("--rados needs the volume engine (archipelago.volume)")
    ceph = Ceph(run_dir / "ceph") if a.rados else None
    extra = {NAS: ceph.nas_conf()} if ceph else None
    cl = Cluster(run_dir, nas=NAS, computes=(C0, C1), volumes=volumes, attacher=attacher,
                 extra=extra, nas_options={"store": "rados"} if ceph else None)
    real_io = volumes == "engine"
    print(f"one-machine cluster under {run_dir}: volumes={volumes}"
          f"{' in RADOS' if ceph else ''}, attacher={attacher}")
    d = Demo(cl)
    t0 = time.monotonic()
    try:
        if ceph:
            print("          " + d.step("start a one-node Ceph (mon + memstore OSD)",
                                        ceph.start))
        url = d.step("start a private RabbitMQ", cl.start_broker)
        print(f"          {url.rsplit('@', 1)[-1]} (user archipelago, generated password)")
        for name, _ in cl.nodes():
            d.step(f"start {cl.role(name)} daemon {name} "
                   f"(ARCHIPELAGO_RUN_DIR={run_dir / name})",
                   lambda name=name: cl.start_node(name))
        scenario(d, real_io, (lambda: rados_objects(d, ceph)) if ceph else None)
        if real_io:
            images(d, run_dir)
    finally:
        if not a.keep:
            for name, role in reversed(cl.nodes()):
                d.step(f"stop {name}", lambda name=name: cl.stop_node(name))
                if role == "compute":
                    cl.detach_all(name)        # after a failure: no device outlives us
            d.step("stop RabbitMQ", cl.stop_broker)
        if ceph:
            d.step("stop Ceph", ceph.stop)
    slow = max(d.times, key=lambda t: t[1])
    print(f"done in {time.monotonic() - t0:.1f}s ({len(d.times)} steps; slowest: "
          f"{slow[0]} {slow[1]:.2f}s)")
    if not a.keep and not a.dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    if a.keep:
        print(f"cluster left running: export ARCHIPELAGO_CONF={cl.frontend_conf()}; "
              f"stop it with: tools/cluster.py down --dir {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
