"""Volumes: maps with O(1) snapshots and clones, dedup, diff, GC and leases.

    from archipelago.volume import VolumeEngine, VolumeInfo, Extent
"""
from .engine import VolumeEngine
from .mapping import Extent
from .usage import VolumeInfo

__all__ = ["Extent", "VolumeEngine", "VolumeInfo"]
