"""The compute-node daemon's actions, one module each (DESIGN §4)."""
from archipelago.bus.dispatch import Action

from . import list_dev, map, sync, unmap

MODULES = {"map": map, "unmap": unmap, "list_dev": list_dev, "sync": sync}
NOT_IMPLEMENTED = ()


def actions():
    return [Action.from_module(name, mod) for name, mod in MODULES.items()]
