"""sync (from the NAS): send the local replica's changes to the NAS now (a stream
from the last synced snapshot); answered with volume_synced when it committed."""
from archipelago.bus.schema import Field
from archipelago.names import validate_name

from ..replica.handlers import sync_now

REPLY_ACTION = "volume_synced"

FIELDS = {
    "volume": Field(str, check=validate_name),
    "rate": Field(int, required=False),          # uploadspeed, bytes/s
    "token": Field(str, required=False),         # the NAS's resume token, if any
    "downloadspeed": Field(int, required=False),
    "rate_only": Field(bool, required=False, default=False),   # only a new downloadspeed
}


def handle(ctx, f):
    if f["downloadspeed"] is not None:
        ctx.node.replicas.set_rate(f["volume"], f["downloadspeed"] or None)
    if f["rate_only"]:
        return {"volume": f["volume"], "host": ctx.node.name, "phase": "rate"}
    return sync_now(ctx, f)
