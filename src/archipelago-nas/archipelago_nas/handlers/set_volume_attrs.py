"""set_volume_attrs: set (or, with null/"none", clear) volume sync attributes."""
from archipelago.bus.schema import Field
from archipelago.errors import InvalidArgument
from archipelago.names import validate_name

from ..models import VolumeAttr
from . import get_volume_attrs
from .attrs import volume_attr

FIELDS = {"volume": Field(str, check=validate_name), "attrs": Field(dict)}


def handle(ctx, f):
    if not f["attrs"]:
        raise InvalidArgument("set_volume_attrs: no attributes given")
    s, name = ctx.session, f["volume"]
    for key, value in f["attrs"].items():
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
