"""rocks list host storagenode NAS

The cluster as NAS hears it on the heartbeat exchange: every node, whether it is
alive, its role, version, capacity, free space and load."""
from ....command import Command as Base
from ....command import host
from ....output import Output, age, size


class Command(Base):
    ARGS = [("nas", host)]

    def run(self, a, p):
        r = self.call(a["nas"], "list_nodes", p)
        rows = [[n["name"], n["role"], n["alive"], n["version"], size(n["capacity"]),
                 size(n["free"]), n["load"], age(n["last_seen"])] for n in r["nodes"]]
        return Output(["host", "role", "alive", "version", "capacity", "free", "load",
                       "last-seen"], rows, "no heartbeats heard yet")
