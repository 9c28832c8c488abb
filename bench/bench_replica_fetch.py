#!/usr/bin/env python3
"""img_sync background copy of a mostly empty volume: with block status vs without.

    .venv/bin/python bench/bench_replica_fetch.py [--size 1G] [--written 32M]

The NAS side is what a NAS exports for a mapping (nbd.engine.EngineBackend over a
VolumeEngine on a FileStore, served by our NBD server over TCP on localhost); the
compute side is a replica Fetcher (archipelago_vm/replica/fetch.py) copying it
into a fresh local volume in the background, once asking the NAS for block
status (the default) and once without (every chunk read, as before). Written:
`--written` bytes in 1 MiB pieces spread over the volume (one per object at
most). Prints bytes read from the NAS, bytes skipped, wall time and the ratio.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "archipelago-vm"))

from archipelago.nbd.engine import EngineBackend, SingleExport  # noqa: E402
from archipelago.nbd.testing import serve  # noqa: E402
from archipelago.store.file import FileStore  # noqa: E402
from archipelago.units import format_size, parse_size  # noqa: E402
from archipelago.volume import VolumeEngine  # noqa: E402
from archipelago_vm.replica.fetch import Fetcher  # noqa: E402

MiB = 1 << 20


def copy(uri, size, tmp, status):
    eng = VolumeEngine(FileStore(tmp / f"local-{status}"), owner="bench")
    eng.create("v", size)
    f = Fetcher(eng, "v", uri, str(tmp / f"v-{status}.present"), size, MiB, paused=True)
    if not status:
        f._status_remote = lambda off, n: None          # a NAS without block status
    t0 = time.monotonic()
    f.paused.clear()
    f.start()
    f.thread.join()
    dt = time.monotonic() - t0
    p = f.progress()
    f.stop()
    assert p["done"], p
    return p, dt, eng


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1G")
    ap.add_argument("--written", default="32M")
    a = ap.parse_args()
    size = parse_size(a.size)
    written = parse_size(a.written)
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as d:
        tmp = Path(d)
        nas = VolumeEngine(FileStore(tmp / "nas"), owner="nas")
        nas.create("v", size)
        pieces = written // MiB
        stride = max(4 * MiB, size // max(pieces, 1) // (4 * MiB) * 4 * MiB)
        data = {}
        for i in range(pieces):
            off = (i * stride) % size
            data[off] = os.urandom(MiB)
            nas.write("v", off, data[off])
        nas.flush("v")
        with serve(providers=[SingleExport("v", lambda: EngineBackend(nas, "v"))],
                   tcp=True) as srv:
            uri = srv.uri("v", tcp=True)          # nbd://HOST:PORT/v, as a NAS sends
            rows = []
            for status in (False, True):
                p, dt, eng = copy(uri, size, tmp, status)
                for off, want in list(data.items())[:8]:
                    assert eng.read("v", off, MiB) == want
                rows.append((status, p, dt))
    print(f"volume {format_size(size)}, {format_size(pieces * MiB)} written "
          f"({pieces} x 1 MiB, {stride // MiB} MiB apart), 1 MiB chunks")
    for status, p, dt in rows:
        print(f"  {'block status' if status else 'read all    '}: read "
              f"{format_size(p['read']):>9}  skipped {format_size(p['skipped']):>9}  "
              f"{dt:6.2f} s")
    (_, p0, t0), (_, p1, t1) = rows
    print(f"  bytes read: {p0['read'] / max(p1['read'], 1):.1f}x fewer; "
          f"time: {t0 / t1:.1f}x faster with block status")


if __name__ == "__main__":
    main()
