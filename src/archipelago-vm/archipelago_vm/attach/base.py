"""Attacher: what the compute-node daemon needs to give a VM a volume.

attach and detach are idempotent and clean up after themselves on failure.
"""
from abc import ABC, abstractmethod


class Attacher(ABC):
    @abstractmethod
    def attach(self, uri, read_only=False):
        """Attach the NBD export `uri`; returns the device path (or URI) for VMs.
        Attaching a URI that is already attached returns the same device."""

    @abstractmethod
    def detach(self, device, force=False):
        """Detach `device`. Busy if it is open or mounted (unless force); no error if
        it is already gone."""

    @abstractmethod
    def list(self):
        """[{"device": ..., "uri": ...}] of everything attached by this attacher."""

    def reconcile(self, known):
        """At daemon start: given [(device, uri)] from the database, return the
        devices that are no longer attached (their rows are dropped)."""
        present = {d["device"] for d in self.list()}
        return [dev for dev, _ in known if dev not in present]
