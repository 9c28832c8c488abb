"""Block status (NBD_CMD_BLOCK_STATUS, base:allocation) of volume exports.

Both volume data paths -- the peers provider (nbd/volume.py) and the co-located
vlmcd (nbd/colocated.py) -- on the in-process peer stack, the co-located one
also on a real node; driven by real clients (nbdinfo --map, qemu-img map,
nbdcopy): a region with no object in the map (never written; after a snapshot
or in a clone, nothing written anywhere in its chain) is a hole that reads as
zeros, everything else is data.
"""
import json
import os
import subprocess

import pytest
from conftest import require

from archipelago import client
from archipelago.nbd.colocated import local as colocated_local
from archipelago.nbd.testing import serve
from archipelago.nbd.volume import VolumeProvider
from archipelago.store.memory import MemoryStore

MiB = 1 << 20
OBJ = 4 * MiB          # the default object size: allocation is per object


def run(*argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=check, timeout=120)


@pytest.fixture(params=["peers", "colocated"])
def stack(request):
    """(server, client): a volume export served by either data path."""
    if request.param == "peers":
        c = client.local(MemoryStore())
        prov = VolumeProvider(connect=lambda conf: c)
    else:
        prov, c = colocated_local(MemoryStore())
    with serve(providers=[prov]) as srv:
        yield srv, c


def nbd_map(uri):
    """nbdinfo --map: [(offset, length, "data"|"hole")], neighbours merged."""
    out = []
    for line in run("nbdinfo", "--map", uri).stdout.splitlines():
        f = line.split()
        off, n = int(f[0]), int(f[1])
        kind = "data" if f[-1] == "data" else "hole"
        if out and out[-1][2] == kind and out[-1][0] + out[-1][1] == off:
            out[-1] = (out[-1][0], out[-1][1] + n, kind)
        else:
            out.append((off, n, kind))
    return out


def data_of(m):
    return [(o, n) for o, n, k in m if k == "data"]


def write(c, name, items):
    with c.volume(name) as v:
        for off, data in items:
            v.pwrite(data, off)
        v.flush()


def test_map_reports_holes_where_nothing_was_written(stack):
    require("nbdinfo")
    srv, c = stack
    c.create("sp", 64 * MiB)
    info = json.loads(run("nbdinfo", "--json", srv.uri("sp")).stdout)["exports"][0]
    assert "base:allocation" in info["contexts"]
    assert nbd_map(srv.uri("sp")) == [(0, 64 * MiB, "hole")]
    # 4 KiB inside object 1, 1 MiB straddling objects 4/5, 1 byte at the very end
    write(c, "sp", [(OBJ + 100, b"a" * 4096), (5 * OBJ - MiB // 2, b"b" * MiB),
                    (64 * MiB - 1, b"c")])
    assert data_of(nbd_map(srv.uri("sp"))) == [(OBJ, OBJ), (4 * OBJ, 2 * OBJ),
                                               (15 * OBJ, OBJ)]
    # a snapshot keeps its map; the volume's later writes show on the volume only
    c.snapshot("sp", "s1")
    write(c, "sp", [(8 * OBJ, b"d" * 512)])
    assert data_of(nbd_map(srv.uri("sp@s1"))) == [(OBJ, OBJ), (4 * OBJ, 2 * OBJ),
                                                  (15 * OBJ, OBJ)]
    assert data_of(nbd_map(srv.uri("sp"))) == [(OBJ, OBJ), (4 * OBJ, 2 * OBJ),
                                               (8 * OBJ, OBJ), (15 * OBJ, OBJ)]
    # a clone sees its origin's data through its map, plus its own writes
    c.clone("sp@s1", "cl")
    assert data_of(nbd_map(srv.uri("cl"))) == [(OBJ, OBJ), (4 * OBJ, 2 * OBJ),
                                               (15 * OBJ, OBJ)]
    write(c, "cl", [(12 * OBJ + 7, b"e" * 9)])
    assert data_of(nbd_map(srv.uri("cl"))) == [(OBJ, OBJ), (4 * OBJ, 2 * OBJ),
                                               (12 * OBJ, OBJ), (15 * OBJ, OBJ)]
    # and a hole really reads as zeros
    with c.volume("cl") as v:
        assert v.pread(OBJ, 2 * OBJ) == bytes(OBJ)


def test_qemu_img_map_and_nbdcopy_of_a_sparse_volume(stack, tmp_path):
    require("qemu-img", "nbdcopy")
    srv, c = stack
    c.create("sp2", 32 * MiB)
    a, b = os.urandom(3 * MiB), os.urandom(4096)
    write(c, "sp2", [(2 * MiB, a), (20 * MiB, b)])
    m = json.loads(run("qemu-img", "map", "--output=json", "-f", "raw",
                       srv.uri("sp2")).stdout)
    data = [(e["start"], e["length"]) for e in m if e["data"]]
    assert data == [(0, 2 * OBJ), (5 * OBJ, OBJ)]
    assert all(e["zero"] for e in m if not e["data"])
    # nbdcopy skips the holes (it asks block status) and the copy is the volume
    out = tmp_path / "copy.raw"
    run("nbdcopy", srv.uri("sp2"), out)
    want = bytearray(32 * MiB)
    want[2 * MiB:5 * MiB] = a
    want[20 * MiB:20 * MiB + 4096] = b
    assert out.read_bytes() == bytes(want)
    assert os.stat(out).st_blocks * 512 < 16 * MiB       # the holes stayed holes


def test_colocated_block_status_on_a_real_node(tmp_path_factory):
    """The default datapath on a node: peers as processes, nbdd hosting vlmcd."""
    require("nbdinfo")
    from archipelago_node import Node

    from archipelago.nbd.colocated import ColocatedProvider
    root = tmp_path_factory.mktemp("bstat")
    a = Node(root, "nodea")
    prov = None
    try:
        for role in ("blockerb", "blockerm", "mapperd"):
            a.start(role)
        prov = ColocatedProvider(str(a.conf))
        with serve(providers=[prov]) as srv:
            a.vlmc("create", "nv", "--size", "64")
            assert nbd_map(srv.uri("nv")) == [(0, 64 * MiB, "hole")]
            run("qemu-io", "-f", "raw", "-c", f"write -P 0x5a {9 * MiB} 4096", "-c", "flush",
                srv.uri("nv"))
            assert data_of(nbd_map(srv.uri("nv"))) == [(2 * OBJ, OBJ)]
            a.vlmc("snapshot", "nv", "s1")
            assert data_of(nbd_map(srv.uri("nv@s1"))) == [(2 * OBJ, OBJ)]
    finally:
        if prov is not None:
            prov.close()
        a.stop()


def test_colocated_block_status_of_a_fragmented_clone_at_the_span_limit(tmp_path_factory):
    """The largest map one block status asks for (EXTENTS_SPAN) at its most
    fragmented: a clone whose every object alternates chunks of its own object and
    of the origin's, so mapperd's reply through the real segment lists one extent
    per chunk (16,384 at the default 4 MiB objects / 64 KiB chunks)."""
    require("nbdinfo", "qemu-io")
    from archipelago_node import Node

    from archipelago.nbd.colocated import ColocatedProvider
    from archipelago.nbd.volume import EXTENTS_SPAN
    from archipelago.volume.format import chunk_size
    root = tmp_path_factory.mktemp("bstat-frag")
    a = Node(root, "nodea")
    prov = None
    chunk, size = chunk_size(OBJ), EXTENTS_SPAN + 2 * OBJ
    try:
        for role in ("blockerb", "blockerm", "mapperd"):
            a.start(role)
        prov = ColocatedProvider(str(a.conf))
        with serve(providers=[prov]) as srv:
            a.vlmc("create", "org", "--size", str(size // MiB))
            # the origin: every object exists (4 KiB in each), one object left a hole
            script = "".join(f"aio_write -P 0x11 {o} 4096\n"
                             for o in range(0, size, OBJ) if o != 3 * OBJ) + "aio_flush\nflush\n"
            subprocess.run(["qemu-io", "-f", "raw", srv.uri("org")], input=script,
                           text=True, check=True, capture_output=True, timeout=300)
            a.vlmc("snapshot", "org", "s1")
            a.vlmc("create", "fc", "--snap", "org@s1")
            # the clone: every other chunk written, so its map alternates own/origin
            script = "".join(f"aio_write -P 0x22 {o + chunk // 2} 4096\n"
                             for o in range(0, size, 2 * chunk)) + "aio_flush\nflush\n"
            subprocess.run(["qemu-io", "-f", "raw", srv.uri("fc")], input=script,
                           text=True, check=True, capture_output=True, timeout=300)
            # all data, asked for in one span (the object the origin left a hole
            # is the clone's own whole: allocation is per object)
            assert nbd_map(srv.uri("fc")) == [(0, size, "data")]
            m = json.loads(run("qemu-img", "map", "--output=json", "-f", "raw",
                               srv.uri("fc")).stdout)
            assert sum(e["length"] for e in m if e["data"]) == size
            # reads still resolve per chunk: the clone's data, then the origin's
            run("qemu-io", "-f", "raw", "-r", "-c", f"read -P 0x22 {chunk // 2} 4096",
                "-c", "read -P 0x11 0 4096", "-c", f"read -P 0 {3 * OBJ + chunk} 4096",
                "-c", f"read -P 0x22 {size - 2 * chunk + chunk // 2} 4096", srv.uri("fc"))
    finally:
        if prov is not None:
            prov.close()
        a.stop()
