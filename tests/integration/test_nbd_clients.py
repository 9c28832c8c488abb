"""nbdd against real NBD clients: nbdinfo, nbdcopy, qemu-img, qemu-io, fio."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import require, require_service

from archipelago.nbd.testing import serve

MiB = 1 << 20


def run(*argv, check=True, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=120, **kw)


@pytest.fixture
def exports(tmp_path):
    """A directory of raw files served by an in-process nbdd (plus a RAM disk)."""
    d = tmp_path / "exports"
    d.mkdir()
    with open(d / "vol", "wb") as f:
        f.truncate(64 * MiB)
        f.seek(5 * MiB)
        f.write(os.urandom(3 * MiB))
    (d / "vol@snap").write_bytes(b"S" * MiB)
    with serve(exports_dir=d, memory={"ram": 32 * MiB}, tcp=True) as srv:
        yield srv, d


def test_nbdinfo_list_and_map(exports):
    require("nbdinfo")
    srv, _ = exports
    out = run("nbdinfo", "--list", "--json", srv.uri()).stdout
    names = {e["export-name"] for e in json.loads(out)["exports"]}
    assert {"vol", "vol@snap", "ram"} <= names
    info = json.loads(run("nbdinfo", "--json", srv.uri("vol")).stdout)["exports"][0]
    assert info["export-size"] == 64 * MiB
    assert info["can_multi_conn"] and info["can_fua"] and info["can_fast_zero"]
    assert "base:allocation" in info["contexts"]
    assert info["block_size_maximum"] == 32 * MiB
    # the map shows the 3 MiB of data at 5 MiB and holes elsewhere
    rows = [line.split() for line in run("nbdinfo", "--map", srv.uri("vol")).stdout.splitlines()]
    data = [(int(r[0]), int(r[1])) for r in rows if r[-1] == "data"]
    assert data == [(5 * MiB, 3 * MiB)]
    # the same over TCP
    assert run("nbdinfo", "--size", srv.uri("vol", tcp=True)).stdout.strip() == str(64 * MiB)


def test_unknown_export_is_a_clean_error(exports):
    require("nbdinfo")
    srv, _ = exports
    res = run("nbdinfo", srv.uri("nosuch"), check=False)
    assert res.returncode != 0 and "nosuch" in res.stderr
    res = run("nbdinfo", srv.uri("../etc"), check=False)
    assert res.returncode != 0


def test_nbdcopy_round_trip_multi_conn(exports, tmp_path):
    require("nbdcopy")
    srv, _ = exports
    src = tmp_path / "src.raw"
    src.write_bytes(os.urandom(32 * MiB))
    run("nbdcopy", "--connections=4", "--flush", src, srv.uri("ram"))
    back = tmp_path / "back.raw"
    run("nbdcopy", "--connections=4", srv.uri("ram"), back)
    assert back.read_bytes() == src.read_bytes()


def test_qemu_img_compare(exports, tmp_path):
    require("qemu-img")
    srv, d = exports
    ref = tmp_path / "ref.raw"
    ref.write_bytes((d / "vol").read_bytes())
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", ref, srv.uri("vol"))
    with open(ref, "r+b") as f:
        f.seek(7 * MiB + 3)
        f.write(b"different")
    res = run("qemu-img", "compare", "-f", "raw", "-F", "raw", ref, srv.uri("vol"), check=False)
    assert res.returncode == 1


def qemu_io_args(cmds):
    return [arg for c in cmds for arg in ("-c", c)]


def test_qemu_io_unaligned_patterns(exports):
    require("qemu-io")
    srv, _ = exports
    uri = srv.uri("ram")
    cmds = ["write -P 0xab 1000 5000", "write -P 0xcd 4194300 10",  # across a 4 MiB boundary
            "write -z 2000 100", "flush"]
    out = run("qemu-io", "-f", "raw", *qemu_io_args(cmds), uri).stdout
    assert "error" not in out.lower()
    checks = ["read -P 0xab 1000 1000", "read -P 0 2000 100", "read -P 0xab 2100 3900",
              "read -P 0xcd 4194300 10", "read -P 0 4194310 100", "read -P 0 0 1000"]
    out = run("qemu-io", "-f", "raw", "-r", *qemu_io_args(checks), uri).stdout
    assert "Pattern verification failed" not in out and "error" not in out.lower(), out


def test_read_only_snapshot_export_refuses_writes(exports):
    require("qemu-io", "nbdinfo")
    srv, d = exports
    info = json.loads(run("nbdinfo", "--json", srv.uri("vol@snap")).stdout)["exports"][0]
    assert info["is_read_only"]
    res = run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 512", srv.uri("vol@snap"),
              check=False)
    assert res.returncode != 0 or "failed" in (res.stdout + res.stderr).lower()
    assert (d / "vol@snap").read_bytes() == b"S" * MiB


def test_fio_random_writes_verify(exports):
    require("fio")
    require_service("nbd" in run("fio", "--enghelp", check=False).stdout,
                    "fio with the nbd engine")
    srv, _ = exports
    res = run("fio", "--name=verify", "--ioengine=nbd", f"--uri={srv.uri('ram')}",
              "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=16m",
              "--verify=crc32c", "--do_verify=1", "--output-format=json",
              # fio would otherwise leave a *-verify.state file in the cwd
              "--verify_state_save=0")
    job = json.loads(res.stdout[res.stdout.index("{"):])["jobs"][0]
    assert job["error"] == 0
    assert job["write"]["io_bytes"] == 16 * MiB


def test_nbdd_daemon_from_config(tmp_path):
    """The real entry point: config file, status file, allow-list refusal, SIGTERM."""
    require("nbdinfo")
    sock = tmp_path / "nbd.sock"
    run_dir = tmp_path / "run"
    conf = tmp_path / "a.conf"
    conf.write_text(f"[node]\nrun_dir = {run_dir}\n[nbd]\nlisten = unix:{sock} 127.0.0.1:0\n"
                    f"allow = unix\nmemory = disk:8M\nvolumes = no\n")
    proc = subprocess.Popen([sys.executable, "-m", "archipelago.nbd", "-c", str(conf)],
                            stderr=subprocess.PIPE, text=True)
    try:
        status = run_dir / "nbdd.json"
        for _ in range(200):
            if status.exists():
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        st = json.loads(status.read_text())
        uri = f"nbd+unix:///disk?socket={sock}"
        assert run("nbdinfo", "--size", uri).stdout.strip() == str(8 << 20)
        port = int(st["listen"][1].rsplit(":", 1)[1])
        # TCP clients are not on the allow list: closed before a byte is sent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.recv(100) == b""
        res = run("nbdinfo", f"nbd://127.0.0.1:{port}/disk", check=False)
        assert res.returncode != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0
    assert not sock.exists() and not (run_dir / "nbdd.pid").exists()


def test_bad_config_fails_at_start(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("[nbd]\nlisten = 127.0.0.1:notaport\n")
    res = subprocess.run([sys.executable, "-m", "archipelago.nbd", "-c", str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "listen" in res.stderr
