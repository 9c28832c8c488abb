"""Volumes: maps with O(1) snapshots and clones, dedup, diff, GC and leases.

    from archipelago.volume import VolumeEngine, VolumeInfo, Extent
    eng = VolumeEngine(store, owner="host:peer", lease_ttl=30.0)

Metadata: create(name, size, object_size=4 MiB), clone(source, name, size=None)
(source "VOL@SNAP" or a hashed image), snapshot(name, snap), remove(spec),
resize(name, size), rename(old, new), adopt(name, clone) (the head of a clone of
a snapshot of `name` becomes name's: a sync receive's commit), list(), info(spec)
-> VolumeInfo, hash(spec) -> image name, diff(from_spec, to_spec) -> [(offset,
length)], du(), gc(dry_run=False). Locks: open/close(name), lock(name, wait=False, version=None),
unlock(name, force=False). Data path: map_read(spec, offset, length) and
map_write(name, offset, length) -> (epoch, [Extent]); read/write/flush for
in-process clients. Module map: format (on-store layout), tree (reading maps),
state (copy-on-write updates), mapping (extents, copy-up), engine (facade), locks,
catalog (names), hashing, diff, gc, usage, checks.
"""
from .engine import VolumeEngine
from .mapping import Extent
from .usage import VolumeInfo

__all__ = ["Extent", "VolumeEngine", "VolumeInfo"]
