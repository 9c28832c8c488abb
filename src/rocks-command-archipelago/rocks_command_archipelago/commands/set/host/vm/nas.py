"""rocks set host vm nas VM [VM...] nas=NAS [pool=POOL]

Choose the NAS (and pool) that serves these VMs' disks; nas=none forgets them.
Without pool=, the first pool of the NAS attribute img_pools is used."""
from archipelago.errors import InvalidArgument

from .....command import Command as Base
from .....command import host, pool
from .....models import VmNas, open_db


class Command(Base):
    ARGS = [("vm", host)]
    OPTARGS = [(f"vm{i}", host) for i in range(2, 65)]
    PARAMS = {"nas": (None, None), "pool": (None, pool)}

    def run(self, a, p):
        vms = [v for v in a.values() if v]
        if not p["nas"]:
            raise InvalidArgument("nas= is required (nas=none forgets the assignment)")
        forget = p["nas"].lower() == "none"
        nas = None if forget else host(p["nas"])
        chosen = p["pool"]
        if not forget and chosen is None:
            pools = self.call(nas, "get_attrs", p)["attrs"].get("img_pools", "")
            names = [x.strip() for x in pools.split(",") if x.strip()]
            if not names:
                raise InvalidArgument(f"give pool=, or set the img_pools attribute of {nas}")
            chosen = pool(names[0])
        with open_db(self.client.cfg).scope() as s:
            for vm in vms:
                row = s.get(VmNas, vm)
                if forget:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(VmNas(vm=vm, nas=nas, pool=chosen))
                else:
                    row.nas, row.pool = nas, chosen
        return f"{', '.join(vms)}: {'no NAS' if forget else f'{nas} pool {chosen}'}"
