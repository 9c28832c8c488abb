"""The object-store interface every blocker backend implements (API version 1).

A store is a flat namespace of named objects. Names are opaque ASCII strings of
at most 123 characters from [A-Za-z0-9._:@-]; backends map them to their own
namespace (files in fan-out directories, RADOS objects) and must reject any
other name with InvalidArgument -- a name never becomes a path unchecked.

Two kinds of objects live in a store and the interface serves both:
  * data objects (volume blocks), written in place at offsets, read with zero
    fill: a missing object or a read past its end returns zeros;
  * metadata objects (map headers and map blocks, content-addressed blocks),
    written whole and atomically with `replace` or `put_if_absent`.

Durability contract (the NBD/FLUSH model):
  * `write` returns when the data survives a crash of *this process*; it is
    durable across power loss only after `flush()` or with `fua=True`;
  * `replace`, `put_if_absent`, `copy` and `delete` are durable when they return
    (they carry map state, which must never be lost or torn);
  * after a crash an object holds, for every acknowledged write, either the old
    or the new bytes, never garbage.

Leases (DESIGN §3 "Locks and leases"): a lease on a name has an owner, a
generation that increases on every acquisition, and an expiry. A mutation that
passes `lease=` is refused with Fenced if that lease is no longer the current
one (released, broken, expired and taken by another), checked by the backend as
close to the storage as it can (atomically where the backend allows).

Errors: backends raise only archipelago.errors types (NotFound, Exists, Busy,
Fenced, NoSpace, InvalidArgument, BackendError); OSError/rados.Error are wrapped
inside the backend module. Every method is safe to call from several threads.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass

API_VERSION = 1
NAME_MAX = 123


@dataclass(frozen=True)
class Lease:
    """A held (or inquired) lease on `name`."""

    name: str
    owner: str          # who holds it: "host:peer" or a client id
    generation: int     # increases on every acquisition; fencing token
    expires: float      # time.time() after which others may take it (0 = never)


@dataclass(frozen=True)
class StoreInfo:
    """Capacity figures for `du`, heartbeats and GC reports (bytes)."""

    used: int
    free: int


class ObjectStore(ABC):
    """One backend (file, RADOS, memory). See the module docstring for contracts."""

    api_version = API_VERSION
    kind = "abstract"   # short backend name for messages and `archipelago status`

    # -- data objects ---------------------------------------------------------
    @abstractmethod
    def readinto(self, name, offset, buf):
        """Fill memoryview `buf` from `name` at `offset`; zeros where nothing was written."""

    def read(self, name, offset, length):
        """Bytes of `name` at [offset, offset+length), zero-filled."""
        buf = bytearray(length)
        self.readinto(name, offset, memoryview(buf))
        return bytes(buf)

    @abstractmethod
    def write(self, name, offset, data, *, fua=False, lease=None):
        """Write `data` (bytes-like) at `offset`, creating the object if needed."""

    @abstractmethod
    def flush(self):
        """Make every write acknowledged so far durable across power loss."""

    @abstractmethod
    def stat(self, name):
        """The object's size in bytes, or None if it does not exist."""

    @abstractmethod
    def delete(self, name, *, lease=None):
        """Remove `name`; True if it existed. Idempotent."""

    @abstractmethod
    def copy(self, src, dst, *, lease=None):
        """Make `dst` a full copy of `src` (copy-on-write copy-up). A missing src makes an
        empty dst. Durable on return."""

    # -- whole (metadata) objects ---------------------------------------------
    @abstractmethod
    def get(self, name):
        """The whole content of `name`; NotFound if it does not exist."""

    @abstractmethod
    def replace(self, name, data, *, lease=None):
        """Atomically make `data` the whole content of `name`. Durable on return."""

    @abstractmethod
    def put_if_absent(self, name, data):
        """Store `data` as `name` unless it exists (content-addressed objects, where
        the name is a hash of the data). True if it was stored now. Durable."""

    @abstractmethod
    def list(self, prefix=""):
        """Iterate over the names that start with `prefix` (any order)."""

    @abstractmethod
    def info(self):
        """A StoreInfo with used and free bytes."""

    # -- leases ---------------------------------------------------------------
    @abstractmethod
    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        """Take the lease on `name` for `owner` for `ttl` seconds; returns a Lease.

        Idempotent for the current owner (renews and returns the same generation).
        Held by another live owner: Busy, or with wait=True block until free (or
        `timeout` seconds, then Timeout). `version`: succeed only if the lease's
        current generation equals it (migration hand-over: inquire -> release ->
        acquire(version=g)), else Busy. An expired lease may be taken by anyone."""

    @abstractmethod
    def lease_renew(self, lease, ttl):
        """Extend a held lease; Fenced if it is no longer ours. Returns the new Lease."""

    @abstractmethod
    def lease_release(self, lease):
        """Give the lease up; idempotent; Fenced if someone else holds it now."""

    @abstractmethod
    def lease_break(self, name):
        """Force the lease free whoever holds it (`vlmc unlock -f`); idempotent."""

    @abstractmethod
    def lease_inquire(self, name):
        """The current Lease on `name` (possibly expired), or None if free."""

    def close(self):  # noqa: B027 -- optional hook, most stores hold nothing
        """Release resources (fds, cluster handles)."""
