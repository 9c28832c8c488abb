"""The NAS daemon's actions, one module each (DESIGN §4)."""
from archipelago.bus.dispatch import Action

from . import (
    add_image,
    clean,
    del_attrs,
    delete,
    get_attrs,
    get_volume_attrs,
    list_images,
    list_mappings,
    list_nodes,
    map,
    remove_image,
    set_attrs,
    set_volume_attrs,
    sync,
    unmap,
    volume_mapped,
    volume_synced,
    volume_unmapped,
)

MODULES = {
    "map": map, "unmap": unmap, "delete": delete, "list": list_mappings,
    "get_volume_attrs": get_volume_attrs, "set_volume_attrs": set_volume_attrs,
    "get_attrs": get_attrs, "set_attrs": set_attrs, "del_attrs": del_attrs,
    "list_nodes": list_nodes, "clean": clean,
    "volume_mapped": volume_mapped, "volume_unmapped": volume_unmapped,
    "sync": sync, "volume_synced": volume_synced,
    "add_image": add_image, "list_images": list_images, "remove_image": remove_image,
}
# Accepted, answered with a clear "not implemented yet" (they come with their issues).
NOT_IMPLEMENTED = ("migrate",)


def actions():
    return [Action.from_module(name, mod) for name, mod in MODULES.items()]
