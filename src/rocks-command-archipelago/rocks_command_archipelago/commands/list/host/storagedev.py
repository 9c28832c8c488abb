"""rocks list host storagedev HOST

The volumes attached on compute node HOST: device (or NBD URI), NAS, size, since;
then whether HOST answered, its free space and load."""
from ....command import Command as Base
from ....command import host
from ....output import Output, age, size


class Command(Base):
    ARGS = [("host", host)]

    def run(self, a, p):
        r = self.call(a["host"], "list_dev", p, role="compute")
        rows = [[r["host"], d["volume"], d["nas"], d["device"], size(d["size"]),
                 d["read_only"], age(d["attached"]), _copied(d.get("replica"))]
                for d in r["devices"]]
        footer = (f"{r['host']}: alive (archipelago-vmd {r['version']}), free {size(r['free'])}"
                  f" of {size(r['capacity'])}, load {r['load']}")
        return Output(["host", "volume", "nas", "device", "size", "read-only", "attached",
                       "copied"],
                      rows, f"no volumes attached on {r['host']}", footer)


def _copied(rep):
    """img_sync: the local replica's copy progress (None for a plain mapping)."""
    if not rep:
        return None
    return f"{rep.get('percent', 0):g}%" if rep.get("percent") is not None else None
