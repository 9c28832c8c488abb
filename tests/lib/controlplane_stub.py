"""A one-process control plane on the StubBus: a NAS and compute nodes with in-memory
volumes and attachers, each with its own SQLite file. Used by tests/unit/test_nas*,
test_vm*, test_rocks*."""
from archipelago import config
from archipelago.bus import schema
from archipelago.bus.stub import StubBus
from archipelago_nas.daemon import NasNode
from archipelago_nas.volumes.memory import MemoryVolumeService
from archipelago_vm.attach.memory import MemoryAttacher
from archipelago_vm.daemon import VmNode


def node_config(name, state_dir, extra=""):
    return config.from_text(f"[node]\nname = {name}\nstate_dir = {state_dir}\n"
                            f"run_dir = {state_dir}\n{extra}")


class StubCluster:
    def __init__(self, tmp_path, computes=("compute-0-0", "compute-0-1"), nas_extra=""):
        self.tmp = tmp_path
        self.bus = StubBus()
        self.volumes = MemoryVolumeService("nas-0-0")
        self.nas = self.start_nas(nas_extra)
        self.vms = {name: self.start_vm(name) for name in computes}

    def start_nas(self, extra=""):
        cfg = node_config("nas-0-0", self.tmp / "nas-0-0", extra)
        nas = NasNode(cfg, bus=self.bus, volume_service=self.volumes)
        nas.importer.inline = True        # imports finish inside add_image
        nas.setup()
        return nas

    def start_vm(self, name, attacher=None):
        cfg = node_config(name, self.tmp / name)
        vm = VmNode(cfg, bus=self.bus, attacher=attacher or MemoryAttacher())
        vm.setup()
        return vm

    def call(self, node, action, request_id=None, **fields):
        return self.bus.call(node, schema.request(action, request_id, **fields), timeout=5)

    def nas_call(self, action, request_id=None, **fields):
        return self.call("nas-0-0", action, request_id, **fields)

    def map(self, volume, host="compute-0-0", size=1 << 30, pool="pool", **kw):
        return self.nas_call("map", pool=pool, volume=volume, remotehost=host, size=size, **kw)
