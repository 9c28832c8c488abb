"""Every vlmc command end to end through real peers (blockers, mapperd, vlmcd)."""
import json
import os
import random

import pytest
from archipelago_node import Node

from archipelago.errors import ReadOnly

MiB = 1 << 20


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("vlmc"))
    n.start()
    yield n
    n.stop()


def j(res):
    return json.loads(res.out)


def test_lifecycle(node, tmp_path):
    v = node.vlmc
    assert v("create", "life", "--size", "16").out.strip() == "created life (16M)"
    info = j(v("info", "life", "--json"))
    assert (info["size"], info["object_size"], info["allocated"]) == (16 * MiB, 4 * MiB, 0)
    for key in ("origin", "snapshots", "unique", "lock_owner"):
        assert key in info
    text = v("info", "life").out
    assert "size:" in text and "16M" in text

    img = tmp_path / "img"
    data = bytearray(os.urandom(3 * MiB))
    data[MiB:2 * MiB] = bytes(MiB)          # a zero run inside
    img.write_bytes(bytes(data))
    v("import", "life", img)
    v("snapshot", "life", "s1")
    out = tmp_path / "out"
    v("export", "life@s1", out)
    got = out.read_bytes()
    assert len(got) == 16 * MiB and got[:3 * MiB] == data and not any(got[3 * MiB:])

    v("create", "clone1", "--snap", "life@s1", "--size", "32M")
    ci = j(v("info", "clone1", "--json"))
    assert ci["origin"] == "life@s1" and ci["size"] == 32 * MiB
    assert "s1" in j(v("info", "life", "--json"))["snapshots"]
    names = [i["name"] for i in j(v("list", "--json"))]
    assert {"life", "clone1"} <= set(names)
    assert "life" in v("list").out

    v("resize", "clone1", "48M")
    assert j(v("info", "clone1", "--json"))["size"] == 48 * MiB
    v("rename", "clone1", "clone2")
    assert "clone2" in v("list").out and "clone1" not in v("list").out

    # a 64 KiB change after the snapshot diffs to about that, not a whole object
    patch = tmp_path / "patch"
    patch.write_bytes(os.urandom(64 << 10))
    with node.client() as c, c.volume("life") as vol:
        vol.pwrite(patch.read_bytes(), 5 * MiB)
        vol.flush()
    d = j(v("diff", "life@s1", "life", "--json"))
    assert d["from"] == "life@s1" and d["to"] == "life"
    assert 64 << 10 <= d["changed"] < 4 * MiB
    assert d["ranges"][0]["offset"] <= 5 * MiB
    assert v("diff", "life@s1", "life").out.split()[0].isdigit()

    h = v("hash", "life@s1").out.strip()
    assert len(h) >= 32
    du = j(v("du", "--json"))
    assert du["totals"]["volumes"] >= 2 and any(x["name"] == "life" for x in du["volumes"])
    assert "allocated" in v("du").out

    v("open", "life")
    assert j(v("info", "life", "--json"))["lock_owner"].startswith("nodea:")
    v("close", "life")
    v("lock", "life")
    v("unlock", "life")
    v("unlock", "-f", "life")
    v("remove", "clone2")
    v("remove", "life@s1")
    assert "clone2" not in v("list").out
    assert "dry_run" in v("gc", "--dry-run").out or v("gc", "--dry-run").out
    j(v("gc", "--json"))


def test_import_export_pipes(node):
    payload = os.urandom(MiB + 512)
    node.vlmc("create", "piped", "--size", "4M")
    node.vlmc("import", "piped", "-", input=payload)
    out = node.vlmc("export", "piped", "-").stdout
    assert out[:len(payload)] == payload and len(out) == 4 * MiB


def test_import_creates_the_volume(node, tmp_path):
    img = tmp_path / "img"
    with open(img, "wb") as f:
        f.truncate(5 * MiB + 512)
        f.seek(2 * MiB)
        f.write(b"x" * 4096)
    node.vlmc("import", "fresh", img)
    assert j(node.vlmc("info", "fresh", "--json"))["size"] == 5 * MiB + 512
    out = tmp_path / "out"
    node.vlmc("export", "fresh", out)
    assert out.read_bytes() == img.read_bytes()


def test_client_random_io_matches_a_model(node):
    rng = random.Random(7)
    size = 8 * MiB
    model = bytearray(size)
    with node.client() as c:
        c.create("rand", size, object_size=64 << 10)
        with c.volume("rand") as vol:
            for _ in range(60):
                off = rng.randrange(0, size - 1) // 512 * 512
                n = min(rng.choice([512, 4096, 65536, 300 * 1024]), size - off)
                data = rng.randbytes(n)
                vol.pwrite(data, off)
                model[off:off + n] = data
            assert vol.pread(size, 0) == bytes(model)


BAD_NAMES = ["a/b", "..", "../etc", "x" * 90, "", "-lead", "a b", "vol@snap"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names(node, name):
    r = node.vlmc("create", "--size", "1", "--", name, check=False)
    assert r.returncode == 2, r.err
    assert r.err.startswith("vlmc: error: ") and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("size,needle", [
    ("0", "greater than zero"), ("-1", "invalid size"), ("1000B", "multiple of 512"),
    ("9223372036854775808B", "2^63"), ("10000000T", "2^63"), ("abc", "invalid size"),
])
def test_bad_sizes(node, size, needle):
    r = node.vlmc("create", "sz", "--size", size, check=False)
    assert r.returncode == 2 and needle in r.err and r.err.startswith("vlmc: error: ")


@pytest.mark.parametrize("args", [
    ["info", "nosuch"], ["remove", "nosuch"], ["snapshot", "nosuch", "s"],
    ["resize", "nosuch", "1"], ["rename", "nosuch", "other"], ["export", "nosuch", "-"],
    ["create", "c", "--snap", "nosuch@s"], ["hash", "nosuch@s"], ["info", "nosuch@s"],
])
def test_unknown_volumes(node, args):
    r = node.vlmc(*args, check=False)
    assert r.returncode == 1
    assert "does not exist" in r.err and len(r.err.strip().splitlines()) == 1


def test_usage_errors_are_one_line(node):
    for args in (["frob"], ["create", "-x"], ["resize", "onlyname"]):
        r = node.vlmc(*args, check=False)
        assert r.returncode == 2 and len(r.err.strip().splitlines()) == 1, r.err
        assert r.err.startswith("vlmc: error: ")


def test_clone_of_a_writable_volume_is_refused(node):
    node.vlmc("create", "rw", "--size", "1")
    r = node.vlmc("create", "c", "--snap", "rw", check=False)
    assert r.returncode == 2 and "cannot clone writable volume rw" in r.err
    node.vlmc("snapshot", "rw", "s")
    r = node.vlmc("create", "c", "--snap", "rw@s", "--size", "512K", check=False)
    assert r.returncode == 2 and "smaller than rw@s" in r.err


def test_import_larger_than_the_volume(node, tmp_path):
    node.vlmc("create", "small", "--size", "1")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MiB + 512))
    r = node.vlmc("import", "small", big, check=False)
    assert r.returncode == 2 and "larger than volume small" in r.err
    r = node.vlmc("import", "small", "-", input=b"y" * (MiB + 512), check=False)
    assert r.returncode == 2 and "larger than volume small" in r.err


def test_exists_and_snapshot_of_snapshot(node):
    node.vlmc("create", "dup", "--size", "1")
    r = node.vlmc("create", "dup", "--size", "1", check=False)
    assert r.returncode == 1 and "exists" in r.err
    node.vlmc("snapshot", "dup", "s")
    r = node.vlmc("snapshot", "dup", "s", check=False)
    assert r.returncode == 1 and "exists" in r.err
    with node.client() as c:
        with pytest.raises(ReadOnly):
            c.volume("dup@s").pwrite(b"x" * 512, 0)


def test_removing_a_snapshot_keeps_its_clones(node):
    v = node.vlmc
    v("create", "base", "--size", "2")
    v("import", "base", "-", input=b"B" * MiB)
    v("snapshot", "base", "gold")
    v("create", "kid", "--snap", "base@gold")
    v("remove", "base@gold")
    v("gc")
    assert v("export", "kid", "-").stdout[:MiB] == b"B" * MiB


def test_import_over_data_writes_the_zeros_too(node, tmp_path):
    node.vlmc("create", "reimp", "--size", "2")
    node.vlmc("import", "reimp", "-", input=b"A" * (2 * MiB))
    second = tmp_path / "second"
    with open(second, "wb") as f:
        f.seek(MiB)                     # a hole first: must not let the A's show through
        f.write(b"B" * MiB)
    node.vlmc("import", "reimp", second)
    assert node.vlmc("export", "reimp", "-").stdout == second.read_bytes()
