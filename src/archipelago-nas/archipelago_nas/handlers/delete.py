"""delete: remove an unmapped volume from its pool (rocks remove host storageimg)."""
from sqlalchemy import delete as sql_delete

from archipelago.bus.schema import Field, validate_pool
from archipelago.errors import Busy, InvalidArgument
from archipelago.names import validate_name

from ..models import Mapping, VolumeAttr
from ..states import UNMAPPED
from .common import volume_row

FIELDS = {
    "volume": Field(str, check=validate_name),
    "pool": Field(str, required=False, check=validate_pool),
}


def handle(ctx, f):
    s, name = ctx.session, f["volume"]
    vol = volume_row(s, name)
    if f["pool"] and f["pool"] != vol.pool:
        raise InvalidArgument(f"volume {name} is in pool {vol.pool}, not {f['pool']}")
    m = s.get(Mapping, name)
    if m is not None and m.state != UNMAPPED:
        raise Busy(f"volume {name} is {m.state} on {m.remotehost}; unmap it first")
    if ctx.node.volumes.exists(vol.pool, name):
        ctx.node.volumes.remove(vol.pool, name)
    if m is not None:
        s.delete(m)
        s.flush()
    s.execute(sql_delete(VolumeAttr).where(VolumeAttr.volume == name))
    s.delete(vol)
    return {"volume": name, "pool": vol.pool}
