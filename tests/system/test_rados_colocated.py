"""The co-located NBD data path on a node whose blockers are radosd (one-node Ceph):
nbdd serves vlmcd itself and does the object I/O on its own RadosStore (aio)."""
import json
import os
import subprocess
import time

import pytest
from ceph import ceph_cluster  # noqa: F401  (session fixture)
from conftest import require
from test_rados_volume import rados_node

pytestmark = pytest.mark.ceph
MiB = 1 << 20


def run(*argv, cwd=None):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          check=True, timeout=240, cwd=cwd)


def test_colocated_on_rados(ceph_cluster, tmp_path):  # noqa: F811
    require("nbdcopy", "nbdinfo", "qemu-io", "fio")
    from archipelago.nbd.colocated import ColocatedBackend, ColocatedProvider
    from archipelago.nbd.testing import serve
    node = rados_node(ceph_cluster, tmp_path, "nodea", f"coloc.{os.getpid()}")
    prov = None
    try:
        for role in ("blockerb", "blockerm", "mapperd"):
            node.start(role)
        prov = ColocatedProvider(str(node.conf))
        assert prov.parallel
        node.vlmc("create", "rv", "--size", "24M")
        with serve(providers=[prov]) as srv:
            uri = srv.uri("rv")
            info = json.loads(run("nbdinfo", "--json", uri).stdout)["exports"][0]
            assert info["export-size"] == 24 * MiB
            exp = srv.registry.acquire("rv")
            assert isinstance(exp.backend, ColocatedBackend) and exp.backend.aio
            srv.registry.release(exp)
            src = tmp_path / "src.raw"
            src.write_bytes(os.urandom(24 * MiB))
            run("nbdcopy", "--connections=4", "--flush", src, uri)
            back = tmp_path / "back.raw"
            run("nbdcopy", "--connections=4", uri, back)
            assert back.read_bytes() == src.read_bytes()
            cmds = ["write -P 0x5a 4194000 1000", "write -P 0xa5 8388000 4194304", "flush"]
            run("qemu-io", "-f", "raw", *[x for c in cmds for x in ("-c", c)], uri)
            out = run("qemu-io", "-f", "raw", "-r", "-c", "read -P 0x5a 4194000 1000",
                      "-c", "read -P 0xa5 8388000 4194304", uri).stdout
            assert "verification failed" not in out
            node.vlmc("snapshot", "rv", "s1")
            run("fio", "--name=v", "--ioengine=nbd", f"--uri={uri}", "--rw=randwrite",
                "--bs=4k-128k", "--iodepth=16", "--size=24m", "--verify=crc32c",
                "--verify_fatal=1", "--do_verify=1", cwd=tmp_path)
            # a snapshot (a freeze: waits for the aio writes in flight) in the middle
            # of verified I/O on two connections
            fio = subprocess.Popen(
                ["fio", "--name=w", "--ioengine=nbd", f"--uri={uri}", "--rw=randwrite",
                 "--bs=4k-256k", "--iodepth=16", "--numjobs=2", "--size=12m",
                 "--offset_increment=12m",
                 "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"], cwd=tmp_path,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                node.vlmc("snapshot", "rv", "s2")
                out, _ = fio.communicate(timeout=240)
            finally:
                if fio.poll() is None:
                    fio.kill()
                    fio.wait()
            assert fio.returncode == 0, out
            snap = tmp_path / "snap.raw"
            run("nbdcopy", srv.uri("rv@s1"), snap)
            data = bytearray(src.read_bytes())
            data[4194000:4195000] = b"\x5a" * 1000
            data[8388000:8388000 + 4194304] = b"\xa5" * 4194304
            assert snap.read_bytes() == bytes(data)
    finally:
        if prov is not None:
            prov.close()
        node.stop()


def _simple_replies(n, count, reads):
    """{cookie: (error, data)} of `count` simple replies; `reads`: cookie -> length
    of the data a successful READ reply carries."""
    from archipelago.nbd import proto
    out = {}
    for _ in range(count):
        magic, err, cookie = proto.SIMPLE_REPLY.unpack(n.recv(proto.SIMPLE_REPLY.size))
        assert magic == proto.SIMPLE_REPLY_MAGIC
        out[cookie] = (err, n.recv(reads[cookie]) if cookie in reads and not err else b"")
    return out


def test_colocated_rados_request_burst(ceph_cluster):  # noqa: F811
    """Requests that arrive in one burst on the lean aio path: a mix of reads,
    writes, requests past the end, a FLUSH and a read of a never-written range each
    get their own right reply; a client that disconnects with requests in flight
    leaks nothing (the volume is left by every request, the server keeps serving)."""
    from archipelago.nbd import proto
    from archipelago.nbd.client import Client
    from archipelago.nbd.colocated import local
    from archipelago.nbd.testing import serve
    from archipelago.store.rados import RadosStore
    ns = f"burst.{os.getpid()}"
    stores = [RadosStore(conf=ceph_cluster.conf, pool=ceph_cluster.pool,
                         namespace=f"{ns}.{k}") for k in ("d", "m")]
    try:
        prov, c = local(*stores)
        c.create("bv", 16 * MiB)
        req = proto.request
        with serve(providers=[prov]) as srv, Client.connect_uri(srv.uri("bv")) as n:
            n.go(export="bv")
            for off in (0, 4 * MiB, 8 * MiB):                  # mapped: the lean path
                n.write(off, b"\0" * 4096)
            a, b_ = os.urandom(4096), os.urandom(MiB)
            burst = (req(proto.CMD_WRITE, 4096, 4096, 1) + a
                     + req(proto.CMD_READ, 4 * MiB, 4096, 2)
                     + req(proto.CMD_READ, 16 * MiB - 4096, 8192, 3)      # past the end
                     + req(proto.CMD_WRITE, 16 * MiB, 4096, 4) + a        # past the end
                     + req(proto.CMD_WRITE, 8 * MiB, MiB, 5) + b_
                     + req(proto.CMD_READ, 12 * MiB, 4096, 6)             # never written
                     + req(proto.CMD_FLUSH, 0, 0, 7)
                     + req(proto.CMD_READ, 0, 4096, 8))
            n.send(burst)
            got = _simple_replies(n, 8, {2: 4096, 6: 4096, 8: 4096})
            assert got[1] == (0, b"") and got[5] == (0, b"") and got[7] == (0, b"")
            assert got[2] == (0, bytes(4096)) and got[6] == (0, bytes(4096))
            assert got[8] == (0, bytes(4096))
            assert got[3][0] == proto.EINVAL and got[4][0] == proto.ENOSPC
            assert n.read(4096, 4096) == a and n.read(8 * MiB, MiB) == b_
            # 40 requests in one burst, then a client gone with 48 in flight
            n.send(b"".join(req(proto.CMD_READ, (i % 8) * 4096, 4096, 100 + i)
                            for i in range(20))
                   + b"".join(req(proto.CMD_WRITE, 4 * MiB + i * 4096, 4096, 200 + i)
                              + a for i in range(20)))
            got = _simple_replies(n, 40, {100 + i: 4096 for i in range(20)})
            assert all(e == 0 for e, _ in got.values())
            with Client.connect_uri(srv.uri("bv")) as m:
                m.go(export="bv")
                m.send(b"".join(req(proto.CMD_WRITE, i * 4096, 4096, i) + a
                                for i in range(24))
                       + b"".join(req(proto.CMD_READ, 4 * MiB, 4096, 50 + i)
                                  for i in range(24)))
            # the server drains the dead connection's requests; the volume is idle
            v = prov.vlmcd.vol("bv")
            for _ in range(600):
                if v.active == 0:
                    break
                time.sleep(0.05)
            assert v.active == 0
            c.snapshot("bv", "after")                  # a freeze: waits for nothing
            assert n.read(8 * MiB, MiB) == b_          # and the first still served
    finally:
        for s in stores:
            s.close()
