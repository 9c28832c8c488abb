"""The NAS's periodic work: roll back maps/unmaps whose compute node did not answer
in time, remember heartbeats, and recovery of in-flight work at start."""
import logging
import time

from sqlalchemy import select

from archipelago.errors import Timeout

from .handlers.common import finish
from .models import Mapping, Peer, Volume
from .states import IN_PROGRESS, MAPPED, MAPPING, UNMAPPED, UNMAPPING, transition

log = logging.getLogger(__name__)


def sweep(ctx):
    """Time out mappings whose compute node never answered: nothing stays locked."""
    now = time.time()
    q = select(Mapping).where(Mapping.state.in_([MAPPING, UNMAPPING]),
                              Mapping.deadline < now)
    for m in ctx.session.scalars(q):
        expire(ctx, m)


def expire(ctx, m):
    nas, host = ctx.node, m.remotehost
    err = Timeout(f"compute node {host} did not answer within {nas.map_timeout}s")
    if m.state == MAPPING:
        vol = ctx.session.get(Volume, m.volume)
        nas.volumes.unexport(vol.pool, m.volume)
        nas.undo_attach(host, m.volume)        # in case it attaches late
        transition(ctx.session, m, UNMAPPED, f"rolled back: {err}")
        finish(ctx, m, "map", error=err)
        m.remotehost = m.uri = m.device = None
    else:
        transition(ctx.session, m, MAPPED, f"unmap abandoned: {err}; still mapped")
        finish(ctx, m, "unmap", error=Timeout(f"{err}; volume {m.volume} is still mapped "
                                              "there, retry the unmap"))


def recover(ctx):
    """At start: work in progress keeps waiting for its callback (the queue is durable)
    until its deadline; then sweep() rolls it back. Nothing is left without one."""
    rows = list(ctx.session.scalars(select(Mapping).where(Mapping.state.in_(IN_PROGRESS))))
    for m in rows:
        if m.deadline is None:
            m.deadline = time.time()
        log.info("volume %s was %s on %s at stop; waiting for it until its deadline",
                 m.volume, m.state, m.remotehost)
    sweep(ctx)


def remember(ctx, hb):
    """Store one heartbeat (name, role, version, capacity, free, load)."""
    try:
        name = str(hb["name"])[:63]
        row = ctx.session.get(Peer, name) or Peer(name=name)
        row.role, row.version = str(hb.get("role", "?"))[:16], str(hb.get("version", "?"))[:32]
        row.capacity, row.free = int(hb.get("capacity") or 0), int(hb.get("free") or 0)
        row.load, row.interval = float(hb.get("load") or 0), float(hb.get("interval") or 5)
        row.last_seen = time.time()
        ctx.session.add(row)
    except (KeyError, TypeError, ValueError) as e:
        log.warning("ignoring malformed heartbeat %r: %s", hb, e)
