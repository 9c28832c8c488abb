#!/usr/bin/env python3
"""img_sync map: `rocks add host storagemap ... img_sync=true` to a usable device,
1 GiB vs 10 GiB, on a one-machine cluster (private RabbitMQ, a NAS, a compute node).

    .venv/bin/python bench/bench_sync_map.py [--cycles 5] [--sizes 1G,10G]

Each cycle maps a volume with img_sync (the NAS snapshots it, the compute node
creates its local replica, serves it over NBD and attaches it) and reads 4 KiB at
its start and at its end (copied on read from the NAS); then unmaps it (final
sync). Target: independent of the volume size, < 1 s. A plain map (served from the
NAS) is printed beside it. Devices are block devices when this host allows it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from cluster import Cluster, best_attacher  # noqa: E402

NAS, C0 = "nas-0-0", "compute-0-0"


def read_at(device, offset):
    if device.startswith("/dev/"):
        fd = os.open(device, os.O_RDONLY)
        try:
            return len(os.pread(fd, 4096, offset)) == 4096
        finally:
            os.close(fd)
    from archipelago.nbd.client import Client
    with Client.connect_uri(device) as c:
        c.go(device.rsplit("/", 1)[1])
        return len(c.read(offset, 4096)) == 4096


def cycle(cl, volume, size, sync):
    words = ["add", "host", "storagemap", NAS, "pool", volume, C0, size,
             "output-format=json"] + (["img_sync=true"] if sync else [])
    t0 = time.monotonic()
    r = cl.rocks(*words)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    dev = json.loads(r.stdout)[0]["device"]
    t_map = time.monotonic() - t0
    nbytes = {"1G": 1 << 30, "10G": 10 << 30}.get(size) or int(size[:-1]) << 30
    assert read_at(dev, 0) and read_at(dev, nbytes - 4096)
    t_usable = time.monotonic() - t0
    t1 = time.monotonic()
    cl.rocks("remove", "host", "storagemap", NAS, volume, "timeout=600", check=True)
    return t_map, t_usable, time.monotonic() - t1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=int(os.environ.get("BENCH_CYCLES", 5)))
    p.add_argument("--sizes", default="1G,10G")
    p.add_argument("--fetch", default="background", choices=("background", "paused"),
                   help="[replica] fetch of the compute node (paused: copy on read only)")
    a = p.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-sync-map-"))
    secret = run_dir / "sync.secret"
    secret.write_text(os.urandom(16).hex() + "\n")
    secret.chmod(0o600)
    extra = {NAS: f"\n[sync]\nauth_token_file = {secret}\nlisten = 127.0.0.1:0\n",
             C0: f"\n[sync]\nauth_token_file = {secret}\n\n[replica]\nfetch = {a.fetch}\n"}
    cl = Cluster(run_dir, nas=NAS, computes=(C0,), volumes="engine",
                 attacher=best_attacher(), heartbeat=2, extra=extra)
    print(f"cluster: attacher={cl.attacher}, replica fetch={a.fetch} under {run_dir}")
    results = {}
    try:
        cl.up()
        for size in a.sizes.split(","):
            for sync in (True, False):
                runs = [cycle(cl, f"b{size}", size, sync) for _ in range(a.cycles + 1)][1:]
                med = [statistics.median(x) for x in zip(*runs, strict=True)]
                results[(size, sync)] = med
                print(f"{size:>4} {'img_sync' if sync else 'plain   '}: map reply "
                      f"{med[0] * 1000:.0f} ms, usable (4 KiB read at start and end) "
                      f"{med[1] * 1000:.0f} ms, unmap {med[2] * 1000:.0f} ms  "
                      f"(median of {a.cycles})")
        sizes = a.sizes.split(",")
        if len(sizes) == 2:
            s0, s1 = (results[(s, True)][1] for s in sizes)
            print(f"img_sync usable: {sizes[1]} / {sizes[0]} = {s1 / s0:.2f}x; target < 1 s: "
                  f"{'met' if max(s0, s1) < 1 else 'NOT met'}")
    finally:
        cl.down()
        subprocess.run(["rm", "-rf", str(run_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
