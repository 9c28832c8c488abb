"""rocks list host storagemap NAS

Every volume on NAS with its mapping: state, compute node, device, since when."""
from ....command import Command as Base
from ....command import host
from ....output import Output, age, size


class Command(Base):
    ARGS = [("nas", host)]

    def run(self, a, p):
        r = self.call(a["nas"], "list", p)
        rows = [[a["nas"], m["volume"], m["pool"], size(m["size"]), m["remotehost"],
                 m["remotepool"], m["state"], m["device"], age(m["since"]), m["sync"],
                 m["uri"]]
                for m in r["mappings"]]
        return Output(["nas", "volume", "pool", "size", "remotehost", "remotepool", "state",
                       "device", "since", "sync", "uri"], rows, "no volumes")
