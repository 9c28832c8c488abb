"""The co-located NBD data path on a node whose blockers are radosd (one-node Ceph):
nbdd serves vlmcd itself and does the object I/O on its own RadosStore (aio)."""
import json
import os
import subprocess

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
