"""Build a role's request handler from its configuration (shared by the peer
processes and by the in-process stack of archipelago.client.local)."""
from .blocker import Blocker, make_store
from .mapperd import Mapperd
from .routing import RoutingStore
from .vlmcd import Vlmcd
from .xsegstore import XsegStore


def make_engine(maps, data, owner, lease_ttl):
    """The VolumeEngine over the map and data stores (one RoutingStore, see routing.py)."""
    from ..volume import VolumeEngine
    store = maps if data is None or data is maps else RoutingStore(maps, data)
    return VolumeEngine(store, owner=owner, lease_ttl=lease_ttl)


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
        o = role.opts
        return (Vlmcd(transport, o.mapper_port, o.blocker_port, o.map_cache_ttl,
                      retry_for=o.retry_for), lambda: None)
    raise ValueError(f"unknown role type {role.type}")
