"""unmap (from the NAS): detach the volume; answer volume_unmapped. A device in use
fails clearly (Busy) unless force."""
import logging

from archipelago.bus.schema import Field
from archipelago.names import validate_name

from ..models import Device
from ..replica.handlers import drop_replica, unmap_local

log = logging.getLogger(__name__)
REPLY_ACTION = "volume_unmapped"

FIELDS = {
    "volume": Field(str, check=validate_name),
    "force": Field(bool, required=False, default=False),
    "sync": Field(bool, required=False, default=False),   # img_sync: final sync first
    "token": Field(str, required=False),
    "rate": Field(int, required=False),
}


def handle(ctx, f):
    if f["sync"]:
        return unmap_local(ctx, f)
    drop_replica(ctx, f)                   # `rocks clean` of an img_sync mapping
    node, s, name = ctx.node, ctx.session, f["volume"]
    dev = s.get(Device, name)
    if dev is None:
        return {"volume": name, "host": node.name, "device": None}   # already gone
    node.attacher.detach(dev.device, force=f["force"])
    s.delete(dev)
    log.info("detached %s (%s)", name, dev.device)
    return {"volume": name, "host": node.name, "device": dev.device}
