"""volume_mapped: a compute node's answer to map; completes (or rolls back) the
mapping and answers the frontend that asked for it."""
import logging

from archipelago.bus import schema
from archipelago.bus.schema import Field, validate_host
from archipelago.errors import ArchipelagoError
from archipelago.names import validate_name

from ..models import Mapping, Volume
from ..states import MAPPED, MAPPING, UNMAPPED, transition
from ..sync import flow
from .common import finish, mapping_dict

log = logging.getLogger(__name__)

FIELDS = {
    "volume": Field(str, check=validate_name),
    "device": Field(str, required=False),
    "uri": Field(str, required=False),
    "host": Field(str, required=False, check=validate_host),
    "replica": Field(dict, required=False),     # img_sync: copy progress
}


def handle(ctx, f):
    s, name, rid = ctx.session, f["volume"], ctx.msg["request_id"]
    ok = ctx.msg.get("status") == schema.SUCCESS
    m = s.get(Mapping, name)
    if m is None or m.state != MAPPING or m.request_id != rid:
        log.warning("late volume_mapped for %s from %s (now %s); ignored", name, f["host"],
                    m.state if m else "unknown")
        if ok and f["host"] and (m is None or m.remotehost != f["host"] or m.state != MAPPED):
            ctx.node.undo_attach(f["host"], name)
        return {}
    if ok:
        m.device = f["device"]
        if m.sync:
            flow.mapped(ctx, m, f)
        else:
            transition(s, m, MAPPED, f"attached on {m.remotehost} as {f['device']}")
        finish(ctx, m, "map", mapping_dict(s.get(Volume, name), m))
        return {}
    error = ctx.msg.get("error") or "unknown error"
    ctx.node.volumes.unexport(s.get(Volume, name).pool, name)
    transition(s, m, UNMAPPED, f"attach failed on {m.remotehost}: {error}")
    err = schema.raise_for_error
    try:
        err(ctx.msg)
    except ArchipelagoError as e:
        e.args = (f"compute node {m.remotehost}: {e}",)
        finish(ctx, m, "map", error=e)
    m.remotehost = m.uri = m.device = None
    return {}
