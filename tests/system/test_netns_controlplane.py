"""The NAS (with the broker) and a compute node in separate network namespaces joined
by a veth pair: map, use, unmap; cut the link mid-map and mid-unmap -> clear errors,
consistent state once it is back. Needs root (ip netns) and rabbitmq-server."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
pytestmark = [pytest.mark.netns, pytest.mark.rabbitmq]

TAG = os.getpid() % 200 + 20
NS_NAS, NS_VM = f"arch-nas-{TAG}", f"arch-vm-{TAG}"
VETH_NAS, VETH_VM = f"arn{TAG}", f"arv{TAG}"
IP_NAS, IP_VM = f"10.213.{TAG}.1", f"10.213.{TAG}.2"
NAS, VM = "nas-5-0", "compute-5-0"
MAP_TIMEOUT = 5


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def in_ns(ns, *cmd, check=True):
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


@pytest.fixture(scope="module")
def netns():
    require_service(os.geteuid() == 0 and shutil.which("ip"), "root and ip(8) for netns")
    require_service(Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists(), "rabbitmq-server")
    try:
        for ns in (NS_NAS, NS_VM):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", VETH_NAS, "netns", NS_NAS, "type", "veth", "peer", "name",
           VETH_VM, "netns", NS_VM)
        in_ns(NS_NAS, "ip", "addr", "add", f"{IP_NAS}/24", "dev", VETH_NAS)
        in_ns(NS_VM, "ip", "addr", "add", f"{IP_VM}/24", "dev", VETH_VM)
        in_ns(NS_NAS, "ip", "link", "set", VETH_NAS, "up")
        in_ns(NS_VM, "ip", "link", "set", VETH_VM, "up")
    except subprocess.CalledProcessError as e:
        _teardown()
        require_service(False, f"network namespaces ({e.stderr.strip()})")
    # If this test process is killed, remove the namespaces and what runs in them.
    cleanup = "; ".join(f"ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}"
                        for ns in (NS_NAS, NS_VM))
    watchdog = subprocess.Popen(
        ["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; {cleanup}"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield
    _teardown()
    watchdog.kill()
    watchdog.wait()


def _teardown():
    for ns in (NS_NAS, NS_VM):
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:            # only what this test started lives in its namespaces
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", ns, check=False)


def link(up):
    in_ns(NS_VM, "ip", "link", "set", VETH_VM, "up" if up else "down")


@pytest.fixture(scope="module")
def cluster(netns, tmp_path_factory):
    from cluster import Cluster, best_attacher, best_volumes
    wrap_nas = ["ip", "netns", "exec", NS_NAS]
    cl = Cluster(tmp_path_factory.mktemp("netns"), nas=NAS, computes=(VM,),
                 volumes=best_volumes(), attacher=best_attacher(), map_timeout=MAP_TIMEOUT,
                 addresses={NAS: IP_NAS, VM: IP_VM},
                 wrap={NAS: wrap_nas, "frontend": wrap_nas, VM: ["ip", "netns", "exec", NS_VM],
                       "rabbitmq": [*wrap_nas, "env", f"RMQ_LISTEN={IP_NAS}"]})
    cl.start_broker()
    try:
        for name, _ in cl.nodes():
            cl.start_node(name)
        yield cl
    finally:
        link(True)
        cl.stop_nodes(timeout=15)
        cl.stop_broker()


def rocks(cl, *words):
    r = cl.rocks(*words)
    assert r.returncode == 0, r.stderr
    return r.stdout


def js(cl, *words):
    return json.loads(rocks(cl, *words, "output-format=json"))


def state(cl, volume):
    rows = {r["volume"]: r for r in js(cl, "list", "host", "storagemap", NAS)}
    return rows[volume]["state"] if volume in rows else None


def settle(cl, volume, want, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = cl.rocks("list", "host", "storagedev", VM, "timeout=3", "output-format=json")
        if r.returncode == 0 and state(cl, volume) == want:
            devs = json.loads(r.stdout)
            if want != "unmapped" or not [d for d in devs if d["volume"] == volume]:
                return
        time.sleep(0.5)
    raise AssertionError(f"{volume} did not settle to {want}")


def test_map_use_unmap(cluster):
    cl = cluster
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "nv1", VM, "64M")
    assert IP_NAS in row["uri"]
    if row["device"].startswith("/dev/"):
        data = os.urandom(8192)
        fd = os.open(row["device"], os.O_RDWR)
        try:
            os.pwrite(fd, data, 4096)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            assert os.pread(fd, 8192, 4096) == data
        finally:
            os.close(fd)
    rocks(cl, "remove", "host", "storagemap", NAS, "nv1")
    settle(cl, "nv1", "unmapped")


def test_cut_link_mid_map(cluster):
    cl = cluster
    link(False)
    try:
        r = cl.rocks("add", "host", "storagemap", NAS, "pool", "nv2", VM, "64M")
        assert r.returncode != 0
        assert f"compute node {VM} did not answer within {MAP_TIMEOUT}s" in r.stderr
        assert state(cl, "nv2") == "unmapped"
    finally:
        link(True)
    settle(cl, "nv2", "unmapped")            # a late attach is undone
    rocks(cl, "add", "host", "storagemap", NAS, "pool", "nv2", VM, "64M")
    rocks(cl, "remove", "host", "storagemap", NAS, "nv2")
    settle(cl, "nv2", "unmapped")


def test_cut_link_mid_unmap(cluster):
    cl = cluster
    rocks(cl, "add", "host", "storagemap", NAS, "pool", "nv3", VM, "64M")
    link(False)
    try:
        r = cl.rocks("remove", "host", "storagemap", NAS, "nv3")
        assert r.returncode != 0 and "still mapped" in r.stderr, r.stderr
        assert state(cl, "nv3") == "mapped"
    finally:
        link(True)
    settle(cl, "nv3", "mapped")
    rocks(cl, "remove", "host", "storagemap", NAS, "nv3")
    settle(cl, "nv3", "unmapped")
