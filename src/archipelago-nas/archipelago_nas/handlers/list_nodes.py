"""list_nodes: every node heard on the heartbeat exchange, alive or not."""
import time

from sqlalchemy import select

from ..models import Peer

FIELDS = {}


def handle(ctx, f):
    now, nas = time.time(), ctx.node
    rows = []
    for p in ctx.session.scalars(select(Peer).order_by(Peer.name)):
        rows.append({"name": p.name, "role": p.role, "version": p.version,
                     "capacity": p.capacity, "free": p.free, "load": p.load,
                     "last_seen": p.last_seen, "age": round(now - p.last_seen, 1),
                     "alive": now - p.last_seen <= p.interval * nas.node_timeout})
    return {"nas": nas.name, "nodes": rows}
