"""Command registry: the words of a command -> its module (Rocks' tree layout).

(Importing the subpackage `list` rebinds the name `list` in this module: never call
the builtin here.)"""
import importlib

COMMANDS = {
    ("add", "host", "storagemap"): "add.host.storagemap",
    ("remove", "host", "storagemap"): "remove.host.storagemap",
    ("list", "host", "storagemap"): "list.host.storagemap",
    ("set", "host", "storagemap"): "set.host.storagemap",
    ("clean", "host", "storagemap"): "clean.host.storagemap",
    ("list", "host", "storagedev"): "list.host.storagedev",
    ("list", "host", "storagenode"): "list.host.storagenode",
    ("add", "host", "storageimg"): "add.host.storageimg",
    ("list", "host", "storageimg"): "list.host.storageimg",
    ("remove", "host", "storageimg"): "remove.host.storageimg",
    ("list", "host", "storageattr"): "list.host.storageattr",
    ("set", "host", "storageattr"): "set.host.storageattr",
    ("list", "host", "volattr"): "list.host.volattr",
    ("set", "host", "volattr"): "set.host.volattr",
    ("set", "host", "vm", "nas"): "set.host.vm.nas",
    ("list", "host", "vm", "nas"): "list.host.vm.nas",
    ("remove", "host", "vm", "nas"): "remove.host.vm.nas",
    ("report", "host", "archipelago"): "report.host.archipelago",
}


def find(words):
    """(command words, Command class, remaining argv) for the longest matching prefix."""
    for n in (4, 3):
        key = tuple(w.lower() for w in words[:n])
        if key in COMMANDS:
            mod = importlib.import_module(f"{__name__}.{COMMANDS[key]}")
            return key, mod.Command, [*words[n:]]
    return None, None, words
