"""RoutingStore: one ObjectStore for the engine over the two blockers of a node.

The VolumeEngine keeps everything in one store; a node splits it as the original
did: data objects (`vd.` written by volumes, `vc.` content-addressed) go to the
data blocker (blockerb), everything else -- names, headers, map nodes and the
volume leases -- to the map blocker (blockerm).

Leases live with the maps, so a lease passed with a data mutation (the engine's
copy-up) cannot be checked by the data blocker; it is dropped there. Fencing
still holds where it matters: the map update that would make such an object
visible is written with the lease to blockerm and refused once it is stale, and
an object nobody links is garbage for `gc`.
"""
import itertools

from ..store.base import ObjectStore, StoreInfo

DATA_PREFIXES = ("vd.", "vc.")


class RoutingStore(ObjectStore):
    kind = "routing"

    def __init__(self, maps, data):
        self.maps, self.data = maps, data

    def __repr__(self):
        return f"RoutingStore(maps={self.maps!r}, data={self.data!r})"

    def _to(self, name):
        return self.data if isinstance(name, str) and name.startswith(DATA_PREFIXES) \
            else self.maps

    def _lease(self, name, lease):
        return None if self._to(name) is self.data else lease

    def readinto(self, name, offset, buf):
        return self._to(name).readinto(name, offset, buf)

    def write(self, name, offset, data, *, fua=False, lease=None):
        return self._to(name).write(name, offset, data, fua=fua,
                                    lease=self._lease(name, lease))

    def flush(self):
        self.data.flush()
        self.maps.flush()

    def stat(self, name):
        return self._to(name).stat(name)

    def delete(self, name, *, lease=None):
        return self._to(name).delete(name, lease=self._lease(name, lease))

    def copy(self, src, dst, *, lease=None):
        store = self._to(dst)
        if self._to(src) is not store:
            store.replace(dst, self._to(src).get(src) if self._to(src).stat(src) is not None
                          else b"", lease=self._lease(dst, lease))
            return None
        return store.copy(src, dst, lease=self._lease(dst, lease))

    def get(self, name):
        return self._to(name).get(name)

    def replace(self, name, data, *, lease=None):
        return self._to(name).replace(name, data, lease=self._lease(name, lease))

    def put_if_absent(self, name, data):
        return self._to(name).put_if_absent(name, data)

    def list(self, prefix=""):
        if prefix.startswith(DATA_PREFIXES):
            return self.data.list(prefix)
        if prefix and not any(p.startswith(prefix) for p in DATA_PREFIXES):
            return self.maps.list(prefix)
        return itertools.chain(self.maps.list(prefix), self.data.list(prefix))

    def info(self):
        d, m = self.data.info(), self.maps.info()
        return StoreInfo(d.used + m.used, d.free)

    # leases are all in the map store
    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        return self.maps.lease_acquire(name, owner, ttl, wait=wait, timeout=timeout,
                                       version=version)

    def lease_renew(self, lease, ttl):
        return self.maps.lease_renew(lease, ttl)

    def lease_release(self, lease):
        return self.maps.lease_release(lease)

    def lease_break(self, name):
        return self.maps.lease_break(name)

    def lease_inquire(self, name):
        return self.maps.lease_inquire(name)

    def close(self):
        self.data.close()
        self.maps.close()
