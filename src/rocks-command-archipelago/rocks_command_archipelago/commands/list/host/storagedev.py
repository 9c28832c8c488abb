"""rocks list host storagedev HOST

The volumes attached on compute node HOST: device (or NBD URI), NAS, size, since;
for an img_sync replica also how much of it is local ("copied"), the bytes read from
the NAS and those skipped as holes the NAS never wrote, and the snapshot of a sync
to the NAS in progress; then whether HOST answered, its free space and load."""
from ....command import Command as Base
from ....command import host
from ....output import Output, age, size


class Command(Base):
    ARGS = [("host", host)]

    def run(self, a, p):
        r = self.call(a["host"], "list_dev", p, role="compute")
        rows = [[r["host"], d["volume"], d["nas"], d["device"], size(d["size"]),
                 d["read_only"], age(d["attached"]), *_replica(d.get("replica"))]
                for d in r["devices"]]
        footer = (f"{r['host']}: alive (archipelago-vmd {r['version']}), free {size(r['free'])}"
                  f" of {size(r['capacity'])}, load {r['load']}")
        return Output(["host", "volume", "nas", "device", "size", "read-only", "attached",
                       "copied", "read", "skipped", "syncing"],
                      rows, f"no volumes attached on {r['host']}", footer)


def _replica(rep):
    """img_sync: the local replica's copy progress, bytes read from the NAS and
    skipped as its holes, the snapshot being synced (all None for a plain mapping)."""
    if not rep:
        return None, None, None, None
    copied = f"{rep['percent']:g}%" if rep.get("percent") is not None else None
    syncing = rep.get("syncing")
    return (copied, size(rep.get("read")), size(rep.get("skipped")),
            syncing.get("snapshot") if syncing else None)
