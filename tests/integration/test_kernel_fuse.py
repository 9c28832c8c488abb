"""Volumes of a real nbdd as block devices through FUSE+loop (nbdfuse + losetup).

Needs root (loop devices, mount). Every test unmaps what it mapped; the
fixture force-unmaps leftovers and stops nbdd, so no loop device or FUSE mount
outlives a test.
"""
import json
import os
import subprocess
import sys

import pytest
from conftest import require, require_service

from archipelago import config
from archipelago.errors import Busy, NotFound
from archipelago.nbd.testing import serve
from archipelago_kernel.fuse_loop import FuseLoopConnector
from archipelago_kernel.mapper import Mapper

MiB = 1 << 20


def run(*argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=120)


@pytest.fixture
def node(tmp_path, run_dir):
    """A node: nbdd (in-process, status file in the run dir) serving raw files."""
    require("nbdfuse", "losetup", "fusermount3", "mkfs.ext4", "e2fsck")
    ok, why = FuseLoopConnector.available()
    require_service(ok and os.geteuid() == 0, f"FUSE+loop as root ({why or 'not root'})")
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("vol", "other"):
        with open(exports / name, "wb") as f:
            f.truncate(64 * MiB)
    cfg = config.from_text(f"[node]\nrun_dir = {run_dir}\n")
    with serve(exports_dir=exports, status_path=str(run_dir / "nbdd.json")) as srv:
        mapper = Mapper(cfg, method="fuse")
        try:
            yield mapper, exports, srv
        finally:
            for m, _ in mapper.showmapped():
                subprocess.run(["umount", "-l", m.device], capture_output=True)
                mapper.unmap(m.id, force=True)


def test_filesystem_survives_unmap_and_remap(node, tmp_path):
    mapper, exports, _ = node
    dev = mapper.map("vol").device
    assert dev.startswith("/dev/loop")
    run("mkfs.ext4", "-q", "-F", dev)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run("mount", dev, mnt)
    try:
        payload = os.urandom(3 * MiB)
        (mnt / "a.bin").write_bytes(payload)
        (mnt / "dir").mkdir()
        (mnt / "dir" / "b.txt").write_text("hello\n")
        with pytest.raises(Busy, match="mounted"):
            mapper.unmap(dev)
    finally:
        run("umount", mnt)
    assert [m.device for m in mapper.unmap(dev)] == [dev]
    assert mapper.showmapped() == []
    run("e2fsck", "-fn", exports / "vol")                  # clean, straight from the export
    dev2 = mapper.map("vol", read_only=True).device
    run("e2fsck", "-fn", dev2)
    run("mount", "-o", "ro", dev2, mnt)
    try:
        assert (mnt / "a.bin").read_bytes() == payload
        assert (mnt / "dir" / "b.txt").read_text() == "hello\n"
    finally:
        run("umount", mnt)
    mapper.unmap("vol")


def test_map_and_unmap_are_idempotent(node):
    mapper, _, _ = node
    a = mapper.map("vol")
    b = mapper.map("vol")
    assert a.device == b.device and a.id == b.id
    with pytest.raises(Busy, match="read-write"):
        mapper.map("vol", read_only=True)
    c = mapper.map("other")
    assert c.device != a.device
    assert sorted(m.volume for m, alive in mapper.showmapped() if alive) == ["other", "vol"]
    assert len(mapper.unmap("vol")) == 1
    assert mapper.unmap("vol") == []                       # already gone: fine
    assert mapper.unmap(a.device) == []
    mapper.unmap(c.device)


def test_unmap_refuses_open_device_unless_forced(node):
    mapper, _, _ = node
    dev = mapper.map("vol").device
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import time; f = open({dev!r}, 'rb'); time.sleep(60)"])
    try:
        for _ in range(100):
            if any(os.path.realpath(f"/proc/{holder.pid}/fd/{fd}") == dev
                   for fd in os.listdir(f"/proc/{holder.pid}/fd")):
                break
            subprocess.run(["sleep", "0.05"])
        with pytest.raises(Busy, match="open by process"):
            mapper.unmap(dev)
        mapper.unmap(dev, force=True)
        assert mapper.showmapped() == []
    finally:
        holder.kill()
        holder.wait()


def test_failed_map_leaves_nothing_behind(node, run_dir):
    mapper, _, _ = node
    before = run("losetup", "-a").stdout
    with pytest.raises(NotFound):
        mapper.map("nosuch")
    # nbdfuse itself failing (a URI nobody serves) is cleaned up as well
    m = Mapper(mapper.cfg, method="fuse")
    m.uri = lambda export: f"nbd+unix:///{export}?socket={run_dir}/nobody.sock"
    m.probe = lambda uri, export: None
    with pytest.raises(Exception, match="nbdfuse"):
        m.map("vol")
    assert mapper.showmapped() == []
    assert run("losetup", "-a").stdout == before
    assert not any((run_dir / "kernel" / "work").iterdir())
    assert "nbdfuse" not in run("sh", "-c", f"grep -l {run_dir} /proc/mounts || true").stdout


def test_cli_and_restart_safe_state(node, run_dir):
    """`python -m archipelago_kernel` (what vlmc adds) reads the state a previous run left."""
    env = {**os.environ, "ARCHIPELAGO_RUN_DIR": str(run_dir)}

    def cli(*args, check=True):
        return subprocess.run([sys.executable, "-m", "archipelago_kernel", *args],
                              capture_output=True, text=True, env=env, timeout=60,
                              check=check)
    dev = cli("map", "--method", "fuse", "vol").stdout.strip()
    assert dev.startswith("/dev/loop")
    rows = json.loads(cli("showmapped", "--json").stdout)
    assert [(r["volume"], r["device"], r["alive"]) for r in rows] == [("vol", dev, True)]
    assert "vol" in cli("showmapped").stdout
    res = cli("map", "no/such", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error:")
    cli("unmap", dev)
    assert json.loads(cli("showmapped", "--json").stdout) == []
    cli("unmap", dev)                                        # idempotent
