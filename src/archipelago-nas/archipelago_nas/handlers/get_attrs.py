"""get_attrs: the NAS's global attributes."""
from sqlalchemy import select

from ..models import NasAttr

FIELDS = {}


def handle(ctx, f):
    rows = ctx.session.scalars(select(NasAttr).order_by(NasAttr.attr))
    return {"nas": ctx.node.name, "attrs": {r.attr: r.value for r in rows}}
