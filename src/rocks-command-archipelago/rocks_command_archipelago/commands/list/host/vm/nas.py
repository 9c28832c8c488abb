"""rocks list host vm nas [VM]

The NAS and pool serving each VM's disk."""
from sqlalchemy import select

from .....command import Command as Base
from .....command import host
from .....models import VmNas, open_db
from .....output import Output


class Command(Base):
    OPTARGS = [("vm", host)]

    def run(self, a, p):
        with open_db(self.client.cfg).scope() as s:
            rows = [[r.vm, r.nas, r.pool] for r in s.scalars(select(VmNas).order_by(VmNas.vm))
                    if a["vm"] in (None, r.vm)]
        return Output(["vm-host", "nas", "pool"], rows, "no VM has a NAS assigned")
