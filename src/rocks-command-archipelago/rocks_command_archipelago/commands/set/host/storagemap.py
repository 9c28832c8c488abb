"""rocks set host storagemap NAS VOLUME [remotehost=H] [img_sync=B] [frequency=S]
[uploadspeed=R] [downloadspeed=R]

frequency/uploadspeed/downloadspeed set the volume's sync attributes (frequency
applies from the next period). img_sync= is checked against the live mapping: the
same value is a no-op, switching a live mapping is refused (unmap and map again;
see archipelago_nas/handlers/set_volume_attrs.py). A new remotehost (migration)
comes with the migration feature."""
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
        attrs = {k: p[k] for k in ("frequency", "uploadspeed", "downloadspeed")
                 if p[k] is not None}
        if not attrs and p["img_sync"] is None:
            raise InvalidArgument("nothing to set: give img_sync=, frequency=, uploadspeed= "
                                  "or downloadspeed=")
        extra = {"sync": p["img_sync"]} if p["img_sync"] is not None else {}
        r = self.call(a["nas"], "set_volume_attrs", p, volume=a["volume"], attrs=attrs,
                      **extra)
        return Output(["nas", "volume", *r["attrs"]], [[a["nas"], a["volume"],
                                                        *r["attrs"].values()]])
