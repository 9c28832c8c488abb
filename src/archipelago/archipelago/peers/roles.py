"""Build a role's request handler from its configuration (shared by the peer
processes and by the in-process stack of archipelago.client.local)."""
import logging

from .blocker import Blocker, make_store
from .mapperd import Mapperd
from .vlmcd import Vlmcd
from .xsegstore import XsegStore

log = logging.getLogger(__name__)


def make_engine(maps, data, owner, lease_ttl):
    """The VolumeEngine over a map store and a data store."""
    from ..volume import VolumeEngine
    try:
        return VolumeEngine(maps, data_store=data, owner=owner, lease_ttl=lease_ttl)
    except TypeError:
        # An engine that keeps maps and data in one store: give it the data blocker
        # only if both are the same blocker, else maps win (they need the leases).
        log.warning("VolumeEngine takes one store; maps and data share %r", maps)
        return VolumeEngine(maps, owner=owner, lease_ttl=lease_ttl)


def build(cfg, role, transport, node_name):
    """(handler, closer) for Role `role`; `transport` reaches the node's other roles."""
    if role.is_blocker:
        store = make_store(cfg, role)
        return Blocker(store), store.close
    if role.type == "mapperd":
        o = role.opts
        maps = XsegStore(transport, o.blockerm_port, "blockerm")
        data = XsegStore(transport, o.blockerb_port, "blockerb")
        eng = make_engine(maps, data, f"{node_name}:{role.name}", o.lease_ttl)
        return Mapperd(eng), getattr(eng, "shutdown", lambda: None)
    if role.type == "vlmcd":
        return Vlmcd(transport, role.opts.mapper_port, role.opts.blocker_port), lambda: None
    raise ValueError(f"unknown role type {role.type}")
