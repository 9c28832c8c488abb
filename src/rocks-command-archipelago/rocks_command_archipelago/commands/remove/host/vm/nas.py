"""rocks remove host vm nas VM [VM...]

Forget which NAS serves these VMs' disks."""
from .....command import Command as Base
from .....command import host
from .....models import VmNas, open_db


class Command(Base):
    ARGS = [("vm", host)]
    OPTARGS = [(f"vm{i}", host) for i in range(2, 65)]

    def run(self, a, p):
        vms = [v for v in a.values() if v]
        with open_db(self.client.cfg).scope() as s:
            for vm in vms:
                row = s.get(VmNas, vm)
                if row is not None:
                    s.delete(row)
        return f"removed the NAS of {', '.join(vms)}"
