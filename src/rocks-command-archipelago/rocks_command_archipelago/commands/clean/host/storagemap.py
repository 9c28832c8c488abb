"""rocks clean host storagemap NAS VOLUME

Forget a stuck mapping: stop the export, ask the compute node to force-detach (best
effort) and leave the volume unmapped. For when a compute node died for good."""
from ....command import Command as Base
from ....command import host, volume


class Command(Base):
    ARGS = [("nas", host), ("volume", volume)]

    def run(self, a, p):
        r = self.call(a["nas"], "clean", p, volume=a["volume"])
        where = f" on {r['remotehost']}" if r["remotehost"] else ""
        return f"cleaned {r['volume']} (was {r['was']}{where})"
