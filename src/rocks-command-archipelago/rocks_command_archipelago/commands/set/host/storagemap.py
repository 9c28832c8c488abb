"""rocks set host storagemap NAS VOLUME [remotehost=H] [img_sync=B] [frequency=S]
[uploadspeed=R] [downloadspeed=R]

frequency/uploadspeed/downloadspeed set the volume's sync attributes. A new
remotehost (migration) and img_sync come with the sync and migration features."""
from archipelago.errors import InvalidArgument, Unsupported

from ....command import Command as Base
from ....command import boolean, host, volume
from ....output import Output


class Command(Base):
    ARGS = [("nas", host), ("volume", volume)]
    PARAMS = {"remotehost": (None, host), "img_sync": (None, boolean),
              "frequency": (None, None), "uploadspeed": (None, None),
              "downloadspeed": (None, None)}

    def run(self, a, p):
        if p["remotehost"] is not None:
            raise Unsupported("remotehost= (migrating a mapping) is not implemented yet")
        if p["img_sync"] is not None:
            raise Unsupported("img_sync= (local replicas) is not implemented yet")
        attrs = {k: p[k] for k in ("frequency", "uploadspeed", "downloadspeed")
                 if p[k] is not None}
        if not attrs:
            raise InvalidArgument("nothing to set: give frequency=, uploadspeed= or "
                                  "downloadspeed=")
        r = self.call(a["nas"], "set_volume_attrs", p, volume=a["volume"], attrs=attrs)
        return Output(["nas", "volume", *r["attrs"]], [[a["nas"], a["volume"],
                                                        *r["attrs"].values()]])
