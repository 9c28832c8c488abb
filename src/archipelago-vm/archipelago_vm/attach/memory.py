"""MemoryAttacher: the in-memory twin of Attacher (unit tests)."""
from archipelago.errors import Busy

from .base import Attacher


class MemoryAttacher(Attacher):
    def __init__(self):
        self.devices = {}        # device -> uri
        self.in_use = set()      # devices a test pretends are open
        self.fail_next = None    # an exception the next attach raises
        self._n = 0

    def attach(self, uri, read_only=False):
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        for dev, u in self.devices.items():
            if u == uri:
                return dev
        dev = f"memory:{self._n}"
        self._n += 1
        self.devices[dev] = uri
        return dev

    def detach(self, device, force=False):
        if device in self.in_use and not force:
            raise Busy(f"device {device} is in use")
        self.devices.pop(device, None)
        self.in_use.discard(device)

    def list(self):
        return [{"device": d, "uri": u} for d, u in sorted(self.devices.items())]
