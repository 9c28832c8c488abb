"""Volumes on RADOS: the volume engine, the in-process peer stack and a real node
with radosd blockers, all on the session's one-node Ceph.

Maps and locks are ObjectStore objects too, so with blockerm on RADOS any node with
access to the pool opens any volume; two nodes on one pool share the volume locks."""
import importlib.util
import itertools
import os
from pathlib import Path

import pytest
from ceph import ceph_cluster  # noqa: F401  (session fixture)
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from archipelago import client
from archipelago.errors import Busy, Fenced, Timeout
from archipelago.store.rados import RadosStore
from archipelago.volume import VolumeEngine

pytestmark = pytest.mark.ceph
HERE = Path(__file__).resolve().parent
_ns = itertools.count(1)


@pytest.fixture
def new_store(ceph_cluster, request):  # noqa: F811
    """new_store(ns=None) -> a RadosStore client; same ns = same objects."""
    made = []

    def make(ns=None, **kw):
        ns = ns or f"{request.node.name[:30]}.{next(_ns)}"
        s = RadosStore(conf=ceph_cluster.conf, pool=ceph_cluster.pool, namespace=ns,
                       op_timeout=20, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def _volume_model():
    spec = importlib.util.spec_from_file_location(
        "volume_model_for_rados", HERE.parent / "unit" / "test_volume_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.VolumeModel


@pytest.mark.slow
def test_volume_model_on_rados(new_store):
    """The volumes issue's model-based test (random writes, snapshots, clones, hash,
    diff, gc, ... checked byte for byte), with every map and block in RADOS."""
    base = _volume_model()

    class RadosVolumeModel(base):
        store_factory = staticmethod(lambda: new_store())

    run_state_machine_as_test(RadosVolumeModel, settings=settings(
        max_examples=int(os.environ.get("RADOS_MODEL_EXAMPLES", "12")),
        stateful_step_count=25, deadline=None,
        suppress_health_check=list(HealthCheck)))


def test_engine_two_nodes_one_pool(new_store):
    """Two engines (two hosts) on one pool: the lock keeps one writer; breaking it
    fences the old holder, whose late write is refused and changes nothing."""
    a_store = new_store("two-nodes")
    b_store = new_store("two-nodes")
    a = VolumeEngine(a_store, owner="nodea:mapperd", lease_ttl=30)
    b = VolumeEngine(b_store, owner="nodeb:mapperd", lease_ttl=30, write_wait=0.5)
    try:
        a.create("vol", 1 << 20, 64 << 10)
        a.write("vol", 0, b"A" * 4096)
        assert b.read("vol", 0, 4096) == b"A" * 4096       # maps in RADOS: B sees it
        with pytest.raises(Busy):
            b.snapshot("vol", "s1")
        with pytest.raises(Timeout):
            b.write("vol", 0, b"B" * 4096)                 # waits 0.5 s for the lock
        b.unlock("vol", force=True)                        # vlmc unlock -f on node B
        b.write("vol", 4096, b"B" * 4096)
        with pytest.raises(Fenced):
            a.write("vol", 0, b"X" * 4096)                 # A's late write
        assert b.read("vol", 0, 8192) == b"A" * 4096 + b"B" * 4096
        assert a.read("vol", 0, 8192) == b"A" * 4096 + b"B" * 4096
    finally:
        b.shutdown()
        a.shutdown()


def test_peer_stack_on_rados(new_store):
    """vlmcd + mapperd + radosd blockers (in-process wiring): the Client API on RADOS,
    and a second node's stack on the same pool opens the same volumes."""
    data_ns, map_ns = f"data.{next(_ns)}", f"maps.{next(_ns)}"
    c1 = client.local(new_store(data_ns), new_store(map_ns), owner="nodea:mapperd")
    c2 = client.local(new_store(data_ns), new_store(map_ns), owner="nodeb:mapperd")
    try:
        c1.create("disk", 4 << 20)
        v = c1.volume("disk")
        v.pwrite(b"hello rados" * 100, 12345)
        v.flush()
        c1.snapshot("disk", "s1")
        v.pwrite(b"\xff" * 4096, 12345)
        v.flush()
        assert c1.volume("disk@s1").pread(1100, 12345) == b"hello rados" * 100
        v.close()
        c1.clone("disk@s1", "clone")
        assert sorted(c2.list()) == ["clone", "disk"]
        snap = c2.volume("disk@s1")
        assert snap.pread(1100, 12345) == b"hello rados" * 100
        clone = c2.volume("clone")
        assert clone.pread(1100, 12345) == b"hello rados" * 100
        clone.pwrite(b"c2", 0)
        clone.flush()
        assert clone.pread(4, 0) == b"c2\0\0"
        c1.close_volume("disk")
        assert c2.volume("disk").pread(4096, 12345) == b"\xff" * 4096
    finally:
        c1.close()
        c2.close()


def rados_node(cluster, root, name, ns, roles=("blockerb", "blockerm")):
    """A test Node whose `roles` are radosd blockers in namespaces `ns`.<role>."""
    from archipelago_node import Node

    node = Node(root, name)
    text = node.conf.read_text()
    for role in roles:
        text = _replace_section(text, role, (
            f"[{role}]\ntype = rados\npool = {cluster.pool}\nnamespace = {ns}.{role}\n"
            f"ceph_conf = {cluster.conf}\nop_timeout = 20"))
    node.conf.write_text(text)
    return node


@pytest.mark.parametrize("roles", [("blockerb", "blockerm"), ("blockerm",)],
                         ids=["all-rados", "maps-rados-data-files"])
def test_node_with_radosd_blockers(ceph_cluster, tmp_path, roles):  # noqa: F811
    """A real node (archipelago start: separate peer processes on a segment) with
    radosd blockers -- both, or maps in RADOS and data in files (mixed backends):
    vlmc create/import/export round trip."""
    ns = f"node.{next(_ns)}"
    node = rados_node(ceph_cluster, tmp_path, "nodea", ns, roles)
    src = tmp_path / "disk.img"
    payload = os.urandom(256 << 10)
    src.write_bytes(bytes(1 << 20) + payload + bytes(512 << 10))
    try:
        node.start()
        node.vlmc("create", "v", "--size", "4M")
        node.vlmc("import", "v", src)
        out = tmp_path / "out.img"
        node.vlmc("export", "v", out)
        assert out.read_bytes()[:src.stat().st_size] == src.read_bytes()
        assert "v" in node.vlmc("list").out
    finally:
        node.stop()
    for role in roles:
        probe = RadosStore(conf=ceph_cluster.conf, pool=ceph_cluster.pool,
                           namespace=f"{ns}.{role}")
        try:
            assert list(probe.list()), f"no {role} objects landed in RADOS"
        finally:
            probe.close()


def test_two_nodes_one_pool(ceph_cluster, tmp_path):  # noqa: F811
    """Two nodes (own segments and peers, no shared directory) on one pool: both see
    the same volumes, the lock keeps one writer, `unlock -f` breaks it."""
    ns = f"pair.{next(_ns)}"
    a = rados_node(ceph_cluster, tmp_path, "nodea", ns)
    b = rados_node(ceph_cluster, tmp_path, "nodeb", ns)
    try:
        a.start()
        b.start()
        a.vlmc("create", "shared", "--size", "4M")
        with a.client() as ca, ca.volume("shared") as va:
            va.pwrite(b"A" * 4096, 0)                     # nodea holds the lock
            assert "shared" in b.vlmc("list").out
            with b.client() as cb:
                assert cb.volume("shared", readonly=True).pread(4096, 0) == b"A" * 4096
            r = b.vlmc("snapshot", "shared", "s1", check=False)
            assert r.returncode == 1 and "locked by nodea:mapperd" in r.err
            b.vlmc("unlock", "-f", "shared")              # break nodea's lock
            b.vlmc("lock", "shared")
            # nodea's mapperd still believes it holds the lock: its late map update
            # is refused by the cluster (its blockerm client was blocklisted) ...
            r = a.vlmc("snapshot", "shared", "s2", check=False)
            assert r.returncode == 1 and ("fenced" in r.err or "nodeb" in r.err), r.err
            # ... and so is every later attempt while nodeb holds the lock.
            for _ in range(2):
                r = a.vlmc("snapshot", "shared", "s2", check=False)
                assert r.returncode == 1 and ("nodeb" in r.err or "fenced" in r.err), r.err
        b.vlmc("snapshot", "shared", "s1")
        b.vlmc("unlock", "shared")
        with a.client() as ca:
            assert ca.volume("shared@s1").pread(4096, 0) == b"A" * 4096
    finally:
        a.stop()
        b.stop()


def _replace_section(text, name, body):
    """`text` with INI section [name] replaced by `body`."""
    out, skip = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skip = line.strip() == f"[{name}]"
            if skip:
                out.append(body)
                continue
        if not skip:
            out.append(line)
    return "\n".join(out) + "\n"


def test_archipelago_conf_snippet(ceph_cluster):  # noqa: F811
    """`tools/ceph-cluster archipelago-conf DIR` gives role sections a node accepts."""
    from archipelago import config
    from archipelago.peers.config import role

    cfg = config.from_text(ceph_cluster.tool("archipelago-conf"))
    for name in ("blockerb", "blockerm"):
        r = role(cfg, name)
        assert r.type == "rados" and r.opts.pool == ceph_cluster.pool
        s = RadosStore.from_config(cfg, name)
        try:
            s.replace("probe", b"1")
            assert s.get("probe") == b"1"
            assert s.delete("probe")
        finally:
            s.close()
