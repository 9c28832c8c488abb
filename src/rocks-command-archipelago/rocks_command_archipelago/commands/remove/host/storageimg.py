"""rocks remove host storageimg NAS POOL VOLUME

Delete an unmapped VOLUME from POOL on NAS (space returns through the GC)."""
from ....command import Command as Base
from ....command import host, pool, volume


class Command(Base):
    ARGS = [("nas", host), ("pool", pool), ("volume", volume)]

    def run(self, a, p):
        r = self.call(a["nas"], "delete", p, volume=a["volume"], pool=a["pool"])
        return f"removed {r['volume']} from pool {r['pool']}"
