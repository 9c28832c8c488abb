"""`make demo RADOS=1`: the whole demo scenario with the NAS's volumes in a RADOS pool
of the demo's own one-node Ceph (tools/demo.py --rados), ~50 s on a quiet machine."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ceph import require_ceph
from conftest import require, require_service

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ceph, pytest.mark.rabbitmq, pytest.mark.slow]


def _ceph_daemons_under(d):
    """pids of Ceph daemons whose command line names directory d."""
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ceph-") and str(d) in cmd:
            out.append(int(p.name))
    return out


@pytest.mark.timeout(420)
def test_demo_rados(tmp_path):
    require_ceph()
    require("rabbitmq-server", "rados")
    try:
        import archipelago.volume  # noqa: F401
    except ImportError:
        require_service(False, "the volume engine (archipelago.volume)")
    run = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "demo.py"), "--rados",
                             "--dir", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        out, _ = proc.communicate(timeout=360)
    finally:
        if proc.poll() is None:          # timed out: the demo's teardown did not run
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
            subprocess.run([str(ROOT / "tools" / "ceph-cluster"), "stop", str(run / "ceph")],
                           capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, out
    assert "volumes=engine in RADOS" in out
    assert "objects, e.g. pool/" in out          # the volume's objects are in the pool
    assert "DIFFERS" not in out and out.count("data matches") >= 3
    assert "stop Ceph" in out
    assert not _ceph_daemons_under(run / "ceph"), "a Ceph daemon outlived the demo"
