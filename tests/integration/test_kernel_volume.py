"""A filesystem on a mapped volume, then snapshot, clone, map the clone: both intact.

Volumes come from the in-process peer stack (archipelago.client.local over a
MemoryStore: the real vlmcd/mapperd/blocker code), served by nbdd through the
volume provider and attached with FUSE+loop.
"""
import os
import subprocess

import pytest
from conftest import require, require_service

from archipelago import client, config
from archipelago.nbd.testing import serve
from archipelago.nbd.volume import VolumeProvider
from archipelago.store.memory import MemoryStore
from archipelago_kernel.fuse_loop import FuseLoopConnector
from archipelago_kernel.mapper import Mapper

MiB = 1 << 20


def run(*argv):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True,
                          timeout=120)


@pytest.fixture
def node(run_dir):
    require("nbdfuse", "losetup", "mkfs.ext4", "e2fsck")
    ok, why = FuseLoopConnector.available()
    require_service(ok and os.geteuid() == 0, f"FUSE+loop as root ({why or 'not root'})")
    c = client.local(MemoryStore())
    cfg = config.from_text(f"[node]\nrun_dir = {run_dir}\n")
    with serve(providers=[VolumeProvider(connect=lambda conf: c)],
               status_path=str(run_dir / "nbdd.json")):
        mapper = Mapper(cfg, method="fuse")
        try:
            yield c, mapper
        finally:
            for m, _ in mapper.showmapped():
                subprocess.run(["umount", "-l", m.device], capture_output=True)
                mapper.unmap(m.id, force=True)


def test_snapshot_and_clone_of_a_mapped_filesystem(node, tmp_path):
    c, mapper = node
    c.create("vm1", 64 * MiB)
    dev = mapper.map("vm1").device
    run("mkfs.ext4", "-q", "-F", dev)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run("mount", dev, mnt)
    payload = os.urandom(5 * MiB)                      # spans several 4 MiB objects
    try:
        (mnt / "data.bin").write_bytes(payload)
        (mnt / "note.txt").write_text("before snapshot\n")
    finally:
        run("umount", mnt)
    mapper.unmap("vm1")
    c.snapshot("vm1", "s1")
    c.clone("vm1@s1", "vm2")
    for spec, ro in (("vm1@s1", True), ("vm2", False), ("vm1", False)):
        m = mapper.map(spec)
        assert m.read_only == ro
        run("e2fsck", "-fn", m.device)
        run("mount", "-o", "ro" if ro else "rw", m.device, mnt)
        try:
            assert (mnt / "data.bin").read_bytes() == payload
            assert (mnt / "note.txt").read_text() == "before snapshot\n"
            if spec == "vm2":                          # the clone diverges...
                (mnt / "note.txt").write_text("clone\n")
        finally:
            run("umount", mnt)
        mapper.unmap(m.device)
    m = mapper.map("vm1@s1")                           # ...without touching its origin
    run("mount", "-o", "ro", m.device, mnt)
    try:
        assert (mnt / "note.txt").read_text() == "before snapshot\n"
    finally:
        run("umount", mnt)
    mapper.unmap(m.device)
