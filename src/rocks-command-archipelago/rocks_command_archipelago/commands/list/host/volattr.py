"""rocks list host volattr NAS VOLUME

A volume's sync attributes: frequency, nextsync, uploadspeed, downloadspeed."""
from ....command import Command as Base
from ....command import host, volume
from ....output import Output


class Command(Base):
    ARGS = [("nas", host), ("volume", volume)]

    def run(self, a, p):
        attrs = self.call(a["nas"], "get_volume_attrs", p, volume=a["volume"])["attrs"]
        return Output(["nas", "volume", *attrs], [[a["nas"], a["volume"], *attrs.values()]])
