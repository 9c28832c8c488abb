"""rocks remove host storagemap NAS VOLUME [force=B]

Detach VOLUME from the compute node it is mapped to and stop its export. A device
still in use fails clearly unless force=yes."""
from ....command import Command as Base
from ....command import boolean, host, volume


class Command(Base):
    ARGS = [("nas", host), ("volume", volume)]
    PARAMS = {"force": (False, boolean)}

    def run(self, a, p):
        r = self.call(a["nas"], "unmap", p, volume=a["volume"], force=p["force"])
        return f"unmapped {r['volume']} from {r['remotehost']}"
