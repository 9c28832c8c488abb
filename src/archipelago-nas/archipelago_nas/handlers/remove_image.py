"""remove_image: remove an image (rocks remove host storageimg NAS POOL NAME).

Clones of the image stay intact (DESIGN: removing a snapshot with live clones keeps
the clones): they share its content objects, which GC frees only once no map
references them. The reply names the clones kept. An image still importing is
refused. A NAME that is a volume, not an image, is deleted as a volume (`delete`),
as img-storage's `rocks remove host storageimg` does.
"""
from archipelago.bus.schema import Field, validate_pool
from archipelago.errors import Busy, InvalidArgument, NotFound
from archipelago.names import validate_name

from ..images import IMPORTING
from ..models import Image
from . import delete

FIELDS = {
    "pool": Field(str, check=validate_pool),
    "image": Field(str, check=validate_name),
}


def handle(ctx, f):
    nas, s, pool, name = ctx.node, ctx.session, f["pool"], f["image"]
    row = s.get(Image, name)
    if row is None:
        r = delete.handle(ctx, {"volume": name, "pool": pool})
        return {**r, "image": None, "clones": []}
    if row.pool != pool:
        raise InvalidArgument(f"image {name} is in pool {row.pool}, not {pool}")
    if row.state == IMPORTING or nas.importer.busy(name):
        raise Busy(f"image {name} is still importing; wait for it, then remove it")
    try:
        clones = nas.volumes.remove_image(pool, name)
    except NotFound:
        clones = []                   # a failed import left nothing in the pool
    s.delete(row)
    return {"image": name, "volume": name, "pool": pool, "clones": clones}
