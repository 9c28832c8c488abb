"""img_sync end to end (DESIGN §5): real RabbitMQ, real daemons, real NBD.

compute-6-0 copies only on first read/write ([replica] fetch = paused), so reads of
regions not yet copied are tested deterministically; compute-6-1 copies in the
background; compute-6-2 sends its streams through ssh (a private sshd). Data
written through the compute node's device must come back byte-identical from the
NAS after unmap, also when a daemon is killed mid-sync."""
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sshd as private_sshd
from conftest import require_service
from rocks_cli import rocks_json as js
from rocks_cli import storagemap_row, wait_for

from archipelago.nbd.client import Client

pytest_plugins = ["rabbitmq"]
pytestmark = pytest.mark.rabbitmq
NAS, C0, C1, C2 = "nas-6-0", "compute-6-0", "compute-6-1", "compute-6-2"
SIZE = 64 << 20
MiB = 1 << 20


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cl(rabbitmq, tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from cluster import Cluster, best_attacher
    d = tmp_path_factory.mktemp("synccluster")
    secret = d / "sync.secret"
    secret.write_text("s3cret-for-the-sync-tests-0123456789\n")
    secret.chmod(0o600)
    common = f"\n[sync]\nauth_token_file = {secret}\n"
    sshd = private_sshd.PrivateSshd(d / "sshd")
    extra = {NAS: common + f"listen = 127.0.0.1:{_free_port()}\n",
             C0: common + "\n[replica]\nfetch = paused\nchunk = 1M\n",
             C1: common + "\n[replica]\nchunk = 1M\n",
             C2: common + f"transport = ssh\nssh_command = {shlex.join(sshd.command)}\n"}
    c = Cluster(d, nas=NAS, computes=(C0, C1, C2), volumes="engine",
                attacher=best_attacher(), map_timeout=20, extra=extra)
    c.url = rabbitmq.url
    c.sshd = sshd.start() if private_sshd.available() else None
    try:
        for name, _ in c.nodes():
            c.start_node(name, wait=False)
        for name, _ in c.nodes():
            c.wait_ready(name)
        yield c
    finally:
        c.stop_nodes(timeout=10)
        sshd.stop()


def row(cl, volume):
    return storagemap_row(cl, NAS, volume)


def io(dev, offset, data=None, length=0):
    """Read or write through a block device or an NBD URI."""
    if dev.startswith("/dev/"):
        fd = os.open(dev, os.O_RDWR if data is not None else os.O_RDONLY)
        try:
            if data is not None:
                os.pwrite(fd, data, offset)
                os.fsync(fd)
                return None
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)
    with Client.connect_uri(dev) as c:
        c.go(dev.rsplit("/", 1)[1])
        if data is not None:
            c.write(offset, data)
            c.flush()
            return None
        out = bytearray()
        for o in range(offset, offset + length, 8 * MiB):
            out += c.read(o, min(8 * MiB, offset + length - o))
        return bytes(out)


def seed(cl, volume, writes):
    """Put data on the NAS copy through a plain (non-sync) mapping."""
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", volume, C1, "64M")
    for off, data in writes:
        io(r["device"], off, data)
    js(cl, "remove", "host", "storagemap", NAS, volume)


def nas_image(cl, volume):
    """The whole NAS copy, read through a plain mapping."""
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", volume, C0, "64M")
    try:
        return io(r["device"], 0, length=SIZE)
    finally:
        js(cl, "remove", "host", "storagemap", NAS, volume)


def apply(expect, off, data):
    expect[off:off + len(data)] = data


def test_copy_on_read_then_write_then_unmap_is_identical(cl):
    expect = bytearray(SIZE)
    seeded = [(3 * MiB + 4096, os.urandom(200 << 10)), (40 * MiB, os.urandom(MiB))]
    seed(cl, "sv1", seeded)
    for off, data in seeded:
        apply(expect, off, data)
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv1", C0, "64M", "img_sync=true")
    dev = r["device"]
    assert row(cl, "sv1")["state"] == "syncing-to-host"
    [d] = js(cl, "list", "host", "storagedev", C0)
    assert d["copied"] == "0%"                              # nothing copied yet
    # regions never copied read right (fetched from the NAS on first read)
    assert io(dev, 40 * MiB, length=MiB) == seeded[1][1]
    assert io(dev, 3 * MiB, length=MiB) == bytes(expect[3 * MiB:4 * MiB])
    assert io(dev, 20 * MiB, length=4096) == bytes(4096)
    writes = [(3 * MiB + 100, os.urandom(5000)), (40 * MiB + MiB // 2, os.urandom(MiB)),
              (60 * MiB, os.urandom(64 << 10))]
    for off, data in writes:
        io(dev, off, data)
        apply(expect, off, data)
    assert io(dev, 40 * MiB, length=2 * MiB) == bytes(expect[40 * MiB:42 * MiB])
    js(cl, "remove", "host", "storagemap", NAS, "sv1")
    assert row(cl, "sv1")["state"] == "unmapped"
    assert js(cl, "list", "host", "storagedev", C0) == []
    assert nas_image(cl, "sv1") == bytes(expect)


def test_background_copy_and_periodic_sync(cl):
    expect = bytearray(SIZE)
    seeded = [(5 * MiB, os.urandom(2 * MiB))]
    seed(cl, "sv2", seeded)
    apply(expect, *seeded[0])
    js(cl, "set", "host", "storagemap", NAS, "sv2", "frequency=1")
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv2", C1, "64M", "img_sync=true")
    wait_for(lambda: row(cl, "sv2")["state"] == "mapped-local", "the background copy")
    assert row(cl, "sv2")["copied"] == "100%"
    data = os.urandom(3 * MiB)
    io(r["device"], 30 * MiB, data)
    apply(expect, 30 * MiB, data)
    # a periodic sync brings it to the NAS copy while still mapped
    nas_uri = row(cl, "sv2")["uri"]
    wait_for(lambda: io(nas_uri, 30 * MiB, length=3 * MiB) == data, "a periodic sync")
    js(cl, "remove", "host", "storagemap", NAS, "sv2")
    assert nas_image(cl, "sv2") == bytes(expect)


def replica_progress(cl, host, volume):
    """The compute node's own progress of its replica of `volume` (list_dev, as
    `rocks list host storagedev` asks it): fetched/read/skipped bytes."""
    from rocks_command_archipelago.client import Client as Frontend
    fe = Frontend(str(cl.frontend_conf()))
    try:
        r = fe.call(host, "list_dev", role="compute", timeout=30)
    finally:
        fe.close()
    return next(d["replica"] for d in r["devices"] if d["volume"] == volume)


def test_background_copy_skips_what_the_nas_never_wrote(cl):
    """The copy asks the NAS's export for block status: the NAS's holes (no object
    in its map) are marked local without being read; only the written objects
    cross the network."""
    expect = bytearray(SIZE)
    seeded = [(3 * MiB + 4096, os.urandom(200 << 10)), (41 * MiB, os.urandom(MiB))]
    seed(cl, "sv9", seeded)
    for off, data in seeded:
        apply(expect, off, data)
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv9", C1, "64M", "img_sync=true")
    wait_for(lambda: row(cl, "sv9")["state"] == "mapped-local", "the background copy")
    assert row(cl, "sv9")["copied"] == "100%"
    p = replica_progress(cl, C1, "sv9")
    assert p["done"] and p["fetched"] == SIZE
    # the NAS allocates whole 4 MiB objects: objects 0 and 10 hold the data
    assert (200 << 10) + MiB <= p["read"] <= 8 * MiB
    assert p["skipped"] == SIZE - p["read"] >= 56 * MiB
    [d] = [d for d in js(cl, "list", "host", "storagedev", C1) if d["volume"] == "sv9"]
    assert (d["copied"], d["read"], d["skipped"]) == ("100%", p["read"], p["skipped"])
    dev = r["device"]
    assert io(dev, 0, length=SIZE) == bytes(expect)
    data = os.urandom(MiB)
    io(dev, 20 * MiB + 512, data)                        # into a skipped hole
    apply(expect, 20 * MiB + 512, data)
    assert io(dev, 20 * MiB, length=2 * MiB) == bytes(expect[20 * MiB:22 * MiB])
    js(cl, "remove", "host", "storagemap", NAS, "sv9")
    assert row(cl, "sv9")["state"] == "unmapped"
    assert nas_image(cl, "sv9") == bytes(expect)


def test_sync_during_the_copy_sends_only_what_the_vm_wrote(cl):
    """Chunks fetched from the NAS are not sent back; syncs run before the copy ends
    (compute-6-0 never copies in the background: the copy is never complete)."""
    expect = bytearray(SIZE)
    seeded = [(0, os.urandom(16 * MiB))]
    seed(cl, "sv7", seeded)
    apply(expect, *seeded[0])
    js(cl, "set", "host", "storagemap", NAS, "sv7", "frequency=3600")
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv7", C0, "64M", "img_sync=true")
    dev = r["device"]
    assert io(dev, 0, length=SIZE) == bytes(expect)          # every chunk fetched
    writes = [(4 * MiB, os.urandom(256 << 10)), (40 * MiB, os.urandom(64 << 10))]
    for off, data in writes:
        io(dev, off, data)
        apply(expect, off, data)
    js(cl, "set", "host", "storagemap", NAS, "sv7", "frequency=1")
    synced = wait_for(lambda: (lambda m: m if m["lastsync"] else None)(row(cl, "sv7")),
                      "a periodic sync during the copy")
    assert synced["copied"] != "100%"
    # the stream carried the 320 KiB written (plus record framing), not 16 MiB fetched
    assert 320 << 10 <= synced["syncbytes"] < (320 + 32) << 10
    js(cl, "remove", "host", "storagemap", NAS, "sv7")
    assert nas_image(cl, "sv7") == bytes(expect)


def test_a_sync_during_the_copy_shows_on_the_node(cl):
    """While a periodic sync of a replica still copying runs, the node's progress
    (list_dev) names the snapshot being sent; afterwards it is gone and the NAS
    shows the sync's bytes. (compute-6-0: the copy never completes.)"""
    js(cl, "set", "host", "storagemap", NAS, "sv10", "frequency=3600")
    js(cl, "set", "host", "storagemap", NAS, "sv10", "uploadspeed=2M")
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv10", C0, "64M",
             "img_sync=true")
    data = os.urandom(8 * MiB)                     # about 4 s on the wire at 2 MiB/s
    io(r["device"], 16 * MiB, data)
    assert replica_progress(cl, C0, "sv10")["syncing"] is None
    js(cl, "set", "host", "storagemap", NAS, "sv10", "frequency=1")
    during = wait_for(lambda: replica_progress(cl, C0, "sv10")["syncing"],
                      "the node showing its sync")
    assert during["snapshot"].startswith("sync-")
    # the NAS's own row names the sync in flight; its state stays syncing-to-host
    nas_row = row(cl, "sv10")
    assert (nas_row["state"], nas_row["syncing"]) == ("syncing-to-host", "periodic")
    synced = wait_for(lambda: (lambda m: m if m["lastsync"] else None)(row(cl, "sv10")),
                      "the sync committed")
    assert synced["state"] == "syncing-to-host" and synced["syncbytes"] >= 8 * MiB
    js(cl, "set", "host", "storagemap", NAS, "sv10", "frequency=3600")
    js(cl, "remove", "host", "storagemap", NAS, "sv10")
    assert nas_image(cl, "sv10")[16 * MiB:24 * MiB] == data


def _kill_during_final_sync(cl, victim, volume):
    js(cl, "set", "host", "storageattr", NAS, "sync_retry", "5")
    js(cl, "set", "host", "storagemap", NAS, volume, "uploadspeed=4M")
    expect = bytearray(SIZE)
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", volume, C1, "64M",
             "img_sync=true")
    data = os.urandom(24 * MiB)
    io(r["device"], 8 * MiB, data)
    apply(expect, 8 * MiB, data)
    rm = subprocess.Popen([str(Path(sys.executable).parent / "rocks"), "remove", "host",
                           "storagemap", NAS, volume, "timeout=5"], env=cl.env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: row(cl, volume)["state"] == "syncing-to-nas", "the final sync")
    time.sleep(2)                                       # mid-stream (4 MiB/s)
    cl.kill_node(victim)
    cl.start_node(victim)
    rm.wait(timeout=30)
    wait_for(lambda: row(cl, volume)["state"] == "unmapped", "the resumed final sync",
             timeout=90)
    assert nas_image(cl, volume) == bytes(expect)


def test_kill_compute_daemon_mid_final_sync_resumes(cl):
    _kill_during_final_sync(cl, C1, "sv3")


def test_kill_nas_daemon_mid_final_sync_resumes(cl):
    _kill_during_final_sync(cl, NAS, "sv4")


def test_compute_node_down_at_unmap_then_clean(cl):
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv5", C0, "64M", "img_sync=true")
    io(r["device"], 0, b"x" * 4096)
    cl.stop_node(C0)
    time.sleep(5)                  # its heartbeats stop: the NAS knows it is down
    try:
        out = cl.rocks("remove", "host", "storagemap", NAS, "sv5")
        assert out.returncode != 0 and "rocks clean host storagemap" in out.stderr
        assert row(cl, "sv5")["state"] == "error"
        js(cl, "clean", "host", "storagemap", NAS, "sv5")
        assert row(cl, "sv5")["state"] == "unmapped"
    finally:
        cl.start_node(C0)
    # the node, back, drops its replica when told (the clean's forced unmap)
    wait_for(lambda: js(cl, "list", "host", "storagedev", C0) == [], "the replica dropped")


def test_clean_drops_the_replica_of_a_live_node(cl):
    js(cl, "add", "host", "storagemap", NAS, "pool", "sv6", C0, "64M", "img_sync=true")
    js(cl, "clean", "host", "storagemap", NAS, "sv6")
    assert row(cl, "sv6")["state"] == "unmapped"
    wait_for(lambda: js(cl, "list", "host", "storagedev", C0) == [], "the replica dropped")
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv6", C0, "64M", "img_sync=true")
    io(r["device"], 0, b"y" * 4096)
    js(cl, "remove", "host", "storagemap", NAS, "sv6")
    assert nas_image(cl, "sv6")[:4096] == b"y" * 4096


def test_sync_over_ssh(cl):
    """[sync] transport = ssh: the stream reaches the NAS's receiver through ssh -W."""
    require_service(cl.sshd is not None, "root and openssh-server (a private sshd)")

    def logins():
        return (cl.sshd.dir / "sshd.log").read_text().count("Accepted publickey")
    before = logins()
    expect = bytearray(SIZE)
    [r] = js(cl, "add", "host", "storagemap", NAS, "pool", "sv8", C2, "64M", "img_sync=true")
    data = os.urandom(3 * MiB)
    io(r["device"], 7 * MiB, data)
    apply(expect, 7 * MiB, data)
    js(cl, "remove", "host", "storagemap", NAS, "sv8")
    assert row(cl, "sv8")["state"] == "unmapped"
    assert logins() > before                       # it went through the private sshd
    assert nas_image(cl, "sv8") == bytes(expect)
