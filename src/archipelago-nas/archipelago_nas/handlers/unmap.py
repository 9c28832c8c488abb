"""unmap: ask the compute node to detach, then stop the export (volume_unmapped)."""
from archipelago.bus import schema
from archipelago.bus.dispatch import DEFERRED, Failure
from archipelago.bus.errors import Unroutable
from archipelago.bus.schema import Field
from archipelago.errors import Busy, InvalidArgument, Unavailable
from archipelago.names import validate_name

from ..models import Mapping
from ..states import ERROR, IN_PROGRESS, MAPPED, UNMAPPED, UNMAPPING, transition
from ..sync import flow
from .common import hold

FIELDS = {
    "volume": Field(str, check=validate_name),
    "force": Field(bool, required=False, default=False),
}


def handle(ctx, f):
    nas, s, name = ctx.node, ctx.session, f["volume"]
    m = s.get(Mapping, name)
    if m is None or m.state == UNMAPPED:
        raise InvalidArgument(f"volume {name} is not mapped")
    if m.sync:
        return flow.unmap(ctx, f, m)         # img_sync: final sync first (sync/flow.py)
    if m.state in IN_PROGRESS:
        raise Busy(f"volume {name} is busy: {m.state} on {m.remotehost}; retry later")
    if m.state not in (MAPPED, ERROR):
        raise Busy(f"volume {name} is {m.state}; it cannot be unmapped now")
    prev, host = m.state, m.remotehost
    hold(m, ctx, nas.map_timeout)
    transition(s, m, UNMAPPING, f"unmap from {host} requested")
    msg = schema.request("unmap", m.request_id, volume=name, force=f["force"])
    try:
        ctx.bus.publish(host, msg, reply_to=nas.name, correlation_id=m.request_id,
                        expiration=nas.map_timeout)
    except Unroutable:
        transition(s, m, prev, f"compute node {host} is unavailable (unroutable)")
        m.request_id = m.reply_to = m.correlation_id = m.deadline = None
        return Failure(Unavailable(
            f"compute node {host} is unavailable; volume {name} stays mapped there. "
            f"`rocks clean host storagemap {nas.name} {name}` forgets the mapping"))
    return DEFERRED
