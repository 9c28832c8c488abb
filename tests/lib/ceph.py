"""The one-node Ceph fixture: one cluster per test session (tools/ceph-cluster).

    from ceph import ceph_cluster  # noqa: F401  (in a test module or conftest)

    @pytest.mark.ceph
    def test_x(ceph_cluster):
        store = RadosStore(conf=ceph_cluster.conf, pool=ceph_cluster.pool)

`ceph_cluster` starts mon + one memstore OSD under a temp dir on a free port the
first time a test asks for it and stops every daemon at session teardown. Missing
Ceph packages or a cluster that does not start: skip locally, fail under CI=true
(conftest.require_service). `new_pool()` gives a test its own pool when it must
not see other tests' objects; `stop_osd()`/`start_osd()` restart the OSD (memstore
keeps its data across a clean stop).
"""
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "ceph-cluster"
POOL = "archipelago"
_pool_ids = itertools.count(1)


@dataclass
class CephCluster:
    dir: Path
    conf: Path
    pool: str
    env: dict = field(default_factory=dict)

    def tool(self, cmd, timeout=180):
        """Run tools/ceph-cluster CMD on this cluster; raises on failure with its output."""
        res = subprocess.run([str(TOOL), cmd, str(self.dir)], env=self.env, timeout=timeout,
                             capture_output=True, text=True, check=False)
        if res.returncode:
            raise RuntimeError(f"ceph-cluster {cmd} failed (exit {res.returncode}):\n"
                               f"{res.stdout}{res.stderr}")
        return res.stdout

    def ceph(self, *args, timeout=60):
        """Run the `ceph` CLI against this cluster; the parsed JSON output."""
        res = subprocess.run(["ceph", "--conf", str(self.conf), *args, "--format", "json"],
                             timeout=timeout, capture_output=True, text=True, check=True)
        return json.loads(res.stdout) if res.stdout.strip() else None

    def new_pool(self, prefix="t"):
        """A fresh, empty pool of its own for one test."""
        name = f"{prefix}{next(_pool_ids)}"
        self.ceph("osd", "pool", "create", name, "8")
        self.ceph("osd", "pool", "application", "enable", name, "rados")
        return name

    def stop_osd(self):
        self.tool("stop-osd")

    def start_osd(self):
        self.tool("start-osd")


def _have_ceph():
    return all(shutil.which(c) for c in ("ceph-mon", "ceph-osd", "ceph", "monmaptool"))


def require_ceph():
    """Skip locally / fail under CI when the Ceph daemons or python3-rados are missing."""
    require_service(_have_ceph(), "Ceph (ceph-mon, ceph-osd; tools/deps-debian.txt)")
    try:
        import rados  # noqa: F401
    except ImportError:
        require_service(False, "python3-rados")


# Every test module imports the fixture, and pytest keeps one session-scoped
# instance per importing module: they share one cluster, started by the first and
# stopped when the last one is torn down (at the end of the session).
_shared = {"cluster": None, "users": 0}


@pytest.fixture(scope="session")
def ceph_cluster():
    """A running one-node Ceph for the whole session (see the module docstring)."""
    require_ceph()
    if _shared["cluster"] is None:
        _shared["cluster"] = _start()
    _shared["users"] += 1
    try:
        yield _shared["cluster"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            cluster, _shared["cluster"] = _shared["cluster"], None
            _stop(cluster)
            shutil.rmtree(cluster.dir, ignore_errors=True)


PREFIX = "archipelago-ceph-"


def _reap_orphans():
    """Stop clusters this fixture started for a test process that is gone (it died
    before its teardown and its watchdog did not get to run)."""
    for d in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or Path(f"/proc/{owner}").exists():
            continue
        subprocess.run([str(TOOL), "stop", str(d)], capture_output=True, timeout=120,
                       check=False)
        shutil.rmtree(d, ignore_errors=True)


def _start():
    _reap_orphans()
    d = Path(tempfile.mkdtemp(prefix=PREFIX))
    env = dict(os.environ, POOL=POOL, MGR=os.environ.get("CEPH_MGR", "0"),
               STORE_BYTES=str(1 << 30), OP_TIMEOUT="20")
    cluster = CephCluster(dir=d, conf=d / "ceph.conf", pool=POOL, env=env)
    try:
        cluster.tool("start")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        _stop(cluster)
        shutil.rmtree(d, ignore_errors=True)
        require_service(False, f"one-node Ceph ({e})")
    (d / "owner.pid").write_text(str(os.getpid()))
    # If this test process dies without its teardown (a crash in a C extension, kill
    # -9), a watchdog stops the cluster anyway: no Ceph daemon outlives the session.
    subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; "
                      f"done; '{TOOL}' stop '{d}' >/dev/null 2>&1; rm -rf '{d}'"],
                     env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cluster


def _stop(cluster):
    try:
        cluster.tool("stop", timeout=120)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"warning: stopping the Ceph fixture failed: {e}")
