"""add_image: import a raw or qcow2 file on this NAS as a hashed, read-only image.

Validates the names and the source (exists, readable, raw/qcow2, a qcow2 passes
`qemu-img check`), records the image as `importing` and starts the import job
(archipelago_nas.images); the reply comes at once with the image's row. Asking
again for an image that is importing or ready from the same source answers its row
(idempotent); an image whose import failed is imported again.
"""
import os

from archipelago.bus.schema import Field, validate_pool
from archipelago.errors import Busy, Exists
from archipelago.names import validate_name

from .. import imagefile
from ..images import ERROR, IMPORTING, image_dict
from ..models import Image, Volume

FIELDS = {
    "pool": Field(str, check=validate_pool),
    "image": Field(str, check=validate_name),
    "source": Field(str, check=imagefile.validate_source),
}


def handle(ctx, f):
    nas, s, pool, name = ctx.node, ctx.session, f["pool"], f["image"]
    if s.get(Volume, name) is not None:
        raise Exists(f"{name} is a volume on this NAS; choose another image name")
    row = s.get(Image, name)
    if row is not None and row.state != ERROR:
        if row.pool == pool and row.source in (f["source"], os.path.realpath(f["source"])):
            return image_dict(row)                 # importing or ready: the same answer
        raise Exists(f"image {name} already exists in pool {row.pool} (from {row.source}); "
                     "remove it first or choose another name")
    if row is not None and nas.importer.busy(name):
        raise Busy(f"image {name}: its failed import is still cleaning up; retry")
    if nas.volumes.exists(pool, name):
        if row is None:
            raise Exists(f"pool {pool} already has a volume or image named {name}")
        nas.volumes.remove_image(row.pool, name)   # what a failed import left behind
    src = imagefile.probe(f["source"], nas.image_dirs)
    if row is not None:
        s.delete(row)
        s.flush()
    row = Image(name=name, pool=pool, source=src.path, format=src.format, size=src.size,
                state=IMPORTING, step="queued", done=0)
    s.add(row)
    s.commit()                 # the job (another thread) must see the row
    nas.importer.submit(pool, name, src)
    return image_dict(row)
