"""Images for MemoryVolumeService (unit tests): block hashes stand in for content
objects, so dedup shows in `added` as it does on the engine."""
import hashlib

from archipelago.errors import Busy, Exists, NotFound

from .base import VolumeInfo
from .images import ImageService, check_adopt

BLOCK = 4 << 20


class MemoryImages(ImageService):
    """Mixed into MemoryVolumeService (uses self.volumes, self.exports, self.calls)."""

    def _img(self):
        if not hasattr(self, "images"):
            self.images = {}       # (pool, name) -> {"size", "blocks": {hash: bytes}}
            self.contents = {}     # pool -> {hash: stored bytes}
            self.origins = {}      # (pool, volume) -> image
        return self.images

    def import_image(self, pool, name, path, size, progress=None):
        images = self._img()
        self.calls.append(("import_image", pool, name, path, size))
        if (pool, name) in images or (pool, name) in self.volumes:
            raise Exists(f"volume or image {name} already exists")
        blocks, stored, added = {}, 0, 0
        store = self.contents.setdefault(pool, {})
        with open(path, "rb") as f:
            for off in range(0, size, BLOCK):
                data = f.read(min(BLOCK, size - off)).rstrip(b"\0")
                if progress:
                    progress(min(off + BLOCK, size), size)
                if not data:
                    continue
                h = hashlib.sha256(data).hexdigest()
                if h not in blocks:
                    stored += len(data)
                    if h not in store:
                        store[h] = len(data)
                        added += len(data)
                blocks[h] = data
        vsize = max(512, -(-size // 512) * 512)
        images[(pool, name)] = {"size": vsize, "blocks": blocks}
        return {"size": vsize, "stored": stored, "added": added, "objects": len(blocks)}

    def remove_image(self, pool, name):
        images = self._img()
        self.calls.append(("remove_image", pool, name))
        if images.pop((pool, name), None) is None:
            raise NotFound(f"image {name} does not exist in pool {pool}")
        return sorted(v for (p, v), i in self.origins.items()
                      if p == pool and i == name and (p, v) in self.volumes)

    def clone_image(self, pool, image, name, size):
        images = self._img()
        self.calls.append(("clone_image", pool, image, name, size))
        if (pool, name) in self.volumes:
            check_adopt(name, image, self.origins.get((pool, name)),
                        self.volumes[(pool, name)], size)
            return VolumeInfo(pool, name, self.volumes[(pool, name)], False,
                              self.exports.get((pool, name)))
        if (pool, image) not in images:
            raise NotFound(f"image {image} does not exist in pool {pool}")
        if (pool, name) in images:
            raise Busy(f"{name} is an image")
        self.volumes[(pool, name)] = size
        self.origins[(pool, name)] = image
        return VolumeInfo(pool, name, size, True)
