"""rocks commands: argument conventions, validation at the frontend, output formats,
against the StubBus cluster (no broker)."""
import json

import pytest
from controlplane_stub import StubCluster

from archipelago import errors
from rocks_command_archipelago import commands
from rocks_command_archipelago.client import Client
from rocks_command_archipelago.output import Output


@pytest.fixture
def rocks(tmp_path, monkeypatch):
    cl = StubCluster(tmp_path)
    conf = tmp_path / "fe.conf"
    conf.write_text(f"[node]\nname = frontend\nstate_dir = {tmp_path / 'fe'}\n")
    client = Client(str(conf), bus=cl.bus)

    def run(*words):
        key, cls, argv = commands.find(list(words))
        assert cls is not None, words
        return cls(client, key).execute(argv)
    run.cluster = cl
    return run


def test_map_list_unmap_table_and_json(rocks):
    out = rocks("add", "host", "storagemap", "nas-0-0", "pool", "v1", "compute-0-0", "10G")
    assert out.splitlines()[0].split() == ["NAS", "VOLUME", "REMOTEHOST", "DEVICE", "URI"]
    rows = json.loads(rocks("list", "host", "storagemap", "nas-0-0", "output-format=json"))
    assert rows[0]["volume"] == "v1" and rows[0]["size"] == 10 << 30
    assert rows[0]["state"] == "mapped"
    dev = rocks("list", "host", "storagedev", "compute-0-0")
    assert "v1" in dev and dev.splitlines()[-1].startswith("compute-0-0: alive")
    assert rocks("remove", "host", "storagemap", "nas-0-0", "v1") == \
        "unmapped v1 from compute-0-0"
    assert json.loads(rocks("list", "host", "storagedev", "compute-0-0",
                            "output-format=json")) == []
    assert json.loads(rocks("remove", "host", "storageimg", "nas-0-0", "pool", "v1",
                            "output-format=json")) == [{"result": "removed v1 from pool pool"}]


@pytest.mark.parametrize("words, want", [
    (("add", "host", "storagemap", "nas-0-0", "pool", "v/1", "compute-0-0", "1G"),
     "invalid volume name"),
    (("add", "host", "storagemap", "nas-0-0", "p@ol", "v1", "compute-0-0", "1G"),
     "invalid pool name"),
    (("add", "host", "storagemap", "nas 0", "pool", "v1", "compute-0-0", "1G"),
     "invalid host name"),
    (("add", "host", "storagemap", "nas-0-0", "pool", "v1", "compute-0-0", "-1G"),
     "invalid size"),
    (("add", "host", "storagemap", "nas-0-0", "pool", "v1"), "usage: rocks add host"),
    (("add", "host", "storagemap", "nas-0-0", "pool", "v1", "c", "1G", "bogus=1"),
     "unknown parameter bogus="),
    (("add", "host", "storagemap", "nas-0-0", "pool", "v1", "c", "1G", "img_sync=maybe"),
     "not a boolean"),
    (("list", "host", "storagemap", "nas-0-0", "output-format=xml"), "output-format"),
    (("list", "host", "storagemap", "nas-0-0", "timeout=-3"), "timeout"),
])
def test_frontend_validation(rocks, words, want):
    with pytest.raises(errors.InvalidArgument, match=want):
        rocks(*words)
    assert rocks.cluster.bus.published == []        # nothing was sent


def test_errors_carry_their_kind(rocks):
    rocks("add", "host", "storagemap", "nas-0-0", "pool", "v1", "compute-0-0", "1G")
    with pytest.raises(errors.Busy, match="already mapped on compute-0-0"):
        rocks("add", "host", "storagemap", "nas-0-0", "pool", "v1", "compute-0-1", "1G")
    with pytest.raises(errors.Unavailable, match="compute node compute-7-7 is unavailable"):
        rocks("add", "host", "storagemap", "nas-0-0", "pool", "v2", "compute-7-7", "1G")
    with pytest.raises(errors.Unavailable, match="nas-9-9 is unavailable"):
        rocks("list", "host", "storagemap", "nas-9-9")
    with pytest.raises(errors.Unsupported, match="not implemented yet"):
        rocks("set", "host", "storagemap", "nas-0-0", "v1", "remotehost=compute-0-1")


def test_frontend_timeout_message(rocks):
    rocks.cluster.bus.down("nas-0-0")
    with pytest.raises(errors.Timeout, match="no reply from nas-0-0 within 3s: is "
                                             "archipelago-nasd running there"):
        rocks("list", "host", "storagemap", "nas-0-0", "timeout=3")


def test_attrs_vm_nas_report_storagenode(rocks):
    rocks("set", "host", "storageattr", "nas-0-0", "img_pools", "fast,slow")
    assert "fast,slow" in rocks("list", "host", "storageattr", "nas-0-0")
    assert rocks("set", "host", "vm", "nas", "vm-1", "nas=nas-0-0") == "vm-1: nas-0-0 pool fast"
    assert json.loads(rocks("list", "host", "vm", "nas", "output-format=json")) == [
        {"vm-host": "vm-1", "nas": "nas-0-0", "pool": "fast"}]
    rocks("set", "host", "volattr", "nas-0-0", "v1", "downloadspeed", "1G/s")
    assert str(1 << 30) in rocks("list", "host", "volattr", "nas-0-0", "v1")
    assert "name = compute-0-3" in rocks("report", "host", "archipelago", "compute-0-3")
    for vm in rocks.cluster.vms.values():
        rocks.cluster.bus.heartbeat(vm.heartbeat_message())
    assert "compute-0-1 compute yes" in rocks("list", "host", "storagenode", "nas-0-0")


def test_every_design_command_is_registered():
    design = ["add host storagemap", "add host storageimg", "list host storageimg",
              "remove host storagemap", "list host storagemap", "set host storagemap",
              "list host storagedev", "remove host storageimg", "list host storageattr",
              "set host storageattr", "list host volattr", "set host volattr",
              "clean host storagemap", "set host vm nas", "list host vm nas",
              "remove host vm nas", "report host archipelago"]
    for words in design:
        assert commands.find(words.split())[1] is not None, words


def test_output_table_alignment():
    out = Output(["a", "long-name"], [["x", None], ["yyyy", True]]).as_table()
    assert out.splitlines() == ["A    LONG-NAME", "x    -", "yyyy yes"]


def test_set_storagemap_img_sync_is_checked_against_the_live_mapping(rocks):
    rocks("add", "host", "storagemap", "nas-0-0", "pool", "v1", "compute-0-0", "1G")
    # the same value: nothing to do; frequency is set with it
    out = json.loads(rocks("set", "host", "storagemap", "nas-0-0", "v1", "img_sync=false",
                           "frequency=60", "output-format=json"))
    assert out[0]["frequency"] == "60"
    with pytest.raises(errors.Unsupported, match=r"unmap it .* map it again with "
                                                 "img_sync=true"):
        rocks("set", "host", "storagemap", "nas-0-0", "v1", "img_sync=true")
    rocks("remove", "host", "storagemap", "nas-0-0", "v1")
    with pytest.raises(errors.InvalidArgument, match="is not mapped; img_sync is chosen"):
        rocks("set", "host", "storagemap", "nas-0-0", "v1", "img_sync=true")
    with pytest.raises(errors.NotFound, match="no volume v9"):
        rocks("set", "host", "storagemap", "nas-0-0", "v9", "img_sync=true")
