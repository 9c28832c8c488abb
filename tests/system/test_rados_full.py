"""A full Ceph cluster answers NoSpace at once (it never parks writers), deletes still
work, and writes resume once space is back. Runs its own tiny cluster (a full OSD
would disturb the session's shared one)."""
import os
import shutil
import time

import pytest
from ceph import CephCluster, require_ceph

from archipelago.errors import NoSpace
from archipelago.store.rados import RadosStore

pytestmark = [pytest.mark.ceph, pytest.mark.slow]


@pytest.fixture
def tiny_cluster(tmp_path_factory):
    require_ceph()
    d = tmp_path_factory.mktemp("tiny-ceph")
    env = dict(os.environ, POOL="tiny", MGR="0", STORE_BYTES=str(128 << 20), OP_TIMEOUT="15")
    cluster = CephCluster(dir=d, conf=d / "ceph.conf", pool="tiny", env=env)
    try:
        cluster.tool("start")
        yield cluster
    finally:
        cluster.tool("stop")
        shutil.rmtree(d, ignore_errors=True)


def test_full_cluster_answers_nospace(tiny_cluster):
    s = RadosStore(conf=tiny_cluster.conf, pool=tiny_cluster.pool, op_timeout=15)
    try:
        data = os.urandom(4 << 20)
        deadline = time.monotonic() + 120
        written = 0
        with pytest.raises(NoSpace):
            while time.monotonic() < deadline:      # the OSD reports full after a while
                s.write(f"o{written}", 0, data)
                written += 1
                if written % 8 == 0:
                    time.sleep(0.5)
        t0 = time.monotonic()
        with pytest.raises(NoSpace):
            s.replace("meta", b"x")
        assert time.monotonic() - t0 < 5, "a full cluster must not park writers"
        for name in list(s.list()):
            assert s.delete(name)                   # deletes work on a full cluster
        deadline = time.monotonic() + 60
        while True:
            try:
                s.write("after", 0, b"ok")
                break
            except NoSpace:
                assert time.monotonic() < deadline, "writes did not resume after deletes"
                time.sleep(0.5)
        assert s.read("after", 0, 2) == b"ok"
    finally:
        s.close()
