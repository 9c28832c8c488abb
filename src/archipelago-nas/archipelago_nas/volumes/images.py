"""The image part of VolumeService (rocks add/list/remove host storageimg, map image=).

`ImageService` is the interface (a service without images answers Unsupported);
`EngineImages` implements it on EngineVolumeService's per-pool VolumeEngines with
archipelago.volume.images (hashed, read-only images; clones are O(1)).
"""
from archipelago.errors import Exists, InvalidArgument, NotFound, Unsupported
from archipelago.units import format_size

from .base import VolumeInfo


class ImageService:
    def import_image(self, pool, name, path, size, progress=None):
        """Import `size` bytes of the raw file `path` as read-only image `name`.
        Returns {size, stored, added, objects}; progress(done, total) as it goes."""
        raise Unsupported("this NAS's volume service has no images")

    def remove_image(self, pool, name):
        """Remove image `name`; its clones stay intact. Returns the clones' names."""
        raise Unsupported("this NAS's volume service has no images")

    def clone_image(self, pool, image, name, size):
        """Volume `name` of `size` bytes as a clone of `image` (O(1)), or the existing
        clone of that image (VolumeInfo.created False). Exists if `name` is another
        volume."""
        raise Unsupported("this NAS's volume service has no images")


def check_adopt(name, image, origin, have, size):
    if origin != image:
        raise Exists(f"volume {name} already exists and is not a clone of image {image}; "
                     "map it without image= or choose another name")
    if have < size:
        raise InvalidArgument(f"volume {name} exists with {format_size(have)}, smaller than "
                              f"the {format_size(size)} asked for")


class EngineImages(ImageService):
    """Mixed into EngineVolumeService (needs self.engine(pool), self._exported_to)."""

    def import_image(self, pool, name, path, size, progress=None):
        from archipelago.volume.images import import_image
        with open(path, "rb") as f:
            info, st = import_image(self.engine(pool), name, f, size, progress=progress)
        return {"size": info.size, **st}

    def remove_image(self, pool, name):
        eng = self.engine(pool)
        if not eng.info(name, usage=False).image:
            raise InvalidArgument(f"{name} is a volume, not an image")
        clones = sorted(n for n, h in eng.catalog.volumes() if h.get("origin") == name)
        eng.remove(name)
        return clones

    def clone_image(self, pool, image, name, size):
        eng = self.engine(pool)
        try:
            have = eng.info(name, usage=False)
        except NotFound:
            src = eng.info(image, usage=False)
            if not src.image:
                raise InvalidArgument(f"{image} is a volume, not an image") from None
            eng.clone(image, name, size)
            return VolumeInfo(pool, name, size, True)
        check_adopt(name, image, have.origin, have.size, size)
        return VolumeInfo(pool, name, have.size, False, self._exported_to(pool, name))
