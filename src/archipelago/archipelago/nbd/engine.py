"""NBD over an in-process VolumeEngine: the backend for one volume, and a provider
that serves exactly one export (the NAS's per-mapping servers, a compute node's
replica servers)."""
from ..errors import NotFound
from .backend import Backend
from .registry import Provider


class EngineBackend(Backend):
    """One volume of a VolumeEngine as an NBD backend (all connections share it)."""

    def __init__(self, engine, name, size=None, description=None):
        self.engine, self.name = engine, name
        self._size = engine.info(name).size if size is None else size
        self.description = description or f"archipelago volume {name}"

    def size(self):
        return self._size

    def pread(self, buf, offset):
        buf[:] = self.engine.read(self.name, offset, len(buf))

    def pwrite(self, buf, offset):
        self.engine.write(self.name, offset, bytes(buf))

    def flush(self):
        self.engine.flush(self.name)

    def extents(self, offset, length):
        """base:allocation: holes where the volume's map has no object (the engine's
        map_read of the range, at most volume.EXTENTS_SPAN of it)."""
        from .volume import EXTENTS_SPAN, allocation
        n = min(length, EXTENTS_SPAN, self._size - offset)
        _epoch, ext = self.engine.map_read(self.name, offset, n)
        return allocation([(e.obj, e.obj_offset, e.length) for e in ext]) or [(n, 0)]

    def can_extents(self):
        return True

    def can_multi_conn(self):
        return True     # one engine behind every connection: a flush covers them all

    def block_size(self):
        return (1, 4096, 32 << 20)


class SingleExport(Provider):
    """A provider with one export, `name`; `open_backend()` makes its backend."""

    def __init__(self, name, open_backend):
        self.name, self._open = name, open_backend

    def open(self, volume, snapshot):
        if volume != self.name or snapshot is not None:
            raise NotFound(f"this server exports only {self.name}")
        return self._open()

    def names(self):
        return [self.name]
