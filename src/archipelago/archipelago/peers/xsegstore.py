"""XsegStore: an ObjectStore whose objects live in a blocker on the far side of a port.

mapperd builds its VolumeEngine on two of these (maps and locks in blockerm,
volume data in blockerb), so every map update and lease check happens in the
blocker process, next to the storage, exactly as the engine would do locally.
Data reads and writes use the raw READ/WRITE ops; everything else is a call
(see blocker.py). Errors arrive as the blocker raised them (errno + message).
"""
from ..store.base import ObjectStore, StoreInfo
from . import protocol as P
from .blocker import LIST_PAGE


class XsegStore(ObjectStore):
    """ObjectStore API v1 over `transport` to the blocker at `port`."""

    kind = "xseg"

    def __init__(self, transport, port, label=None):
        self.t = transport
        self.port = port
        self.label = label or f"blocker port {port}"

    def __repr__(self):
        return f"XsegStore({self.label})"

    def _call(self, op, method, name="", payload=b"", **args):
        header, body = self.t.call(self.port, op, method, name, payload, **args)
        return header.get("r"), body

    # -- data objects ---------------------------------------------------------
    def readinto(self, name, offset, buf):
        buf = memoryview(buf).cast("B")
        self.t.request(self.port, P.X_READ, name, offset=offset, size=len(buf), out=buf)
        return len(buf)

    def write(self, name, offset, data, *, fua=False, lease=None):
        data = memoryview(data).cast("B")
        if lease is None:
            self.t.request(self.port, P.X_WRITE, name, offset=offset, size=len(data),
                           data=data, flags=P.XF_FUA if fua else 0)
        else:
            self._call(P.X_WRITE, "write", name, data, offset=offset, fua=fua,
                       lease=P.lease_to_json(lease))
        return len(data)

    def flush(self):
        self.t.request(self.port, P.X_FLUSH, "")

    def stat(self, name):
        return self._call(P.X_INFO, "stat", name)[0]

    def delete(self, name, *, lease=None):
        return self._call(P.X_DELETE, "delete", name, lease=P.lease_to_json(lease))[0]

    def copy(self, src, dst, *, lease=None):
        self._call(P.X_COPY, "copy", dst, src=src, lease=P.lease_to_json(lease))

    # -- whole objects ----------------------------------------------------------
    def get(self, name):
        return self._call(P.X_READ, "get", name)[1]

    def replace(self, name, data, *, lease=None):
        self._call(P.X_UPDATE, "replace", name, bytes(data), lease=P.lease_to_json(lease))

    def put_if_absent(self, name, data):
        return self._call(P.X_CREATE, "put_if_absent", name, bytes(data))[0]

    def list(self, prefix=""):
        after = None
        while True:
            page = self._call(P.X_INFO, "list", prefix=prefix, after=after,
                              limit=LIST_PAGE)[0]
            yield from page
            if len(page) < LIST_PAGE:     # a short page is the last one
                return
            after = page[-1]

    def info(self):
        r = self._call(P.X_INFO, "info")[0]
        return StoreInfo(r["used"], r["free"])

    # -- leases -----------------------------------------------------------------
    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        r = self._call(P.X_ACQUIRE, "lease_acquire", name, owner=owner, ttl=ttl, wait=wait,
                       timeout=timeout, version=version)[0]
        return P.lease_from_json(r)

    def lease_renew(self, lease, ttl):
        r = self._call(P.X_ACQUIRE, "lease_renew", lease.name,
                       lease=P.lease_to_json(lease), ttl=ttl)[0]
        return P.lease_from_json(r)

    def lease_release(self, lease):
        self._call(P.X_RELEASE, "lease_release", lease.name, lease=P.lease_to_json(lease))

    def lease_break(self, name):
        self._call(P.X_RELEASE, "lease_break", name, flags=P.XF_FORCE)

    def lease_inquire(self, name):
        return P.lease_from_json(self._call(P.X_INFO, "lease_inquire", name)[0])

    def hash_object(self, name):
        """Blocker-side content addressing (HASH): the content-addressed copy's name."""
        return self._call(P.X_HASH, "hash", name)[0]
