"""MemoryVolumeService: the in-memory twin of VolumeService (unit tests, demo
without the volume engine). Exports hand out nbd:// URIs that nothing serves."""
from archipelago.errors import Busy, InvalidArgument, NotFound
from archipelago.units import format_size

from .base import VolumeInfo, VolumeService
from .memory_images import MemoryImages


class MemoryVolumeService(MemoryImages, VolumeService):
    def __init__(self, nas_host="localhost", capacity=1 << 40):
        self.nas_host = nas_host
        self.total = capacity
        self.volumes = {}          # (pool, name) -> size
        self.exports = {}          # (pool, name) -> host
        self.calls = []            # (method, args) for tests

    def ensure(self, pool, name, size):
        self.calls.append(("ensure", pool, name, size))
        key = (pool, name)
        if key in self.volumes:
            have = self.volumes[key]
            if have < size:
                raise InvalidArgument(f"volume {name} exists with {format_size(have)}, "
                                      f"smaller than the {format_size(size)} asked for")
            return VolumeInfo(pool, name, have, False, self.exports.get(key))
        self.volumes[key] = size
        return VolumeInfo(pool, name, size, True)

    def remove(self, pool, name):
        self.calls.append(("remove", pool, name))
        key = (pool, name)
        if key not in self.volumes:
            raise NotFound(f"volume {name} does not exist in pool {pool}")
        if key in self.exports:
            raise Busy(f"volume {name} is exported to {self.exports[key]}")
        del self.volumes[key]

    def exists(self, pool, name):
        return (pool, name) in self.volumes

    def export(self, pool, name, host):
        self.calls.append(("export", pool, name, host))
        key = (pool, name)
        if key not in self.volumes:
            raise NotFound(f"volume {name} does not exist in pool {pool}")
        if self.exports.get(key, host) != host:
            raise Busy(f"volume {name} is exported to {self.exports[key]}")
        self.exports[key] = host
        return f"nbd://{self.nas_host}:10809/{name}"

    def unexport(self, pool, name):
        self.calls.append(("unexport", pool, name))
        self.exports.pop((pool, name), None)

    def list(self):
        return [VolumeInfo(p, n, s, False, self.exports.get((p, n)))
                for (p, n), s in sorted(self.volumes.items())]

    def capacity(self):
        return self.total, self.total - sum(self.volumes.values())
