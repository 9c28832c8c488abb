"""Local replicas of img_sync volumes (DESIGN §5): copy on read from the NAS
(fetch.py), served over NBD and synced back as streams (service.py)."""
from .service import ReplicaService, SyncFailed

__all__ = ["ReplicaService", "SyncFailed"]
