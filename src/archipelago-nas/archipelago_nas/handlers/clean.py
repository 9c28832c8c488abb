"""clean: the operator's way out of a stuck mapping (rocks clean host storagemap).

Stops the export, tells the compute node (best effort) to force-detach, answers a
waiting requester with an error and leaves the mapping unmapped."""
from archipelago.bus.schema import Field
from archipelago.errors import ArchipelagoError, InvalidArgument
from archipelago.names import validate_name

from ..models import Mapping, Volume
from ..states import UNMAPPED, transition
from ..sync import flow
from .common import finish

FIELDS = {"volume": Field(str, check=validate_name)}


def handle(ctx, f):
    s, name = ctx.session, f["volume"]
    m = s.get(Mapping, name)
    if m is None or m.state == UNMAPPED:
        raise InvalidArgument(f"volume {name} is not mapped; nothing to clean")
    old, host = m.state, m.remotehost
    vol = s.get(Volume, name)
    ctx.node.volumes.unexport(vol.pool, name)
    if host:
        ctx.node.undo_attach(host, name)
    if m.request_id:
        action = "unmap" if old == "unmapping" else "map"
        finish(ctx, m, action, error=ArchipelagoError(
            f"volume {name}: cancelled by `rocks clean host storagemap`"))
    transition(s, m, UNMAPPED, "cleaned by the operator", force=True)
    if m.sync:
        flow.forget(s, name)                 # the NAS copy (last synced state) is master
    m.remotehost = m.remotepool = m.uri = m.device = m.deadline = None
    return {"volume": name, "was": old, "remotehost": host}
