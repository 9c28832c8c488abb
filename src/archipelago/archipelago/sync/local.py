"""Sync over a VolumeEngine in this process (the NAS daemon's engine), without peers.

`sync.send`/`sync.receive` take a client: `archipelago.client.Client` (a node's
peers) or this adapter, which offers the same calls on an engine the daemon
already holds (one engine per store: its leases are the daemon's).

    from archipelago.sync.local import EngineClient
    sync.receive(EngineClient(engine), "vm1", rfile, state_dir=DIR)
"""


class EngineVolume:
    def __init__(self, eng, spec, readonly):
        info = eng.info(spec, usage=False)
        self.eng, self.name = eng, spec
        self.size, self.object_size = info.size, info.object_size
        self.readonly = readonly or "@" in spec or info.read_only

    def readinto(self, buf, offset):
        buf = memoryview(buf).cast("B")
        buf[:] = self.eng.read(self.name, offset, len(buf))
        return len(buf)

    def pread(self, length, offset):
        return self.eng.read(self.name, offset, length)

    def pwrite(self, data, offset, fua=False):
        return self.eng.write(self.name, offset, bytes(data), fua=fua)

    def prepare(self, ranges, whole=False):
        if ranges:
            self.eng.map_write_batch(self.name, ranges, whole)

    def flush(self):
        self.eng.flush(self.name)

    def close(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EngineClient:
    """The calls of archipelago.client.Client that archipelago.sync uses."""

    def __init__(self, engine):
        self.eng = engine

    def info(self, spec, usage=True):
        return self.eng.info(spec, usage=usage).to_json()

    def diff(self, from_spec, to_spec):
        return [tuple(r) for r in self.eng.diff(from_spec, to_spec)]

    def map_read(self, spec, offset, length):
        epoch, extents = self.eng.map_read(spec, offset, length)
        return {"epoch": epoch,
                "extents": [[e.obj, e.obj_offset, e.length] for e in extents]}

    def list(self):
        return [i.name for i in self.eng.list()]

    def create(self, name, size, object_size=None):
        self.eng.create(name, size, **({"object_size": object_size} if object_size else {}))

    def clone(self, source, name, size=None):
        self.eng.clone(source, name, size)

    def snapshot(self, name, snap, guid=None):
        self.eng.snapshot(name, snap, **({"guid": guid} if guid else {}))

    def remove(self, spec):
        self.eng.remove(spec)

    def resize(self, name, size):
        self.eng.resize(name, size)

    def rename(self, old, new):
        self.eng.rename(old, new)

    def adopt(self, name, source):
        self.eng.adopt(name, source)

    def volume(self, spec, readonly=False):
        return EngineVolume(self.eng, spec, readonly)
