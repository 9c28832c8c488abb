"""Install the Rocks-frontend integration into ROOT/opt/rocks/lib/python/rocks.

    rocks/archipelago_bridge.py           forwards to rocks-command-archipelago
    rocks/archipelago_vm.py               the start/stop host vm logic
    rocks/commands/<words>/__init__.py    one Command per rocks command (commands.py)
    rocks/commands/start/host/vm/plugin_archipelago.py   map <vm>-vol before start
    rocks/commands/stop/host/vm/plugin_archipelago.py    unmap it after stop

usage: install_tree.py ROOT [--rocks-bin /usr/bin/rocks]
"""
import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from commands import COMMANDS  # noqa: E402

ROCKS_LIB = "opt/rocks/lib/python/rocks"

COMMAND = '''"""{doc}"""
import rocks.commands
from rocks.archipelago_bridge import make_command

Command = make_command(rocks.commands.Command, {words!r}, __doc__)

RollName = "archipelago"
'''

PLUGIN = '''"""{what} (archipelago roll)."""
import rocks.commands
from rocks import archipelago_bridge, archipelago_vm


class Plugin(rocks.commands.Plugin):

    def provides(self):
        return "archipelago"

    def run(self, node):
        archipelago_vm.{func}(self.owner, node, archipelago_bridge.call)


RollName = "archipelago"
'''


def install(root, rocks_bin="/usr/bin/rocks"):
    """Write the tree under `root`; returns the list of files written."""
    lib = Path(root) / ROCKS_LIB
    files = {}
    bridge = (HERE / "bridge.py").read_text()
    files["archipelago_bridge.py"] = re.sub(r'^ENTRY = .*$', f'ENTRY = "{rocks_bin}"',
                                            bridge, count=1, flags=re.M)
    files["archipelago_vm.py"] = (HERE / "vm_plugin.py").read_text()
    for words, doc in COMMANDS.items():
        path = "commands/" + "/".join(words.split()) + "/__init__.py"
        files[path] = COMMAND.format(doc=doc, words=words.split())
    files["commands/start/host/vm/plugin_archipelago.py"] = PLUGIN.format(
        what="Map the VM's volume on its physical host before it starts", func="start")
    files["commands/stop/host/vm/plugin_archipelago.py"] = PLUGIN.format(
        what="Unmap the VM's volume after it stopped", func="stop")
    written = []
    for rel, text in files.items():
        p = lib / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        written.append(p)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--rocks-bin", default="/usr/bin/rocks")
    a = ap.parse_args(argv)
    install(a.root, a.rocks_bin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
