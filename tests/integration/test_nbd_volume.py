"""Archipelago volumes over NBD: the volume provider on the in-process peer stack.

The same vlmcd/mapperd/blocker code as a node, called directly
(archipelago.client.local over a MemoryStore), served by nbdd through
VolumeProvider, driven by real NBD clients.
"""
import json
import os
import subprocess

import pytest
from conftest import require

from archipelago import client
from archipelago.nbd.testing import serve
from archipelago.nbd.volume import VolumeProvider
from archipelago.store.memory import MemoryStore

MiB = 1 << 20


def run(*argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=120)


@pytest.fixture
def volumes():
    c = client.local(MemoryStore())
    c.create("vm1", 64 * MiB)
    with serve(providers=[VolumeProvider(connect=lambda conf: c)]) as srv:
        yield srv, c


def test_volume_round_trip_across_objects(volumes, tmp_path):
    require("nbdcopy", "nbdinfo", "qemu-io")
    srv, _ = volumes
    info = json.loads(run("nbdinfo", "--json", srv.uri("vm1")).stdout)["exports"][0]
    assert info["export-size"] == 64 * MiB and info["can_multi_conn"]
    src = tmp_path / "src.raw"
    src.write_bytes(os.urandom(64 * MiB))
    run("nbdcopy", "--connections=4", "--flush", src, srv.uri("vm1"))
    back = tmp_path / "back.raw"
    run("nbdcopy", "--connections=4", srv.uri("vm1"), back)
    assert back.read_bytes() == src.read_bytes()
    # unaligned pattern writes straddling the 4 MiB object boundaries
    cmds = ["write -P 0x5a 4194000 1000", "write -P 0xa5 12582900 700000", "flush"]
    run("qemu-io", "-f", "raw", *[a for x in cmds for a in ("-c", x)], srv.uri("vm1"))
    checks = ["read -P 0x5a 4194000 1000", "read -P 0xa5 12582900 700000"]
    out = run("qemu-io", "-f", "raw", "-r", *[a for x in checks for a in ("-c", x)],
              srv.uri("vm1")).stdout
    assert "verification failed" not in out


def test_snapshot_export_is_read_only(volumes):
    require("qemu-io", "nbdinfo")
    srv, c = volumes
    with c.volume("vm1") as v:
        v.pwrite(b"S" * 4096, 0)
        v.flush()
    c.snapshot("vm1", "s1")
    info = json.loads(run("nbdinfo", "--json", srv.uri("vm1@s1")).stdout)["exports"][0]
    assert info["is_read_only"]
    res = run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 512", srv.uri("vm1@s1"),
              check=False)
    assert res.returncode != 0 or "failed" in (res.stdout + res.stderr).lower()
    out = run("qemu-io", "-f", "raw", "-r", "-c", "read -P 0x53 0 4096", srv.uri("vm1@s1"))
    assert "verification failed" not in out.stdout
    assert run("nbdinfo", srv.uri("nosuch"), check=False).returncode != 0
