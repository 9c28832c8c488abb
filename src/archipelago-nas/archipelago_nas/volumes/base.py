"""VolumeService: what the NAS daemon needs from volumes and their NBD exports.

Every method is idempotent (a retried request must not fail because the first try
half-succeeded) and raises archipelago.errors types only.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class VolumeInfo:
    pool: str
    name: str
    size: int                # bytes
    created: bool = False    # True if ensure() created it just now (vs. adopted)
    exported_to: str | None = None


class VolumeService(ABC):
    @abstractmethod
    def ensure(self, pool, name, size):
        """Create volume `name` of `size` bytes in `pool`, or adopt it if it exists.
        Adopting a volume smaller than `size` raises InvalidArgument (no silent
        shrink or grow). Returns a VolumeInfo."""

    @abstractmethod
    def remove(self, pool, name):
        """Delete the volume (NotFound if absent; Busy if exported)."""

    @abstractmethod
    def exists(self, pool, name):
        """True if the volume exists."""

    @abstractmethod
    def export(self, pool, name, host):
        """Export the volume to `host` only; returns an NBD URI that host can reach.
        Exporting again to the same host returns the same URI."""

    @abstractmethod
    def unexport(self, pool, name):
        """Stop exporting the volume (no error if it is not exported)."""

    @abstractmethod
    def list(self):
        """Every volume as VolumeInfo."""

    def capacity(self):
        """(total, free) bytes of the storage behind the volumes, or None."""
        return None

    def close(self):
        """Release resources (servers, files) at daemon stop."""
        return None
