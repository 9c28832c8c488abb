#!/usr/bin/env python3
"""Control plane: `rocks add host storagemap` to a usable device, and map/unmap
throughput, on a one-machine cluster (private RabbitMQ, nas-0-0, two compute nodes).

    .venv/bin/python bench/bench_controlplane.py [--cycles 100] [--volumes 50] [--rounds 2]

1. map latency: `rocks add host storagemap` (the real command, a new process each
   time) until the device (or NBD URI) answers a 4 KiB read; median and p95 over
   --cycles cycles (target: median < 300 ms). Also the same through an in-process
   client (no interpreter start-up), which is the control plane alone.
2. throughput: --volumes volumes spread over two compute nodes, one client per
   node mapping and unmapping its volumes --rounds times in parallel; cycles/minute.
Also prints the peak RSS of every daemon. Volumes are real (engine + NBD) and
devices are block devices when this host allows it (root + FUSE/nbd), else URIs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from cluster import Cluster, best_attacher, best_volumes  # noqa: E402

NAS, C0, C1 = "nas-0-0", "compute-0-0", "compute-0-1"


def usable(device):
    """Read 4 KiB from the device (or NBD URI) the map returned."""
    if device.startswith("/dev/"):
        fd = os.open(device, os.O_RDONLY)
        try:
            return len(os.pread(fd, 4096, 0)) == 4096
        finally:
            os.close(fd)
    if device.startswith("nbd://"):
        from archipelago.nbd.client import Client
        with Client.connect_uri(device) as c:
            c.go(device.rsplit("/", 1)[1])
            return len(c.read(0, 4096)) == 4096
    return True                                   # in-memory volumes: nothing to read


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def ms(x):
    return f"{x * 1000:.0f} ms"


def bench_cli(cl, cycles):
    import json
    times = []
    for i in range(cycles):
        t0 = time.monotonic()
        r = cl.rocks("add", "host", "storagemap", NAS, "pool", "lat", C0, "1G",
                     "output-format=json")
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        assert usable(json.loads(r.stdout)[0]["device"])
        times.append(time.monotonic() - t0)
        cl.rocks("remove", "host", "storagemap", NAS, "lat", check=True)
        if i == 0:
            times.clear()                         # the first one creates the volume
    return times


def bench_client(client, cycles):
    times = []
    for _ in range(cycles):
        t0 = time.monotonic()
        r = client.call(NAS, "map", pool="pool", volume="lat", remotehost=C0, size=1 << 30)
        assert usable(r["device"])
        times.append(time.monotonic() - t0)
        client.call(NAS, "unmap", volume="lat")
    return times


def bench_throughput(cl, nvol, rounds):
    from rocks_command_archipelago.client import Client
    hosts = {C0: [], C1: []}
    for i in range(nvol):
        hosts[C0 if i % 2 == 0 else C1].append(f"tp{i:03d}")
    errors = []

    def worker(host, vols):
        client = Client(str(cl.frontend_conf()))
        try:
            for _ in range(rounds):
                for v in vols:
                    client.call(NAS, "map", pool="pool", volume=v, remotehost=host,
                                size=256 << 20)
                for v in vols:
                    client.call(NAS, "unmap", volume=v)
        except Exception as e:
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=hv) for hv in hosts.items()]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        raise SystemExit(f"throughput run failed: {errors[0]}")
    return nvol * rounds, dt


def peak_rss(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=int(os.environ.get("BENCH_CYCLES", 100)))
    p.add_argument("--volumes", type=int, default=50)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    from rocks_command_archipelago.client import Client
    run_dir = Path(tempfile.mkdtemp(prefix="bench-controlplane-"))
    cl = Cluster(run_dir, nas=NAS, computes=(C0, C1), volumes=best_volumes(),
                 attacher=best_attacher(), heartbeat=2)
    print(f"cluster: volumes={cl.volumes} attacher={cl.attacher} under {run_dir}")
    try:
        cl.up()
        cli = bench_cli(cl, a.cycles + 1)
        print(f"rocks add host storagemap -> usable device ({len(cli)} cycles): "
              f"median {ms(statistics.median(cli))}, p95 {ms(pct(cli, 95))}, "
              f"min {ms(min(cli))}  (target: median < 300 ms -> "
              f"{'met' if statistics.median(cli) < 0.3 else 'NOT met'})")
        client = Client(str(cl.frontend_conf()))
        inproc = bench_client(client, a.cycles)
        client.close()
        print(f"map -> usable device, in-process client ({len(inproc)} cycles): median "
              f"{ms(statistics.median(inproc))}, p95 {ms(pct(inproc, 95))}; interpreter "
              f"start-up and imports are {ms(statistics.median(cli) - statistics.median(inproc))}"
              " of the command")
        n, dt = bench_throughput(cl, a.volumes, a.rounds)
        print(f"map/unmap cycles: {n} over {a.volumes} volumes on 2 compute nodes in "
              f"{dt:.1f}s -> {n / dt * 60:.0f} cycles/minute")
        for name, _ in cl.nodes():
            rss = peak_rss(cl.pid(name))
            print(f"peak RSS {name}: {rss / (1 << 20):.1f} MiB" if rss else
                  f"peak RSS {name}: unknown")
    finally:
        cl.down()
        subprocess.run(["rm", "-rf", str(run_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
