"""Object stores: the backends behind the blocker peers (filed, radosd, memory)."""
from .base import Lease, ObjectStore, StoreInfo

__all__ = ["Lease", "ObjectStore", "StoreInfo"]
