"""set_attrs: set NAS global attributes ({name: value})."""
from archipelago.bus.schema import Field
from archipelago.errors import InvalidArgument

from ..models import NasAttr
from . import get_attrs
from .attrs import nas_attr

FIELDS = {"attrs": Field(dict)}


def handle(ctx, f):
    if not f["attrs"]:
        raise InvalidArgument("set_attrs: no attributes given")
    for key, value in f["attrs"].items():
        name, value = nas_attr(key, value)
        row = ctx.session.get(NasAttr, name)
        if row is None:
            ctx.session.add(NasAttr(attr=name, value=value))
        else:
            row.value = value
    ctx.session.flush()
    return get_attrs.handle(ctx, {})
