"""img_sync across a cut network (DESIGN §5): the NAS (with the broker) and a compute
node in two network namespaces joined by a veth pair. The link is cut in the middle
of a sync stream (tcp transport) and restored: the sync resumes from the NAS's last
checkpoint (the resumed stream is shorter than the data) and the NAS copy is
byte-identical to what was written. Needs root (ip netns) and rabbitmq-server.
(kill -9 of either daemon mid-stream: tests/integration/test_sync_map.py.)"""
import hashlib
import os
import sys
import time
from pathlib import Path

import netns
import pytest
import rocks_cli
from conftest import require_service
from rocks_cli import rocks_json as js
from rocks_cli import storagemap_row

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
pytestmark = [pytest.mark.netns, pytest.mark.rabbitmq, pytest.mark.slow]

NAS, VM = "nas-7-0", "compute-7-0"
MiB = 1 << 20
SIZE = 64 * MiB
DATA_AT, DATA_LEN = 8 * MiB, 32 * MiB
RATE = "2M"                 # uploadspeed: the stream lasts ~16 s, long enough to cut
PORT = 7451

# Runs inside the compute node's namespace: write a file's bytes to, or hash the
# whole of, a device or an NBD URI.
IO = """
import hashlib, os, sys
from archipelago.nbd.client import Client
op, target, size, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
src = sys.argv[5] if len(sys.argv) > 5 else None
data = open(src, "rb").read() if src else None
if target.startswith("/dev/"):
    fd = os.open(target, os.O_RDWR)
    if data is not None:
        os.pwrite(fd, data, offset); os.fsync(fd)
    else:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        print(hashlib.sha256(os.pread(fd, size, 0)).hexdigest())
    os.close(fd)
else:
    with Client.connect_uri(target) as c:
        c.go(target.rsplit("/", 1)[1])
        if data is not None:
            c.write(offset, data); c.flush()
        else:
            h = hashlib.sha256()
            for o in range(0, size, 8 << 20):
                h.update(c.read(o, min(8 << 20, size - o)))
            print(h.hexdigest())
"""


@pytest.fixture(scope="module")
def net():
    require_service(netns.available(), "root and ip(8) for netns")
    require_service(Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists(), "rabbitmq-server")
    pair = netns.NetnsPair(f"s{os.getpid() % 1000}", subnet=214)
    try:
        pair.start()
    except RuntimeError as e:
        require_service(False, str(e))
    yield pair
    pair.stop()


@pytest.fixture(scope="module")
def cluster(net, tmp_path_factory):
    from cluster import Cluster, best_attacher
    d = tmp_path_factory.mktemp("netnssync")
    secret = d / "sync.secret"
    secret.write_text("s3cret-for-the-netns-sync-test-0123\n")
    secret.chmod(0o600)
    common = f"\n[sync]\nauth_token_file = {secret}\n"
    extra = {NAS: common + f"listen = {net.ip_a}:{PORT}\nidle_timeout = 3\n",
             VM: common + "connect_timeout = 1\n\n[replica]\nchunk = 1M\n"}
    wrap_nas = net.wrap(net.a)
    cl = Cluster(d, nas=NAS, computes=(VM,), volumes="engine", attacher=best_attacher(),
                 map_timeout=20, addresses={NAS: net.ip_a, VM: net.ip_b}, extra=extra,
                 wrap={NAS: wrap_nas, "frontend": wrap_nas, VM: net.wrap(net.b),
                       "rabbitmq": [*wrap_nas, "env", f"RMQ_LISTEN={net.ip_a}"]})
    cl.start_broker()
    try:
        for name, _ in cl.nodes():
            cl.start_node(name)
        yield cl
    finally:
        net.link(True)
        cl.stop_nodes(timeout=15)
        cl.stop_broker()


def row(cl, volume):
    return storagemap_row(cl, NAS, volume)


def wait_for(fn, what, timeout=120):
    return rocks_cli.wait_for(fn, what, timeout, interval=0.5)


def vm_io(net, *args):
    r = net.in_ns(net.b, sys.executable, "-c", IO, *map(str, args))
    return r.stdout.strip()


@pytest.mark.timeout(600)
def test_cut_link_mid_stream_resumes_and_is_identical(net, cluster, tmp_path):
    cl = cluster
    data = os.urandom(DATA_LEN)
    src = tmp_path / "data"
    src.write_bytes(data)
    expect = bytearray(SIZE)
    expect[DATA_AT:DATA_AT + DATA_LEN] = data
    js(cl, "set", "host", "storagemap", NAS, "cv1", "frequency=3600", f"uploadspeed={RATE}")
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "cv1", VM, "64M", "img_sync=true")
    # copy complete first: a sync started during the copy would not show as
    # syncing-to-nas (the mapping stays syncing-to-host)
    wait_for(lambda: row(cl, "cv1")["state"] == "mapped-local", "the copy")
    vm_io(net, "write", r["device"], SIZE, DATA_AT, src)
    js(cl, "set", "host", "storagemap", NAS, "cv1", "frequency=1")
    wait_for(lambda: row(cl, "cv1")["state"] == "syncing-to-nas", "the periodic sync")
    assert row(cl, "cv1")["lastsync"] is None
    time.sleep(7)                    # ~14 MiB sent; the NAS checkpoints every 5 s
    net.link(False)
    try:
        time.sleep(15)               # the sender (10 s) and the receiver (3 s) give up
    finally:
        net.link(True)
    synced = wait_for(lambda: (lambda m: m if m["lastsync"] else None)(row(cl, "cv1")),
                      "the resumed sync", timeout=300)
    js(cl, "set", "host", "storagemap", NAS, "cv1", "frequency=3600")
    # the stream that committed resumed from a checkpoint: it carried less than the data
    assert 0 < synced["syncbytes"] < DATA_LEN, synced
    js(cl, "remove", "host", "storagemap", NAS, "cv1")
    assert row(cl, "cv1")["state"] == "unmapped"
    [p] = js(cl, "add", "host", "storagemap", NAS, "pool", "cv1", VM, "64M")
    try:
        assert vm_io(net, "hash", p["device"], SIZE, 0) == hashlib.sha256(expect).hexdigest()
    finally:
        js(cl, "remove", "host", "storagemap", NAS, "cv1")
