"""The whole peer stack in one process over LocalTransport (no segment, no node).

Blockers, mapperd and vlmcd are the same handler objects the peer processes run,
wired by port exactly as the default configuration wires them; only the wire is
missing. Unit tests drive it, and so can tools that work on a store offline.
"""
from ..client import Client
from .blocker import Blocker
from .mapperd import Mapperd
from .transport import LocalTransport
from .vlmcd import Vlmcd
from .xsegstore import XsegStore

BLOCKERB, MAPPERD, BLOCKERM, VLMCD = 1000, 1001, 1002, 500


def local_stack(data_store, map_store=None, engine_factory=None, owner="local:mapperd",
                lease_ttl=30.0):
    """A Client over blockerb(data_store), blockerm(map_store), mapperd, vlmcd.

    engine_factory(maps, data, owner, lease_ttl) builds the engine (default:
    peers.roles.make_engine, the real VolumeEngine)."""
    from .roles import make_engine
    t = LocalTransport()
    t.bind(BLOCKERB, Blocker(data_store))
    t.bind(BLOCKERM, Blocker(map_store if map_store is not None else data_store))
    eng = (engine_factory or make_engine)(XsegStore(t, BLOCKERM), XsegStore(t, BLOCKERB),
                                          owner, lease_ttl)
    t.bind(MAPPERD, Mapperd(eng))
    t.bind(VLMCD, Vlmcd(t, MAPPERD, BLOCKERB))
    return Client(t, VLMCD)
