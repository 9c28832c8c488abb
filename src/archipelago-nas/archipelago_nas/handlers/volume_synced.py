"""volume_synced: from a compute node with an img_sync replica — copy progress and
"copy finished" notices, and the answer to a sync (sync/flow.py)."""
from archipelago.bus.schema import Field, validate_host
from archipelago.names import validate_name

from ..sync import flow

FIELDS = {
    "volume": Field(str, check=validate_name),
    "host": Field(str, required=False, check=validate_host),
    "phase": Field(str, required=False),
    "fetched": Field(int, required=False),
    "total": Field(int, required=False),
    "snapshot": Field(str, required=False),
    "bytes": Field(int, required=False),
    "seconds": Field((int, float), required=False),
}


def handle(ctx, f):
    return flow.synced(ctx, f)
