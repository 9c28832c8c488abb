"""The control plane over the real data path: VolumeEngine volumes exported by the
NAS's NBD servers, attached on compute nodes as block devices (archipelago_kernel,
FUSE+loop or kernel nbd) when this host allows it, else used through the NBD URI."""
import os

import pytest
from conftest import require_service
from rocks_cli import rocks_json as js

from archipelago import errors
from archipelago.nbd.client import Client

pytest_plugins = ["rabbitmq", "controlplane"]
pytestmark = pytest.mark.rabbitmq
NODES = ("nas-2-0", ("compute-2-0", "compute-2-1"))
NAS, C0, C1 = "nas-2-0", "compute-2-0", "compute-2-1"
VOLUMES = "engine"


def _attacher():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from cluster import best_attacher
    return best_attacher()


ATTACHER = _attacher()


def write(dev_or_uri, data, offset):
    if dev_or_uri.startswith("/dev/"):
        fd = os.open(dev_or_uri, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    with Client.connect_uri(dev_or_uri) as c:
        c.go(dev_or_uri.rsplit("/", 1)[1])
        c.write(offset, data)
        c.flush()


def read(dev_or_uri, length, offset):
    if dev_or_uri.startswith("/dev/"):
        fd = os.open(dev_or_uri, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)
    with Client.connect_uri(dev_or_uri) as c:
        c.go(dev_or_uri.rsplit("/", 1)[1])
        return c.read(offset, length)


def test_data_follows_the_volume_between_compute_nodes(cluster):
    cl = cluster
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "rv1", C0, "64M")
    dev = row["device"]
    if ATTACHER == "kernel":
        assert dev.startswith("/dev/")
    data = os.urandom(64 << 10)
    write(dev, data, 1 << 20)
    assert read(dev, len(data), 1 << 20) == data
    js(cl, "remove", "host", "storagemap", NAS, "rv1")
    assert js(cl, "list", "host", "storagedev", C0) == []
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "rv1", C1, "64M")
    assert read(row["device"], len(data), 1 << 20) == data
    assert read(row["device"], 4096, 0) == bytes(4096)          # never written: zeros
    js(cl, "remove", "host", "storagemap", NAS, "rv1")
    js(cl, "remove", "host", "storageimg", NAS, "pool", "rv1")
    assert js(cl, "list", "host", "storagemap", NAS) == []


def test_export_allows_only_the_mapped_host(cluster):
    cl = cluster
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "rv2", C0, "16M")
    assert row["uri"].startswith("nbd://127.0.0.1:")
    js(cl, "remove", "host", "storagemap", NAS, "rv2")
    with pytest.raises(errors.Unavailable):          # export gone after unmap
        read(row["uri"], 512, 0)
    js(cl, "remove", "host", "storageimg", NAS, "pool", "rv2")


def test_nas_crash_keeps_exports_and_state(cluster):
    cl = cluster
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "rv3", C0, "16M")
    with Client.connect_uri(row["uri"]) as c:
        c.go("rv3")
        c.write(0, b"before the crash")
        c.flush()
    cl.kill_node(NAS)
    cl.start_node(NAS)
    [again] = js(cl, "list", "host", "storagemap", NAS)
    assert again["state"] == "mapped" and again["uri"] == row["uri"]
    with Client.connect_uri(row["uri"]) as c:          # served again, same port
        c.go("rv3")
        assert c.read(0, 16) == b"before the crash"
    js(cl, "remove", "host", "storagemap", NAS, "rv3")
    js(cl, "remove", "host", "storageimg", NAS, "pool", "rv3")


def test_unmap_of_a_device_in_use_fails_clearly(cluster):
    require_service(ATTACHER == "kernel", "block devices (root with FUSE+loop, or nbd)")
    cl = cluster
    [row] = js(cl, "add", "host", "storagemap", NAS, "pool", "rv4", C0, "16M")
    fd = os.open(row["device"], os.O_RDONLY)
    try:
        r = cl.rocks("remove", "host", "storagemap", NAS, "rv4")
        assert r.returncode != 0
        assert f"compute node {C0}: {row['device']} is open by process {os.getpid()}" \
            in r.stderr, r.stderr
        assert js(cl, "list", "host", "storagemap", NAS)[0]["state"] == "mapped"
    finally:
        os.close(fd)
    js(cl, "remove", "host", "storagemap", NAS, "rv4")
    js(cl, "remove", "host", "storageimg", NAS, "pool", "rv4")
