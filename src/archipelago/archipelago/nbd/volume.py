"""The volume provider: archipelago volumes (through archipelago.client) as NBD exports.

Export `VOL` is volume VOL, `VOL@SNAP` its snapshot (read-only). All NBD
connections to a volume share one `client.Volume`, so a FLUSH on any of them
drains the node's writes to that volume (what CAN_MULTI_CONN promises).
The node's vlmcd is reached lazily, on the first open, so nbdd can start
before the other peers.
"""
import threading

from ..errors import ArchipelagoError, NotFound, Unavailable
from ..peers.transport import retrying
from . import proto
from .backend import Backend
from .registry import Provider

# Most of a volume one block status asks mapperd about: one MAPR whose reply lists
# the range's extents (a few per object); a client asks again for the rest.
EXTENTS_SPAN = 1 << 30
_HOLE = proto.STATE_HOLE | proto.STATE_ZERO


def allocation(mapping):
    """base:allocation extents [(length, flags)] of a MAPR reply's extents
    [[object|None, object offset, length], ...]: no object (never written, or no
    object anywhere in the chain of snapshots/clones the view resolves) is a hole
    that reads as zeros; an object is data. Neighbours of one kind are merged."""
    out = []
    for obj, _ooff, n in mapping:
        if n <= 0:
            continue
        flags = _HOLE if obj is None else 0
        if out and out[-1][1] == flags:
            out[-1] = (out[-1][0] + n, flags)
        else:
            out.append((n, flags))
    return out


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

    def extents(self, offset, length):
        """Holes where the volume's map has no object (one MAPR through vlmcd for
        the range, at most EXTENTS_SPAN of it)."""
        n = min(length, EXTENTS_SPAN, self.vol.size - offset)
        c = self.vol.client
        r = retrying(c.retry_for, c._call, "map_read_extents", self.vol.name,
                     ranges=[[int(offset), int(n)]])
        return allocation(r["extents"][0]) or [(n, 0)]

    def close(self):
        self.vol.close()

    @property
    def read_only(self):
        return bool(self.vol.readonly)

    def can_trim(self):
        return False           # the engine has no discard yet (Volume.trim keeps data)

    def can_extents(self):
        return True

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
