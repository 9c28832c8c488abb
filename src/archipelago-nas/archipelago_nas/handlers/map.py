"""map: create (or adopt) the volume, export it to the compute node, ask that node
to attach it. The frontend's answer comes with the node's volume_mapped callback."""
import logging

from archipelago.bus import schema
from archipelago.bus.dispatch import DEFERRED, Failure
from archipelago.bus.errors import Unroutable
from archipelago.bus.schema import Field, validate_host, validate_pool, validate_size
from archipelago.errors import Busy, InvalidArgument, Unavailable
from archipelago.names import validate_name

from .. import images
from ..models import Volume
from ..states import IN_PROGRESS, MAPPED, MAPPING, UNMAPPED, transition
from ..sync import flow
from .common import hold, mapping_dict, mapping_row

log = logging.getLogger(__name__)

FIELDS = {
    "pool": Field(str, check=validate_pool),
    "volume": Field(str, check=validate_name),
    "remotehost": Field(str, check=validate_host),
    "size": Field(int, check=validate_size),
    "remotepool": Field(str, required=False, check=validate_pool),
    "sync": Field(bool, required=False, default=False),
    "image": Field(str, required=False, check=validate_name),
}


def handle(ctx, f):
    if f["sync"]:
        flow.check(ctx)                      # img_sync needs the engine and a receiver
    nas, s, name, host = ctx.node, ctx.session, f["volume"], f["remotehost"]
    vol = s.get(Volume, name)
    if vol is not None and vol.pool != f["pool"]:
        raise InvalidArgument(f"volume {name} is in pool {vol.pool}, not {f['pool']}")
    m = mapping_row(s, name)
    if m.state == MAPPED and m.remotehost == host:
        return mapping_dict(vol, m)          # already there: same answer again
    if m.state in IN_PROGRESS:
        raise Busy(f"volume {name} is busy: {m.state} on {m.remotehost}; retry later")
    if m.state != UNMAPPED:
        raise Busy(f"volume {name} is already {m.state} on {m.remotehost}; unmap it first")
    nas.check_alive(s, host)
    if f["image"]:                           # an O(1) clone of the image (images.py)
        info = images.provision(nas, s, f["pool"], name, f["image"], f["size"])
    else:
        images.not_an_image(s, name)
        info = nas.volumes.ensure(f["pool"], name, f["size"])
    if vol is None:
        vol = Volume(name=name, pool=f["pool"], size=info.size)
        s.add(vol)
    try:
        uri = nas.volumes.export(f["pool"], name, host)
        extra = flow.prepare_map(ctx, f["pool"], name, host) if f["sync"] else {}  # img_sync
    except Exception:
        _undo_provision(nas, info)           # the session rolls back our rows; not the store
        raise
    m.remotehost, m.remotepool, m.sync, m.uri, m.device = (host, f["remotepool"], f["sync"],
                                                           uri, None)
    hold(m, ctx, nas.map_timeout)
    transition(s, m, MAPPING, f"map to {host} requested")
    msg = schema.request("map", m.request_id, volume=name, uri=uri, size=info.size,
                         nas=nas.name, read_only=False, **extra)
    try:
        ctx.bus.publish(host, msg, reply_to=nas.name, correlation_id=m.request_id,
                        expiration=nas.map_timeout)
    except Unroutable:
        return _rollback(ctx, m, info, host)
    return DEFERRED


def _undo_provision(nas, info):
    """Take back the export and a volume this request created (not an adopted one)."""
    nas.volumes.unexport(info.pool, info.name)
    if info.created:
        nas.volumes.remove(info.pool, info.name)


def _rollback(ctx, m, info, host):
    nas = ctx.node
    _undo_provision(nas, info)
    transition(ctx.session, m, UNMAPPED, f"compute node {host} is unavailable (unroutable)")
    m.remotehost = m.uri = m.request_id = m.reply_to = m.correlation_id = m.deadline = None
    if info.created:
        ctx.session.flush()
        ctx.session.delete(m)
        ctx.session.delete(ctx.session.get(Volume, info.name))
    return Failure(Unavailable(f"compute node {host} is unavailable: no queue for it on the "
                               "broker (is archipelago-vmd running there?)"))
