"""Images on the StubBus NAS with the in-memory VolumeService: add_image (raw, qcow2,
bad sources), list_images, remove_image (clones kept), map image= (clones), and the
rocks storageimg commands."""
import json
import os
import subprocess

import pytest
from conftest import require
from controlplane_stub import StubCluster

from archipelago import errors
from archipelago_nas import images
from archipelago_nas.models import Image
from rocks_command_archipelago import commands
from rocks_command_archipelago.client import Client

M = 1 << 20


@pytest.fixture
def cl(tmp_path):
    return StubCluster(tmp_path)


def ok(reply):
    assert reply["status"] == "success", reply
    return reply


def raw(path, size, blocks):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in blocks.items():
            f.seek(off)
            f.write(data)
    return str(path)


def qcow2(raw_path):
    out = raw_path + ".qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_path, out],
                   check=True)
    return out


def add(cl, name, source, pool="pool", rid=None):
    return cl.nas_call("add_image", rid, pool=pool, image=name, source=source)


def listed(cl, **kw):
    return {i["image"]: i for i in ok(cl.nas_call("list_images", **kw))["images"]}


def test_import_raw_then_list(cl, tmp_path):
    src = raw(tmp_path / "a.raw", 32 * M, {0: b"A" * M, 20 * M: b"B" * 4096})
    r = ok(add(cl, "base", src))
    assert (r["image"], r["pool"], r["format"], r["size"]) == ("base", "pool", "raw", 32 * M)
    i = listed(cl)["base"]
    assert i["state"] == "ready" and i["done"] == 32 * M
    assert i["stored"] == M + 4096 and i["added"] == M + 4096
    assert cl.volumes.images[("pool", "base")]["size"] == 32 * M


def test_shared_blocks_are_stored_once(cl, tmp_path):
    shared = os.urandom(4 * M)
    ok(add(cl, "one", raw(tmp_path / "1", 16 * M, {0: shared, 8 * M: os.urandom(M)})))
    ok(add(cl, "two", raw(tmp_path / "2", 16 * M, {4 * M: shared})))
    two = listed(cl)["two"]
    assert two["stored"] == 4 * M and two["added"] == 0


def test_import_qcow2(cl, tmp_path):
    require("qemu-img")
    src = qcow2(raw(tmp_path / "q.raw", 8 * M, {M: b"Q" * 512}))
    r = ok(add(cl, "q", src))
    assert r["format"] == "qcow2" and r["size"] == 8 * M
    assert listed(cl)["q"]["state"] == "ready" and listed(cl)["q"]["stored"] == M + 512


def test_corrupt_qcow2_is_refused(cl, tmp_path):
    require("qemu-img")
    src = qcow2(raw(tmp_path / "c.raw", 8 * M, {0: b"C" * M}))
    with open(src, "r+b") as f:             # point the L1 table past the end of the file
        f.seek(40)
        f.write((1 << 40).to_bytes(8, "big"))
    r = add(cl, "c", src)
    assert r["kind"] == "InvalidArgument" and src in r["error"], r
    trunc = qcow2(raw(tmp_path / "t.raw", 8 * M, {0: b"T" * M}))
    os.truncate(trunc, 100)
    r = add(cl, "t", trunc)
    assert r["kind"] == "InvalidArgument" and "not a readable disk image" in r["error"], r
    assert listed(cl) == {}


@pytest.mark.parametrize("fields, want", [
    ({"source": "/nonexistent/x.raw"}, "does not exist on this NAS"),
    ({"source": "relative.raw"}, "must be an absolute path"),
    ({"image": "../etc"}, "invalid volume name"),
    ({"pool": "p/q"}, "invalid pool name"),
    ({"source": "/"}, "not a regular file"),
])
def test_bad_add_image_input(cl, tmp_path, fields, want):
    msg = {"pool": "pool", "image": "img", "source": raw(tmp_path / "ok", M, {0: b"x"})}
    msg.update(fields)
    r = cl.nas_call("add_image", **msg)
    assert r["status"] == "error" and want in r["error"], r


def test_empty_source_and_name_clashes(cl, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert "is empty" in add(cl, "e", str(empty))["error"]
    src = raw(tmp_path / "s", M, {0: b"s"})
    first = ok(add(cl, "img", src))
    assert ok(add(cl, "img", src))["image"] == first["image"]        # idempotent
    other = raw(tmp_path / "o", M, {0: b"o"})
    assert add(cl, "img", other)["kind"] == "Exists"
    ok(cl.map("vol"))
    assert add(cl, "vol", src)["kind"] == "Exists"


def test_map_clone_of_image(cl, tmp_path):
    ok(add(cl, "base", raw(tmp_path / "b", 64 * M, {0: b"b" * M})))
    r = ok(cl.map("vm1", size=128 * M, image="base"))
    assert r["state"] == "mapped" and r["size"] == 128 * M
    assert ("clone_image", "pool", "base", "vm1", 128 * M) in cl.volumes.calls
    ok(cl.nas_call("unmap", volume="vm1"))
    ok(cl.map("vm1", size=128 * M, image="base"))                      # adopts its clone
    small = cl.map("vm2", size=32 * M, image="base")
    assert small["kind"] == "InvalidArgument" and "smaller than image base" in small["error"]
    assert "image nope is not known" in cl.map("vm3", image="nope")["error"]
    assert "is an image" in cl.map("base", size=64 * M)["error"]
    ok(cl.map("plain", size=64 * M))
    ok(cl.nas_call("unmap", volume="plain"))
    r = cl.map("plain", size=64 * M, image="base")
    assert r["kind"] == "Exists" and "not a clone of image base" in r["error"]


def test_remove_image_keeps_clones(cl, tmp_path):
    ok(add(cl, "base", raw(tmp_path / "b", 8 * M, {0: b"b"})))
    ok(cl.map("vm1", size=8 * M, image="base"))
    r = ok(cl.nas_call("remove_image", pool="pool", image="base"))
    assert r["clones"] == ["vm1"] and listed(cl) == {}
    assert cl.volumes.volumes[("pool", "vm1")] == 8 * M                 # clone intact
    assert ok(cl.nas_call("list"))["mappings"][0]["state"] == "mapped"
    assert "not known" in cl.nas_call("remove_image", pool="pool", image="base")["error"]
    ok(cl.nas_call("unmap", volume="vm1"))
    r = ok(cl.nas_call("remove_image", pool="pool", image="vm1"))     # a volume: deleted
    assert r["image"] is None and ("pool", "vm1") not in cl.volumes.volumes


def test_failed_import_is_recorded_and_restart_fails_running_imports(cl, tmp_path):
    def broken(*a, **kw):
        raise errors.BackendError("disk on fire")
    cl.volumes.import_image = broken
    ok(add(cl, "x", raw(tmp_path / "x", M, {0: b"x"})))
    i = listed(cl)["x"]
    assert i["state"] == "error" and i["error"] == "disk on fire"
    assert "failed to import" in cl.map("vm", image="x")["error"]
    del cl.volumes.import_image
    assert ok(add(cl, "x", raw(tmp_path / "x", M, {0: b"x"})))          # imported again
    assert listed(cl)["x"]["state"] == "ready"
    with cl.nas.db.scope() as s:
        s.add(Image(name="half", pool="pool", source="/x", format="raw", size=M,
                    state=images.IMPORTING))
    cl.nas.dispatcher.run_job(cl.nas.recover)
    assert "NAS restart" in listed(cl)["half"]["error"]


@pytest.fixture
def rocks(cl, tmp_path):
    conf = tmp_path / "fe.conf"
    conf.write_text(f"[node]\nname = frontend\nstate_dir = {tmp_path / 'fe'}\n")
    client = Client(str(conf), bus=cl.bus)

    def run(*words):
        key, cls, argv = commands.find(list(words))
        return cls(client, key).execute(argv)
    return run


def test_rocks_storageimg_commands(rocks, tmp_path):
    src = raw(tmp_path / "r.raw", 16 * M, {0: b"r" * M})
    out = rocks("add", "host", "storageimg", "nas-0-0", "pool", "img", f"source={src}")
    assert out.splitlines()[0].split() == ["NAS", "IMAGE", "POOL", "SIZE", "STORED", "ADDED",
                                           "FORMAT", "STATE"]
    assert "16M" in out and "ready" in out
    [row] = json.loads(rocks("list", "host", "storageimg", "nas-0-0", "output-format=json"))
    assert (row["image"], row["size"], row["stored"], row["state"]) == ("img", 16 * M, M,
                                                                        "ready")
    assert row["created"] > 0 and row["source"] == src
    rocks("add", "host", "storagemap", "nas-0-0", "pool", "vm", "compute-0-0", "1G",
          "image=img")
    assert rocks("remove", "host", "storageimg", "nas-0-0", "pool", "img") == \
        "removed image img from pool pool (clones kept: vm)"
    assert rocks("list", "host", "storageimg", "nas-0-0") == "no images"
    with pytest.raises(errors.InvalidArgument, match="source=FILE is required"):
        rocks("add", "host", "storageimg", "nas-0-0", "pool", "img")
    with pytest.raises(errors.InvalidArgument, match="invalid volume name"):
        rocks("add", "host", "storageimg", "nas-0-0", "pool", "a/b", f"source={src}")
    with pytest.raises(errors.NotFound, match="does not exist on this NAS"):
        rocks("add", "host", "storageimg", "nas-0-0", "pool", "x", "source=/no/such")


def test_small_sizes_print_in_tables():
    from rocks_command_archipelago.output import Output, size
    assert Output(["a", "b"], [[size(0), size(512)]]).as_table().splitlines()[1] == "0 512"
