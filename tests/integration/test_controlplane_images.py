"""Images on the real one-machine cluster (engine volumes, NBD exports): import raw and
qcow2 files with `rocks add host storageimg`, list them, map clones with image=, read
the image's data through the compute node's NBD URI, write to a clone without
touching the image, dedup across images, and bad input."""
import subprocess

import pytest
from rocks_cli import rocks_json as js

from archipelago.nbd.client import Client

pytest_plugins = ["rabbitmq", "controlplane"]
pytestmark = pytest.mark.rabbitmq
NODES = ("nas-6-0", ("compute-6-0",))
NAS, C0 = "nas-6-0", "compute-6-0"
VOLUMES = "engine"
ATTACHER = "uri"
M = 1 << 20


def fails(cl, *words):
    r = cl.rocks(*words)
    assert r.returncode != 0 and r.stderr.startswith("error - "), (r.stdout, r.stderr)
    return r.stderr


def pattern(tag, n):
    unit = f"<{tag}>".encode()
    return (unit * (n // len(unit) + 1))[:n]


def raw(path, size, blocks):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in blocks.items():
            f.seek(off)
            f.write(data)
    return str(path)


def nbd(uri):
    c = Client.connect_uri(uri)
    c.go(uri.rsplit("/", 1)[1])
    return c


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from conftest import require
    require("qemu-img")
    d = tmp_path_factory.mktemp("images")
    shared = pattern("shared-block", 4 * M)
    a = raw(d / "a.raw", 40 * M, {0: shared, 8 * M: pattern("raw-A", M),
                                   40 * M - 4096: pattern("raw-end", 4096)})
    b_raw = raw(d / "b.raw", 24 * M, {4 * M: shared, 12 * M: pattern("qcow-B", M)})
    b = str(d / "b.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", b_raw, b], check=True)
    bad = str(d / "bad.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", b_raw, bad], check=True)
    with open(bad, "r+b") as f:                # L1 table offset far beyond the file
        f.seek(40)
        f.write((1 << 40).to_bytes(8, "big"))
    return {"a": a, "b": b, "bad": bad, "shared": shared, "dir": d}


def test_import_list_clone_read_write(cluster, files):
    cl = cluster
    r = cl.rocks("add", "host", "storageimg", NAS, "pool", "img-a", f"source={files['a']}")
    assert r.returncode == 0, r.stderr
    assert "img-a" in r.stdout and "ready" in r.stdout
    [b] = js(cl, "add", "host", "storageimg", NAS, "pool", "img-b", f"source={files['b']}")
    assert (b["format"], b["size"], b["state"]) == ("qcow2", 24 * M, "ready")
    # the shared 4 MiB block is stored once: img-b added only its own 1 MiB
    assert b["stored"] == 5 * M and b["added"] == M
    rows = {i["image"]: i for i in js(cl, "list", "host", "storageimg", NAS)}
    # objects hold data up to their last non-zero byte: 4M + 1M + the last 4M object
    assert rows["img-a"]["size"] == 40 * M and rows["img-a"]["stored"] == 9 * M
    assert rows["img-a"]["added"] == 9 * M and rows["img-a"]["created"] > 0

    [vm1] = js(cl, "add", "host", "storagemap", NAS, "pool", "vm1", C0, "64M", "image=img-a")
    with nbd(vm1["uri"]) as c:
        assert c.size == 64 * M
        assert c.read(0, 4 * M) == files["shared"]
        assert c.read(8 * M, M) == pattern("raw-A", M)
        assert c.read(40 * M - 4096, 4096) == pattern("raw-end", 4096)
        assert c.read(48 * M, 4096) == bytes(4096)         # beyond the image: zeros
        c.write(8 * M, b"written by the VM")
        c.flush()
        assert c.read(8 * M, 17) == b"written by the VM"
    [vm2] = js(cl, "add", "host", "storagemap", NAS, "pool", "vm2", C0, "40M", "image=img-a")
    with nbd(vm2["uri"]) as c:                             # the image did not change
        assert c.read(8 * M, M) == pattern("raw-A", M)
    [vm3] = js(cl, "add", "host", "storagemap", NAS, "pool", "vm3", C0, "24M", "image=img-b")
    with nbd(vm3["uri"]) as c:
        assert c.read(4 * M, 4 * M) == files["shared"]
        assert c.read(12 * M, M) == pattern("qcow-B", M)

    # removing an image keeps its clones intact
    [gone] = js(cl, "remove", "host", "storageimg", NAS, "pool", "img-a")
    assert "vm1" in gone["result"] and "vm2" in gone["result"]
    with nbd(vm1["uri"]) as c:
        assert c.read(0, 4 * M) == files["shared"]
        assert c.read(8 * M, 17) == b"written by the VM"
    for v in ("vm1", "vm2", "vm3"):
        js(cl, "remove", "host", "storagemap", NAS, v)
        js(cl, "remove", "host", "storageimg", NAS, "pool", v)
    js(cl, "remove", "host", "storageimg", NAS, "pool", "img-b")
    assert js(cl, "list", "host", "storageimg", NAS) == []
    assert js(cl, "list", "host", "storagemap", NAS) == []


def test_bad_input(cluster, files):
    cl = cluster
    d = files["dir"]
    assert "does not exist on this NAS" in fails(
        cl, "add", "host", "storageimg", NAS, "pool", "x", f"source={d}/missing.raw")
    err = fails(cl, "add", "host", "storageimg", NAS, "pool", "x", f"source={files['bad']}")
    assert "corrupt qcow2" in err or "not a readable disk image" in err, err
    assert "invalid volume name" in fails(
        cl, "add", "host", "storageimg", NAS, "pool", "a/b", f"source={files['a']}")
    assert "source=FILE is required" in fails(cl, "add", "host", "storageimg", NAS, "pool", "x")
    assert "image nope is not known" in fails(
        cl, "add", "host", "storagemap", NAS, "pool", "v", C0, "1G", "image=nope")
    js(cl, "add", "host", "storageimg", NAS, "pool", "small", f"source={files['b']}")
    assert "smaller than image small" in fails(
        cl, "add", "host", "storagemap", NAS, "pool", "v", C0, "8M", "image=small")
    assert "is an image" in fails(cl, "add", "host", "storagemap", NAS, "pool", "small", C0,
                                  "1G")
    assert "already exists" in fails(cl, "add", "host", "storageimg", NAS, "pool", "small",
                                     f"source={files['a']}")
    js(cl, "remove", "host", "storageimg", NAS, "pool", "small")
    assert js(cl, "list", "host", "storagemap", NAS) == []
    assert js(cl, "list", "host", "storageimg", NAS) == []
