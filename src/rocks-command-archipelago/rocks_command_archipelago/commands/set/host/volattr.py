"""rocks set host volattr NAS VOLUME ATTR VALUE

Set one sync attribute of VOLUME (frequency seconds, nextsync UNIX time,
uploadspeed/downloadspeed like 100M/s); VALUE "none" clears it."""
from ....command import Command as Base
from ....command import host, volume


class Command(Base):
    ARGS = [("nas", host), ("volume", volume), ("attr", None), ("value", None)]

    def run(self, a, p):
        value = None if a["value"].lower() == "none" else a["value"]
        r = self.call(a["nas"], "set_volume_attrs", p, volume=a["volume"],
                      attrs={a["attr"]: value})
        return f"{a['nas']}: {a['volume']} {a['attr']} = {r['attrs'][a['attr']]}"
