"""rocks add host storagemap NAS POOL VOLUME REMOTEHOST SIZE [remotepool=P]
[img_sync=B] [image=IMAGE]

Create VOLUME in POOL on NAS if it does not exist (or adopt it), export it to
REMOTEHOST and attach it there. Prints the device (or NBD URI) the VM uses.
SIZE: 10G, 512M, 1T; a bare number is GiB. image=IMAGE (see `rocks add host
storageimg`): a new VOLUME is an O(1) clone of that image (no data is copied; the
image never changes); SIZE must be at least the image's size."""
from ....command import Command as Base
from ....command import boolean, gib_size, host, pool, volume
from ....output import Output


class Command(Base):
    ARGS = [("nas", host), ("pool", pool), ("volume", volume), ("remotehost", host),
            ("size", gib_size)]
    PARAMS = {"remotepool": (None, pool), "img_sync": (False, boolean), "image": (None, volume)}

    def run(self, a, p):
        r = self.call(a["nas"], "map", p, pool=a["pool"], volume=a["volume"],
                      remotehost=a["remotehost"], size=a["size"], remotepool=p["remotepool"],
                      sync=p["img_sync"], image=p["image"])
        return Output(["nas", "volume", "remotehost", "device", "uri"],
                      [[a["nas"], r["volume"], r["remotehost"], r["device"], r["uri"]]])
