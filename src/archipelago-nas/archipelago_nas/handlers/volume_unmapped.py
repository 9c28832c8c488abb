"""volume_unmapped: a compute node's answer to unmap; stops the export and answers
the frontend, or puts the mapping back when the device could not be detached."""
import logging

from archipelago.bus import schema
from archipelago.bus.schema import Field, validate_host
from archipelago.errors import ArchipelagoError
from archipelago.names import validate_name

from ..models import Mapping, Volume
from ..states import MAPPED, UNMAPPED, UNMAPPING, transition
from ..sync import flow
from .common import finish

log = logging.getLogger(__name__)

FIELDS = {
    "volume": Field(str, check=validate_name),
    "host": Field(str, required=False, check=validate_host),
    "device": Field(str, required=False),
    "snapshot": Field(str, required=False),     # img_sync: the final sync's snapshot
    "bytes": Field(int, required=False),
    "seconds": Field((int, float), required=False),
}


def handle(ctx, f):
    s, name, rid = ctx.session, f["volume"], ctx.msg["request_id"]
    m = s.get(Mapping, name)
    if m is not None and m.sync and m.state != UNMAPPING:
        return flow.unmapped(ctx, f, m)      # img_sync: the final sync's answer
    if m is None or m.state != UNMAPPING or m.request_id != rid:
        log.info("volume_unmapped for %s from %s ignored (now %s)", name, f["host"],
                 m.state if m else "unknown")
        return {}
    host = m.remotehost
    if ctx.msg.get("status") == schema.SUCCESS:
        ctx.node.volumes.unexport(s.get(Volume, name).pool, name)
        transition(s, m, UNMAPPED, f"detached from {host}")
        finish(ctx, m, "unmap", {"volume": name, "remotehost": host})
        m.remotehost = m.remotepool = m.uri = m.device = None
        return {}
    transition(s, m, MAPPED, f"detach failed on {host}: {ctx.msg.get('error')}")
    try:
        schema.raise_for_error(ctx.msg)
    except ArchipelagoError as e:
        e.args = (f"compute node {host}: {e}",)
        finish(ctx, m, "unmap", error=e)
    return {}
