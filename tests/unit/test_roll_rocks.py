"""The Rocks-frontend integration, under stand-in `rocks` modules: the command tree
the RPM installs forwards to rocks-command-archipelago's entry point, and the
start/stop host vm plugins map and unmap <vm>-vol as the original roll did."""
import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from roll.rocks import install_tree  # noqa: E402

LIB = "opt/rocks/lib/python/rocks"


class FakeCommand:
    def __init__(self):
        self.text, self.aborted = [], None

    def addText(self, text):
        self.text.append(text)

    def abort(self, msg):
        self.aborted = msg


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """The installed tree, importable as the `rocks` package (stand-in base classes)."""
    log = tmp_path / "calls.json"
    entry = tmp_path / "rocks-entry"
    entry.write_text(f"""#!{sys.executable}
import json, sys
calls = json.load(open({str(log)!r})) if __import__("os").path.exists({str(log)!r}) else []
calls.append(sys.argv[1:])
json.dump(calls, open({str(log)!r}, "w"))
words = " ".join(sys.argv[1:4])
if words == "list host vm": print(json.dumps([{{"vm-host": "vm-1", "nas": "nas-a",
                                              "pool": "fast"}}]))
elif words == "add host storagemap": print(json.dumps([{{"nas": "nas-a", "device": "/dev/nbd7"}}]))
elif words == "list host storagemap": sys.stderr.write("NAS nas-b is not answering\\n"); sys.exit(1)
else: print("ok")
""")
    entry.chmod(0o755)
    root = tmp_path / "root"
    cmds = ROOT / "src/rocks-command-archipelago/rocks_command_archipelago/commands"
    found = install_tree.discover(cmds) if cmds.is_dir() else None
    install_tree.install(root, rocks_bin=str(entry), commands=found)
    rocks = types.ModuleType("rocks")
    rocks.__path__ = [str(root / LIB)]
    commands = types.ModuleType("rocks.commands")
    commands.__path__ = [str(root / LIB / "commands")]
    commands.Command = FakeCommand
    commands.Plugin = type("Plugin", (), {"__init__": lambda self, owner: setattr(
        self, "owner", owner)})
    rocks.commands = commands
    for name in list(sys.modules):
        if name == "rocks" or name.startswith("rocks."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rocks", rocks)
    monkeypatch.setitem(sys.modules, "rocks.commands", commands)
    return root, log


def load(root, rel):
    spec = importlib.util.spec_from_file_location("m_" + rel.replace("/", "_")[:-3],
                                                  root / LIB / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def calls(log):
    return json.loads(log.read_text())


def test_tree_has_every_design_command(tree):
    root, _ = tree
    from roll.rocks.commands import COMMANDS
    for words in COMMANDS:
        assert (root / LIB / "commands" / words.replace(" ", "/") / "__init__.py").exists()
    for verb in ("start", "stop"):
        assert (root / LIB / f"commands/{verb}/host/vm/plugin_archipelago.py").exists()


def test_command_forwards_args_and_params(tree):
    root, log = tree
    mod = load(root, "commands/add/host/storagemap/__init__.py")
    cmd = mod.Command()
    cmd.run({"img_sync": "true"}, ["nas-a", "fast", "vol1", "compute-x", "10G"])
    assert cmd.aborted is None and "/dev/nbd7" in cmd.text[0]
    assert calls(log)[-1] == ["add", "host", "storagemap", "nas-a", "fast", "vol1",
                              "compute-x", "10G", "img_sync=true"]
    assert mod.Command.__doc__


def test_command_failure_aborts_with_the_message(tree):
    root, _ = tree
    cmd = load(root, "commands/list/host/storagemap/__init__.py").Command()
    cmd.run({}, ["nas-b"])
    assert cmd.aborted == "NAS nas-b is not answering"


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def vm_node(name="vm-1"):
    disk = Obj(size=20, vbd_type="file", prefix="/state/partition1", name="vm-1.img")
    return Obj(name=name, vm_defs=Obj(physNode=Obj(name="vmc-3"), disks=[disk]))


class Owner:
    def __init__(self, attrs):
        self.db = Obj(getHostAttr=lambda host, attr: attrs.get((host, attr)))


def test_start_plugin_maps_the_volume_and_points_the_disk_at_it(tree):
    root, log = tree
    plugin = load(root, "commands/start/host/vm/plugin_archipelago.py")
    node = vm_node()
    owner = Owner({("vmc-3", "img_sync"): "true", ("vm-1", "img_sync"): "yes"})
    plugin.Plugin(owner).run(node)
    assert calls(log)[-1] == ["add", "host", "storagemap", "nas-a", "fast", "vm-1-vol",
                              "vmc-3", "20G", "img_sync=true", "output-format=json"]
    disk = node.vm_defs.disks[0]
    assert (disk.vbd_type, disk.prefix, disk.name) == ("phy", "/dev/", "nbd7")


def test_start_plugin_sync_needs_both_host_and_vm(tree):
    root, log = tree
    plugin = load(root, "commands/start/host/vm/plugin_archipelago.py")
    plugin.Plugin(Owner({("vmc-3", "img_sync"): "true"})).run(vm_node())
    assert "img_sync=false" in calls(log)[-1]


def test_stop_plugin_unmaps(tree):
    root, log = tree
    plugin = load(root, "commands/stop/host/vm/plugin_archipelago.py")
    plugin.Plugin(Owner({})).run(vm_node())
    assert calls(log)[-1] == ["remove", "host", "storagemap", "nas-a", "vm-1-vol"]


def test_vm_without_nas_or_host_is_left_alone(tree):
    root, _ = tree
    vm = load(root, "archipelago_vm.py")
    assert vm.start(Owner({}), Obj(name="vm-2", vm_defs=None), lambda *a: "[]") is None
    assert vm.stop(Owner({}), vm_node("vm-2"), lambda *a, **k: "[]") is None
    assert vm.device_from("NAS DEVICE\nnas-a /dev/loop3\n") == "/dev/loop3"
