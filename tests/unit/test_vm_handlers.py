"""archipelago-vmd on the StubBus: map/unmap/list_dev, idempotency, restart."""
import pytest
from controlplane_stub import StubCluster

from archipelago_vm.attach.memory import MemoryAttacher
from archipelago_vm.attach.uri import UriAttacher

VM = "compute-0-0"


@pytest.fixture
def cl(tmp_path):
    return StubCluster(tmp_path, computes=(VM,))


def vm_call(cl, action, rid=None, **f):
    return cl.call(VM, action, rid, **f)


def test_map_is_idempotent_and_listed(cl):
    r = vm_call(cl, "map", "r1", volume="v", uri="nbd://nas:1/v", nas="nas-0-0", size=4096)
    assert r["status"] == "success" and r["action"] == "volume_mapped"
    again = vm_call(cl, "map", "r2", volume="v", uri="nbd://nas:1/v", nas="nas-0-0")
    assert again["device"] == r["device"]
    other = vm_call(cl, "map", "r3", volume="v", uri="nbd://other:1/v", nas="nas-0-0")
    assert other["kind"] == "Busy"
    devs = vm_call(cl, "list_dev")["devices"]
    assert [(d["volume"], d["device"], d["size"]) for d in devs] == [("v", r["device"], 4096)]


def test_unmap_busy_force_and_absent(cl):
    att = cl.vms[VM].attacher
    dev = vm_call(cl, "map", volume="v", uri="nbd://n:1/v", nas="nas-0-0")["device"]
    att.in_use.add(dev)
    r = vm_call(cl, "unmap", volume="v")
    assert r["action"] == "volume_unmapped" and r["kind"] == "Busy"
    assert vm_call(cl, "unmap", volume="v", force=True)["status"] == "success"
    assert vm_call(cl, "unmap", volume="v")["status"] == "success"      # already gone
    assert att.devices == {}


def test_restart_forgets_devices_that_vanished(cl):
    vm_call(cl, "map", volume="v", uri="nbd://n:1/v", nas="nas-0-0")
    cl.vms[VM] = cl.start_vm(VM, attacher=MemoryAttacher())      # nothing attached now
    assert vm_call(cl, "list_dev")["devices"] == []


def test_uri_attacher_survives_restart(tmp_path):
    cl = StubCluster(tmp_path, computes=())
    cl.vms[VM] = cl.start_vm(VM, attacher=UriAttacher())
    r = vm_call(cl, "map", volume="v", uri="nbd://n:1/v", nas="nas-0-0")
    assert r["device"] == "nbd://n:1/v"
    cl.vms[VM] = cl.start_vm(VM, attacher=UriAttacher())
    assert [d["device"] for d in vm_call(cl, "list_dev")["devices"]] == ["nbd://n:1/v"]


def test_vm_validates_names_and_rejects_nas_actions(cl):
    assert "invalid volume name" in vm_call(cl, "map", volume="a/b", uri="u", nas="n")["error"]
    assert "unknown action 'delete'" in vm_call(cl, "delete", volume="v")["error"]
    assert "missing field 'volume'" in vm_call(cl, "sync")["error"]
