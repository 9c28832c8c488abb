"""NAS + compute daemons on the StubBus: map, unmap, delete, list and their failures."""
import collections
import json
import time

import pytest
from controlplane_stub import StubCluster
from sqlalchemy import select

from archipelago import errors
from archipelago.bus import schema
from archipelago_nas.models import Mapping, Transition


@pytest.fixture
def cl(tmp_path):
    return StubCluster(tmp_path)


def ok(reply):
    assert reply["status"] == "success", reply
    return reply


def states(cl, volume):
    with cl.nas.db.scope() as s:
        return [(t.old, t.new) for t in s.scalars(
            select(Transition).where(Transition.volume == volume).order_by(Transition.id))]


def test_map_creates_exports_attaches(cl):
    r = ok(cl.map("vol1", size=10 << 30))
    assert r["action"] == "map" and r["state"] == "mapped"
    assert r["device"].startswith("memory:") and r["uri"] == "nbd://nas-0-0:10809/vol1"
    assert cl.volumes.volumes[("pool", "vol1")] == 10 << 30
    assert cl.volumes.exports[("pool", "vol1")] == "compute-0-0"
    assert cl.vms["compute-0-0"].attacher.devices == {r["device"]: r["uri"]}
    assert states(cl, "vol1") == [("unmapped", "mapping"), ("mapping", "mapped")]


def test_map_adopts_existing_volume(cl):
    cl.volumes.ensure("pool", "old", 1 << 30)
    ok(cl.map("old", size=1 << 20))
    assert cl.volumes.volumes[("pool", "old")] == 1 << 30


def test_map_twice_same_host_is_harmless_other_host_busy(cl):
    first = ok(cl.map("v"))
    assert ok(cl.map("v"))["device"] == first["device"]
    r = cl.map("v", host="compute-0-1")
    assert r["kind"] == "Busy" and "already mapped on compute-0-0" in r["error"]


def test_same_request_id_runs_once(cl):
    a = ok(cl.nas_call("map", "rid-1", pool="p", volume="v", remotehost="compute-0-0",
                       size=1 << 20))
    ok(cl.nas_call("unmap", volume="v"))
    b = cl.nas_call("map", "rid-1", pool="p", volume="v", remotehost="compute-0-0",
                    size=1 << 20)
    assert b == a                                   # the stored reply, not a new map
    assert cl.vms["compute-0-0"].attacher.devices == {}
    assert [c for c in cl.volumes.calls if c[0] == "ensure"] == [("ensure", "p", "v", 1 << 20)]


def test_unroutable_compute_node_rolls_back(cl):
    r = cl.map("v", host="compute-9-9")
    assert r["status"] == "error" and r["kind"] == "Unavailable"
    assert "compute node compute-9-9 is unavailable" in r["error"]
    assert cl.volumes.exports == {} and cl.volumes.volumes == {}   # created, then removed
    assert ok(cl.nas_call("list"))["mappings"] == []
    assert states(cl, "v") == [("unmapped", "mapping"), ("mapping", "unmapped")]


def test_attach_failure_rolls_back(cl):
    cl.vms["compute-0-0"].attacher.fail_next = errors.BackendError("nbd: connection refused")
    r = cl.map("v")
    assert r["kind"] == "BackendError"
    assert r["error"] == "compute node compute-0-0: nbd: connection refused"
    row = ok(cl.nas_call("list"))["mappings"][0]
    assert row["state"] == "unmapped" and row["remotehost"] is None
    assert cl.volumes.exports == {}
    ok(cl.map("v"))                                   # and it works afterwards


def test_unmap_and_delete(cl):
    ok(cl.map("v"))
    assert cl.nas_call("delete", volume="v")["kind"] == "Busy"
    r = ok(cl.nas_call("unmap", volume="v"))
    assert r["action"] == "unmap" and r["remotehost"] == "compute-0-0"
    assert cl.vms["compute-0-0"].attacher.devices == {} and cl.volumes.exports == {}
    assert cl.nas_call("unmap", volume="v")["error"] == "volume v is not mapped"
    ok(cl.nas_call("delete", volume="v", pool="pool"))
    assert cl.volumes.volumes == {}
    assert cl.nas_call("delete", volume="v")["kind"] == "NotFound"


def test_unmap_of_device_in_use_fails_clearly(cl):
    dev = ok(cl.map("v"))["device"]
    cl.vms["compute-0-0"].attacher.in_use.add(dev)
    r = cl.nas_call("unmap", volume="v")
    assert r["kind"] == "Busy" and f"device {dev} is in use" in r["error"]
    assert ok(cl.nas_call("list"))["mappings"][0]["state"] == "mapped"
    ok(cl.nas_call("unmap", volume="v", force=True))


def test_map_to_silent_node_times_out_and_rolls_back(cl):
    cl.bus.down("compute-0-1")                        # queue exists, nobody consumes
    req = schema.request("map", pool="p", volume="v", remotehost="compute-0-1", size=4096)
    with pytest.raises(errors.Timeout):
        cl.bus.call("nas-0-0", req, timeout=1)
    assert ok(cl.nas_call("list"))["mappings"][0]["state"] == "mapping"
    r = cl.map("v", host="compute-0-0", pool="p")
    assert r["kind"] == "Busy" and "mapping on compute-0-1" in r["error"]
    with cl.nas.db.scope() as s:
        s.get(Mapping, "v").deadline = time.time() - 1
    cl.bus.tick()                                     # the sweeper
    row = ok(cl.nas_call("list"))["mappings"][0]
    assert row["state"] == "unmapped" and row["pending"] is None
    cl.bus.up("compute-0-1")
    cl.bus.drain()                                    # late map + undo unmap arrive
    assert cl.vms["compute-0-1"].attacher.devices == {}
    ok(cl.map("v", host="compute-0-0", pool="p", size=4096))


def test_restart_resumes_pending_map(cl, tmp_path):
    cl.bus.down("compute-0-0")
    with pytest.raises(errors.Timeout):
        cl.bus.call("nas-0-0", schema.request("map", pool="p", volume="v",
                                              remotehost="compute-0-0", size=4096), 1)
    cl.nas = cl.start_nas()                          # "restarted" NAS, same database
    cl.bus.up("compute-0-0")
    cl.bus.drain()
    assert ok(cl.nas_call("list"))["mappings"][0]["state"] == "mapped"


def test_heartbeats_and_dead_node(cl):
    for vm in cl.vms.values():
        cl.bus.heartbeat(vm.heartbeat_message())
    nodes = {n["name"]: n for n in ok(cl.nas_call("list_nodes"))["nodes"]}
    assert nodes["compute-0-0"]["alive"] and nodes["compute-0-0"]["role"] == "compute"
    assert nodes["compute-0-1"]["capacity"] > 0
    from archipelago_nas.models import Peer
    with cl.nas.db.scope() as s:
        s.get(Peer, "compute-0-1").last_seen -= 3600
    assert not {n["name"]: n for n in ok(cl.nas_call("list_nodes"))["nodes"]}[
        "compute-0-1"]["alive"]
    r = cl.map("v", host="compute-0-1")
    assert r["kind"] == "Unavailable" and "last heartbeat" in r["error"]


def test_clean_forgets_stuck_mapping(cl):
    ok(cl.map("v"))
    cl.bus.down("compute-0-0")
    r = ok(cl.nas_call("clean", volume="v"))
    assert r["was"] == "mapped"
    assert ok(cl.nas_call("list"))["mappings"][0]["state"] == "unmapped"
    cl.bus.up("compute-0-0")
    cl.bus.drain()
    assert cl.vms["compute-0-0"].attacher.devices == {}


@pytest.mark.parametrize("body, want", [
    (b"garbage", "not valid JSON"),
    (json.dumps({"v": 1, "action": "frobnicate", "request_id": "r"}).encode(),
     "unknown action 'frobnicate'"),
    (json.dumps({"v": 1, "action": "map", "request_id": "r"}).encode(), "missing field"),
    (json.dumps({"v": 1, "action": "map", "request_id": "r", "pool": "p", "volume": "v",
                 "remotehost": "h", "size": "10G"}).encode(), "must be an integer"),
    (json.dumps({"v": 1, "action": "map", "request_id": "r", "pool": "p",
                 "volume": "../../etc", "remotehost": "h", "size": 4096}).encode(),
     "invalid volume name"),
    (json.dumps({"v": 1, "action": "migrate", "request_id": "r"}).encode(),
     "not implemented yet"),
    (b"{" + b" " * (1 << 20) + b"}", "exceeds"),
])
def test_bad_messages_get_error_replies(cl, body, want):
    cl.bus.queues["frontend"] = collections.deque()
    cl.bus.send_raw("nas-0-0", body, reply_to="frontend", correlation_id="c1")
    cl.bus.drain()
    reply = schema.decode_reply(cl.bus.queues["frontend"].popleft().body)
    assert reply["status"] == "error" and want in reply["error"]
    ok(cl.map("still-alive"))


def test_attributes(cl):
    r = ok(cl.nas_call("get_volume_attrs", volume="nothing-yet"))
    assert r["attrs"] == {"frequency": None, "nextsync": None, "uploadspeed": None,
                          "downloadspeed": None}
    r = ok(cl.nas_call("set_volume_attrs", volume="v", attrs={"frequency": "600",
                                                                "uploadspeed": "10M/s"}))
    assert r["attrs"]["frequency"] == "600" and r["attrs"]["uploadspeed"] == str(10 << 20)
    assert "unknown volume attribute" in cl.nas_call(
        "set_volume_attrs", volume="v", attrs={"color": "red"})["error"]
    assert "seconds" in cl.nas_call("set_volume_attrs", volume="v",
                                    attrs={"frequency": "often"})["error"]
    ok(cl.nas_call("set_volume_attrs", volume="v", attrs={"frequency": "none"}))
    assert ok(cl.nas_call("get_volume_attrs", volume="v"))["attrs"]["frequency"] is None
    assert ok(cl.nas_call("set_attrs", attrs={"img_zpools": "a,b"}))["attrs"] == {
        "img_zpools": "a,b"}
    assert ok(cl.nas_call("del_attrs", attrs=["img_zpools", "absent"]))["attrs"] == {}
    assert "invalid attribute name" in cl.nas_call("set_attrs", attrs={"a b": "x"})["error"]


def test_sync_and_image_not_implemented(cl):
    assert "img_sync needs [nas] volumes = engine" in cl.map("v", sync=True)["error"]
    assert "image base is not known" in cl.map("v", image="base")["error"]


def test_old_finished_requests_are_pruned(cl):
    from archipelago_nas.models import Request
    ok(cl.nas_call("list", "old-1"))
    with cl.nas.db.scope() as s:
        s.get(Request, "list:old-1").created -= cl.nas.REQUEST_TTL + 1
    ok(cl.nas_call("list", "new-1"))
    cl.nas.dispatcher.run_job(cl.nas.prune_requests)
    with cl.nas.db.scope() as s:
        assert s.get(Request, "list:old-1") is None
        assert s.get(Request, "list:new-1") is not None


def test_failed_export_takes_back_the_volume_it_created(cl, monkeypatch):
    def no_export(pool, name, host):
        raise errors.Unavailable(f"cannot resolve the address of {host}")
    cl.volumes.ensure("pool", "kept", 1 << 20)
    monkeypatch.setattr(cl.volumes, "export", no_export)
    r = cl.map("fresh")
    assert r["status"] == "error" and "cannot resolve" in r["error"]
    assert ("pool", "fresh") not in cl.volumes.volumes       # created by the map: removed
    r = cl.map("kept")
    assert r["status"] == "error"
    assert ("pool", "kept") in cl.volumes.volumes            # adopted: left alone
