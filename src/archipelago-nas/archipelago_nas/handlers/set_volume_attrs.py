"""set_volume_attrs: set (or, with null/"none", clear) volume sync attributes.

frequency applies from the next tick (the next sync is due `frequency` after the
last one); uploadspeed goes with the next sync request; downloadspeed reaches a
copy in progress within [nas] sweep_interval (sync/flow.py).

`sync` (rocks set host storagemap ... img_sync=B) is checked, never applied to a
live mapping: the same value is a no-op; a different one is refused, because it
would swap the block device under a running VM (served from a local replica vs
from the NAS). Unmap (a final sync comes first) and map again to switch."""
from archipelago.bus.schema import Field
from archipelago.errors import InvalidArgument, NotFound, Unsupported
from archipelago.names import validate_name

from ..models import Mapping, Volume, VolumeAttr
from ..states import UNMAPPED
from . import get_volume_attrs
from .attrs import volume_attr

FIELDS = {"volume": Field(str, check=validate_name),
          "attrs": Field(dict, required=False, default=None),
          "sync": Field(bool, required=False)}


def handle(ctx, f):
    if not f["attrs"] and f["sync"] is None:
        raise InvalidArgument("set_volume_attrs: no attributes given")
    s, name = ctx.session, f["volume"]
    if f["sync"] is not None:
        check_sync(s, name, f["sync"])
    for key, value in (f["attrs"] or {}).items():
        attr, norm = volume_attr(key, value)
        row = s.get(VolumeAttr, (name, attr))
        if norm is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(VolumeAttr(volume=name, attr=attr, value=norm))
        else:
            row.value = norm
    s.flush()
    return get_volume_attrs.handle(ctx, {"volume": name})


def check_sync(s, name, want):
    """img_sync of a mapping is chosen when it is mapped; see the module docstring."""
    m = s.get(Mapping, name)
    if s.get(Volume, name) is None:
        raise NotFound(f"no volume {name} on this NAS")
    if m is None or m.state in (None, UNMAPPED):
        raise InvalidArgument(f"volume {name} is not mapped; img_sync is chosen when it is "
                              f"mapped (rocks add host storagemap ... img_sync=)")
    if bool(m.sync) == want:
        return
    now = "from a local replica" if m.sync else "from the NAS"
    raise Unsupported(f"volume {name} is {m.state} on {m.remotehost}, served {now}; "
                      "switching img_sync on a live mapping is refused (the device would "
                      "change under a running VM): unmap it (rocks remove host storagemap, "
                      "which syncs first) and map it again with img_sync="
                      f"{'false' if m.sync else 'true'}")
