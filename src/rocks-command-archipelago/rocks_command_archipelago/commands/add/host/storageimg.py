"""rocks add host storageimg NAS POOL IMAGE source=FILE

Import a raw or qcow2 disk image as a hashed, read-only image (needs the volume
engine on the NAS)."""
from ....command import Command as Base
from ....command import host, pool, volume


class Command(Base):
    ARGS = [("nas", host), ("pool", pool), ("image", volume)]
    PARAMS = {"source": (None, None)}

    def run(self, a, p):
        r = self.call(a["nas"], "add_image", p, pool=a["pool"], image=a["image"],
                      source=p["source"])
        return f"imported {r['image']}"
