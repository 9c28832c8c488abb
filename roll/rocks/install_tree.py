"""Install the Rocks-frontend integration into ROOT/opt/rocks/lib/python/rocks.

    rocks/archipelago_bridge.py           forwards to rocks-command-archipelago
    rocks/archipelago_vm.py               the start/stop host vm logic
    rocks/commands/<words>/__init__.py    one Command per rocks command
    rocks/commands/start/host/vm/plugin_archipelago.py   map <vm>-vol before start
    rocks/commands/stop/host/vm/plugin_archipelago.py    unmap it after stop

The command list comes from rocks-command-archipelago's own tree
(rocks_command_archipelago/commands/<verb>/host/.../<name>.py with a Command
class) when its source is given, else from commands.py (DESIGN §4).

usage: install_tree.py ROOT [--rocks-bin /usr/bin/rocks] [--commands-from DIR]
"""
import argparse
import ast
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


def discover(commands_dir):
    """{words: docstring} for every module under commands_dir defining `Command`."""
    found = {}
    for path in sorted(Path(commands_dir).rglob("*.py")):
        tree = ast.parse(path.read_text())
        if not any(isinstance(n, ast.ClassDef) and n.name == "Command" for n in tree.body):
            continue
        parts = path.relative_to(commands_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        words = " ".join(parts)
        if len(parts) >= 2:
            found[words] = ast.get_docstring(tree) or COMMANDS.get(words, words)
    return found


def install(root, rocks_bin="/usr/bin/rocks", commands=None):
    """Write the tree under `root`; returns the list of files written."""
    lib = Path(root) / ROCKS_LIB
    files = {}
    bridge = (HERE / "bridge.py").read_text()
    files["archipelago_bridge.py"] = re.sub(r'^ENTRY = .*$', f'ENTRY = "{rocks_bin}"',
                                            bridge, count=1, flags=re.M)
    files["archipelago_vm.py"] = (HERE / "vm_plugin.py").read_text()
    for words, doc in (commands or COMMANDS).items():
        path = "commands/" + "/".join(words.split()) + "/__init__.py"
        doc = doc.replace('"' * 3, "'" * 3).replace("\\", "\\\\")
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
    ap.add_argument("--commands-from", help="rocks_command_archipelago/commands source dir")
    a = ap.parse_args(argv)
    cmds = None
    if a.commands_from and Path(a.commands_from).is_dir():
        cmds = discover(a.commands_from) or None
    install(a.root, a.rocks_bin, cmds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
