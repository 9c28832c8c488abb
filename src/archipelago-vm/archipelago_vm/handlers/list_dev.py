"""list_dev: the volumes attached on this compute node (rocks list host storagedev)."""
from sqlalchemy import select

from ..models import Device

FIELDS = {}


def handle(ctx, f):
    rows = ctx.session.scalars(select(Device).order_by(Device.volume))
    hb = ctx.node.heartbeat_message()
    return {"host": ctx.node.name, "capacity": hb["capacity"], "free": hb["free"],
            "load": hb["load"], "version": hb["version"], "devices": [
        {"volume": d.volume, "nas": d.nas, "device": d.device, "uri": d.uri, "size": d.size,
         "read_only": d.read_only, "attached": d.attached,
         "replica": ctx.node.replica_progress(d.volume)} for d in rows]}
