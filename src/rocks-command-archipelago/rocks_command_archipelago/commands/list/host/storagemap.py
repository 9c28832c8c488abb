"""rocks list host storagemap NAS

Every volume on NAS with its mapping: state, compute node, device, since when; for
img_sync mappings the copy's progress, the kind of a sync in flight (periodic or
final; during the copy the state stays syncing-to-host), the last sync and its bytes
on the wire."""
from ....command import Command as Base
from ....command import host
from ....output import Output, age, size


class Command(Base):
    ARGS = [("nas", host)]

    def run(self, a, p):
        r = self.call(a["nas"], "list", p)
        rows = [[a["nas"], m["volume"], m["pool"], size(m["size"]), m["remotehost"],
                 m["remotepool"], m["state"], m["device"], age(m["since"]), m["sync"],
                 m["uri"], _pct(m.get("copied")), m.get("syncing"),
                 age(m["lastsync"]) if m.get("lastsync")
                 else None, m.get("syncbytes")]
                for m in r["mappings"]]
        return Output(["nas", "volume", "pool", "size", "remotehost", "remotepool", "state",
                       "device", "since", "sync", "uri", "copied", "syncing", "lastsync",
                       "syncbytes"], rows,
                      "no volumes")


def _pct(value):
    """img_sync: how much of the volume the compute node's replica holds."""
    return None if value is None else f"{value:g}%"
