"""list: every volume of this NAS with its mapping state (rocks list host storagemap)."""
from sqlalchemy import select

from ..models import Mapping, Volume
from ..sync import flow
from .common import mapping_dict

FIELDS = {}


def handle(ctx, f):
    s = ctx.session
    maps = {m.volume: m for m in s.scalars(select(Mapping))}
    rows = [mapping_dict(v, maps.get(v.name)) for v in s.scalars(select(Volume).order_by(
        Volume.name))]
    return {"nas": ctx.node.name, "mappings": flow.annotate(s, rows)}
