"""sync: sync an img_sync volume back to the NAS now (instead of at its next period)."""
from archipelago.bus.schema import Field
from archipelago.errors import Busy, InvalidArgument
from archipelago.names import validate_name

from ..models import Mapping
from ..states import MAPPED_LOCAL
from ..sync import flow

FIELDS = {"volume": Field(str, check=validate_name)}


def handle(ctx, f):
    s, name = ctx.session, f["volume"]
    m = s.get(Mapping, name)
    if m is None or not m.sync:
        raise InvalidArgument(f"volume {name} is not mapped with img_sync")
    if m.state != MAPPED_LOCAL:
        raise Busy(f"volume {name} is {m.state}; a sync can start once it is mapped-local")
    flow.start_sync(ctx, m, flow.job_row(s, name), kind="periodic")
    return {"volume": name, "remotehost": m.remotehost, "state": m.state}
