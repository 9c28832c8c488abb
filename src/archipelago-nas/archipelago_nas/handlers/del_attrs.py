"""del_attrs: delete NAS global attributes (a list of names; absent ones are fine)."""
from archipelago.bus.schema import Field
from archipelago.errors import InvalidArgument

from ..models import NasAttr
from . import get_attrs
from .attrs import nas_attr

FIELDS = {"attrs": Field(list)}


def handle(ctx, f):
    if not f["attrs"]:
        raise InvalidArgument("del_attrs: no attribute names given")
    for key in f["attrs"]:
        name, _ = nas_attr(key)
        row = ctx.session.get(NasAttr, name)
        if row is not None:
            ctx.session.delete(row)
    ctx.session.flush()
    return get_attrs.handle(ctx, {})
