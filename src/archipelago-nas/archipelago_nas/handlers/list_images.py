"""list_images: the images of this NAS (all, one pool, or one image) with their import
state, size and stored bytes."""
from sqlalchemy import select

from archipelago.bus.schema import Field, validate_pool
from archipelago.names import validate_name

from ..images import image_dict
from ..models import Image

FIELDS = {
    "pool": Field(str, required=False, check=validate_pool),
    "image": Field(str, required=False, check=validate_name),
}


def handle(ctx, f):
    q = select(Image).order_by(Image.pool, Image.name)
    if f["pool"]:
        q = q.where(Image.pool == f["pool"])
    if f["image"]:
        q = q.where(Image.name == f["image"])
    return {"images": [image_dict(r) for r in ctx.session.scalars(q)]}
