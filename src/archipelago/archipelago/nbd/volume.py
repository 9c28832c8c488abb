"""The volume provider: archipelago volumes (through archipelago.client) as NBD exports.

Export `VOL` is volume VOL, `VOL@SNAP` its snapshot (read-only). All NBD
connections to a volume share one `client.Volume`, so a FLUSH on any of them
drains the node's writes to that volume (what CAN_MULTI_CONN promises).
The node's vlmcd is reached lazily, on the first open, so nbdd can start
before the other peers.
"""
import threading

from ..errors import ArchipelagoError, NotFound, Unavailable
from .backend import Backend
from .registry import Provider


class VolumeBackend(Backend):
    """One open volume or snapshot."""

    def __init__(self, vol):
        self.vol = vol
        self.description = f"archipelago volume {vol.name}"

    def size(self):
        return self.vol.size

    def pread(self, buf, offset):
        self.vol.readinto(buf, offset)

    def pwrite(self, buf, offset):
        self.vol.pwrite(buf, offset)

    def flush(self):
        self.vol.flush()

    def trim(self, offset, length):
        self.vol.trim(offset, length)

    def close(self):
        self.vol.close()

    @property
    def read_only(self):
        return bool(self.vol.readonly)

    def can_trim(self):
        return False           # the engine has no discard yet (Volume.trim keeps data)

    def can_multi_conn(self):
        return True            # one shared Volume: flush covers every connection

    def parallel(self):
        return True            # every request is a round trip to vlmcd over the segment

    def block_size(self):
        return (1, 4096, 32 << 20)


class VolumeProvider(Provider):
    """Opens volumes of the node configured by `conf` (path, or the default lookup)."""

    def __init__(self, conf=None, connect=None):
        self.conf = conf
        self._connect = connect
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                connect = self._connect
                if connect is None:
                    from .. import client as volume_client
                    connect = volume_client.connect
                try:
                    self._client = connect(self.conf)
                except ArchipelagoError:
                    raise
                except Exception as e:
                    raise Unavailable(f"cannot reach this node's vlmcd: {e}") from None
            return self._client

    def open(self, volume, snapshot):
        spec = volume if snapshot is None else f"{volume}@{snapshot}"
        try:
            vol = self.client().volume(spec, readonly=snapshot is not None)
        except NotFound:
            raise
        except ArchipelagoError as e:
            if "not found" in str(e).lower() or "no such" in str(e).lower():
                raise NotFound(str(e)) from None
            raise
        return VolumeBackend(vol)

    def names(self):
        try:
            return [n for n in self.client().list() if isinstance(n, str)]
        except ArchipelagoError:
            return []
