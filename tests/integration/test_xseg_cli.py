"""The `xseg` command: create, info, report (table and JSON), check, destroy."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

XSEG = Path(sys.executable).parent / "xseg"


def xseg_cmd(*args, env=None):
    cmd = [str(XSEG)] if XSEG.exists() else [sys.executable, "-m", "archipelago.cli.xseg"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.fixture
def name():
    n = f"pytest-cli-{os.getpid()}"
    yield n
    if os.path.exists(f"/dev/shm/{n}"):
        os.unlink(f"/dev/shm/{n}")


def test_life_cycle(name):
    r = xseg_cmd("create", f"posix:{name}:4:8:4")
    assert r.returncode == 0 and f"created posix:{name}" in r.stdout
    r = xseg_cmd("info", name)
    assert r.returncode == 0 and "8 (4 dynamic)" in r.stdout
    info = json.loads(xseg_cmd("info", name, "--json").stdout)
    assert info["nr_ports"] == 8 and info["pool_free"] == info["nr_reqs"]
    # a peer that binds port 2 and dies without unbinding
    subprocess.run([sys.executable, "-c", "import os, sys, xseg; "
                    "xseg.Segment.join(sys.argv[1]).bind(2, owner='mapperd'); os._exit(0)",
                    name], check=True, timeout=60)
    r = xseg_cmd("report", name)
    assert r.returncode == 0
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:5] == ["PORT", "STATE", "OWNER", "PID", "ALIVE"]
    assert row.split()[:3] == ["2", "bound", "mapperd"] and row.split()[4] == "NO"
    rep = json.loads(xseg_cmd("report", name, "--json").stdout)
    assert [p["portno"] for p in rep["ports"]] == [2]
    assert {"req_q", "reply_q", "free_q", "owner", "owner_pid"} <= set(rep["ports"][0])
    assert len(json.loads(xseg_cmd("report", name, "--json", "--all").stdout)["ports"]) == 8
    assert xseg_cmd("check", name).stdout.strip() == "recovered 1 port"
    assert json.loads(xseg_cmd("report", name, "--json").stdout)["ports"] == []
    r = xseg_cmd("destroy", name)
    assert r.returncode == 0 and not os.path.exists(f"/dev/shm/{name}")


@pytest.mark.parametrize("args, code, msg", [
    (["create", "posix:bad/name"], 2, "bad segment spec"),
    (["create", "posix:x:1:2:3:99"], 2, "page_shift 99"),
    (["info", "pytest-cli-absent"], 1, "does not exist"),
    (["destroy", "pytest-cli-absent"], 1, "does not exist"),
])
def test_errors_are_one_line(args, code, msg):
    r = xseg_cmd(*args)
    assert r.returncode == code, r
    assert r.stderr.count("\n") == 1 and "xseg: error:" in r.stderr and msg in r.stderr


def test_default_segment_from_config(name, tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text(f"[XSEG]\nSEGMENT_NAME = {name}\nSEGMENT_PORTS = 16\n"
                    "SEGMENT_DYNPORTS = 8\nSEGMENT_SIZE = 8\n")
    env = {**os.environ, "ARCHIPELAGO_CONF": str(conf)}
    assert xseg_cmd("create", env=env).returncode == 0
    r = xseg_cmd("create", env=env)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert json.loads(xseg_cmd("info", "--json", env=env).stdout)["nr_ports"] == 16
    assert xseg_cmd("destroy", env=env).returncode == 0
