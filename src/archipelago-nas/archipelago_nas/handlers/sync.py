"""sync: sync an img_sync volume back to the NAS now (instead of at its next period)."""
from archipelago.bus.schema import Field
from archipelago.errors import Busy, InvalidArgument
from archipelago.names import validate_name

from ..models import Mapping
from ..states import MAPPED_LOCAL, SYNCING_TO_HOST
from ..sync import flow

FIELDS = {"volume": Field(str, check=validate_name)}


def handle(ctx, f):
    s, name = ctx.session, f["volume"]
    m = s.get(Mapping, name)
    if m is None or not m.sync:
        raise InvalidArgument(f"volume {name} is not mapped with img_sync")
    job = flow.job_row(s, name)
    if m.state not in (MAPPED_LOCAL, SYNCING_TO_HOST) or job.request_id is not None:
        raise Busy(f"volume {name} is {m.state}"
                   f"{' with a sync in flight' if job.request_id else ''}; retry later")
    flow.start_sync(ctx, m, job, kind="periodic")
    return {"volume": name, "remotehost": m.remotehost, "state": m.state}
