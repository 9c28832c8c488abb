"""The Ganeti provider against the real `vlmc` on a real node (peers, nbdd, kernel
attach): create/attach/write/snapshot/grow/detach/remove, each script run the
way Ganeti runs it (clean environment, no arguments).

Skips, saying why, while `vlmc map` does not work in the tree (the kernel-attach
commands are not registered, or the node cannot map a volume).
"""
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archipelago_ganeti.provider import install
from archipelago_node import Node
from conftest import require, require_service

ROOT = Path(__file__).resolve().parents[2]
VOL = "3f2c1b0a-9e8d-4c7b-a6f5-e4d3c2b1a090.ext.disk0"
MiB = 1 << 20


@pytest.fixture
def node(tmp_path):
    require_service(os.geteuid() == 0, "root (block devices)")
    require("losetup", "nbdfuse")
    probe = subprocess.run([sys.executable, "-m", "archipelago.cli.vlmc", "map", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, f"vlmc map is missing: {probe.stderr.strip()[-200:]}"
    n = Node(tmp_path, "ganeti")
    try:
        n.start()
        n.start_nbdd()
        n.vlmc("create", "probe", "--size", "16M")
        m = n.vlmc("map", "probe", check=False)
        assert m.returncode == 0, f"vlmc map fails on a test node: {m.err.strip()[-300:]}"
        n.vlmc("unmap", "probe", check=False)
        yield n
    finally:
        with contextlib.suppress(Exception):
            n.vlmc("unmap", VOL, check=False)
        n.stop()


@pytest.fixture
def provider(node, tmp_path):
    vlmc = tmp_path / "vlmc"
    vlmc.write_text(f"#!/bin/sh\nexport ARCHIPELAGO_RUN_DIR={node.run_dir}\n"
                    f"exec {sys.executable} -m archipelago.cli.vlmc -c {node.conf} \"$@\"\n")
    vlmc.chmod(0o755)
    pp = [ROOT / "src/archipelago-ganeti", ROOT / "src/archipelago", ROOT / "src/kernel"]
    return install(tmp_path / "archipelago", python=sys.executable, vlmc=vlmc, pythonpath=pp)


def ganeti(d, action, **environ):
    r = subprocess.run([str(d / action)], env={"VOL_NAME": VOL, **environ},
                       capture_output=True, text=True, timeout=180, cwd="/")
    assert r.returncode == 0, f"{action}: {r.stderr}"
    return r.stdout


def test_full_cycle_against_real_vlmc(node, provider):
    d = provider
    ganeti(d, "create", VOL_SIZE="64")
    ganeti(d, "open", VOL_OPEN_EXCLUSIVE="True")
    dev = ganeti(d, "attach", VOL_SIZE="64").strip()
    assert dev.startswith("/dev/") and ganeti(d, "attach").strip() == dev
    payload = os.urandom(MiB)
    with open(dev, "r+b", buffering=0) as f:
        f.seek(5 * MiB)
        f.write(payload)
        os.fsync(f.fileno())
    ganeti(d, "snapshot", VOL_SNAPSHOT_NAME="s1", VOL_SNAPSHOT_SIZE="64")
    ganeti(d, "grow", VOL_SIZE="64", VOL_NEW_SIZE="128")
    info = json.loads(node.vlmc("info", VOL, "--json").out)
    assert 128 * MiB in info.values() or info.get("size") == 128 * MiB
    ganeti(d, "detach")
    ganeti(d, "detach")
    dev = ganeti(d, "attach").strip()
    with open(dev, "rb") as f:
        f.seek(5 * MiB)
        assert f.read(MiB) == payload
    ganeti(d, "detach")
    ganeti(d, "close")
    node.vlmc("remove", f"{VOL}@s1", check=False)
    ganeti(d, "remove")
    assert node.vlmc("info", VOL, check=False).returncode != 0
