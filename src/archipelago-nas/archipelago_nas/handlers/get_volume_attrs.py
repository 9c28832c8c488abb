"""get_volume_attrs: the sync attributes of one volume (null when not set)."""
from sqlalchemy import select

from archipelago.bus.schema import Field
from archipelago.names import validate_name

from ..models import VolumeAttr
from .attrs import VOLUME_ATTRS

FIELDS = {"volume": Field(str, check=validate_name)}


def handle(ctx, f):
    rows = ctx.session.scalars(select(VolumeAttr).where(VolumeAttr.volume == f["volume"]))
    attrs = dict.fromkeys(VOLUME_ATTRS)
    attrs.update({r.attr: r.value for r in rows})
    return {"volume": f["volume"], "attrs": attrs}
