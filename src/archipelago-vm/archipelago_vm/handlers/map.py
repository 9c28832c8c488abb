"""map (from the NAS): attach the volume's NBD export; answer volume_mapped."""
import logging

from archipelago.bus.schema import Field, validate_host, validate_size
from archipelago.errors import Busy
from archipelago.names import validate_name

from ..models import Device
from ..replica.handlers import map_local

log = logging.getLogger(__name__)
REPLY_ACTION = "volume_mapped"

FIELDS = {
    "volume": Field(str, check=validate_name),
    "uri": Field(str),
    "nas": Field(str, check=validate_host),
    "size": Field(int, required=False, check=validate_size),
    "read_only": Field(bool, required=False, default=False),
    # img_sync: serve a local replica filled from `uri` (replica/handlers.py)
    "sync": Field(bool, required=False, default=False),
    "base": Field(dict, required=False),
    "sync_dest": Field(str, required=False),
    "downloadspeed": Field(int, required=False),
}


def handle(ctx, f):
    if f["sync"]:
        return map_local(ctx, f)
    node, s, name = ctx.node, ctx.session, f["volume"]
    dev = s.get(Device, name)
    if dev is not None:
        if dev.uri != f["uri"]:
            raise Busy(f"volume {name} is already attached here from {dev.uri}")
        return _reply(node, dev)
    device = node.attacher.attach(f["uri"], f["read_only"])
    dev = Device(volume=name, nas=f["nas"], uri=f["uri"], device=device, size=f["size"],
                 read_only=f["read_only"])
    s.add(dev)
    log.info("attached %s from %s as %s", name, f["nas"], device)
    return _reply(node, dev)


def _reply(node, dev):
    return {"volume": dev.volume, "device": dev.device, "uri": dev.uri, "host": node.name}
