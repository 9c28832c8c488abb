"""MemoryStore: the in-process twin of the object stores, for unit tests and
benchmarks of the map logic. Same contract as FileStore and RADOS (the store
contract suite runs against it); nothing survives the process."""
import threading

from ..errors import NotFound, Timeout
from . import leasing
from .base import ObjectStore, StoreInfo
from .leasing import check_name

PAGE = 64 << 10


class _Obj:
    """A sparse object: pages that were written, and a size (holes read as zeros), so
    that space figures match a sparse file store."""

    __slots__ = ("pages", "size")

    def __init__(self, data=b""):
        self.pages, self.size = {}, 0
        if data:
            self.write(0, memoryview(data).cast("B"))

    def write(self, offset, data):
        pos, end = offset, offset + len(data)
        while pos < end:
            i, a = divmod(pos, PAGE)
            n = min(PAGE - a, end - pos)
            page = self.pages.get(i)
            if page is None:
                page = self.pages[i] = bytearray(PAGE)
            page[a:a + n] = data[pos - offset:pos - offset + n]
            pos += n
        self.size = max(self.size, end)

    def readinto(self, offset, buf):
        """Fill `buf` (memoryview) from `offset`; returns the bytes that exist."""
        end = min(offset + len(buf), self.size)
        pos = offset
        while pos < end:
            i, a = divmod(pos, PAGE)
            n = min(PAGE - a, end - pos)
            page = self.pages.get(i)
            dst = buf[pos - offset:pos - offset + n]
            if page is None:
                dst[:] = bytes(n)
            else:
                dst[:] = page[a:a + n]
            pos += n
        return max(0, end - offset)

    def whole(self):
        buf = bytearray(self.size)
        self.readinto(0, memoryview(buf))
        return bytes(buf)

    def clone(self):
        new = _Obj()
        new.pages = {i: bytearray(p) for i, p in self.pages.items()}
        new.size = self.size
        return new


class MemoryStore(ObjectStore):
    kind = "memory"

    def __init__(self, capacity=1 << 40):
        self._objs = {}            # name -> _Obj
        self._leases = {}          # name -> LeaseState
        self._capacity = capacity
        self._cond = threading.Condition(threading.RLock())

    # -- data objects -----------------------------------------------------------------
    def readinto(self, name, offset, buf):
        check_name(name)
        buf = memoryview(buf).cast("B")
        with self._cond:
            obj = self._objs.get(name)
            n = obj.readinto(offset, buf) if obj is not None else 0
        buf[n:] = bytes(len(buf) - n)
        return len(buf)

    def write(self, name, offset, data, *, fua=False, lease=None):
        check_name(name)
        data = memoryview(data).cast("B")
        with self._cond:
            self._fence(lease)
            obj = self._objs.get(name)
            if obj is None:
                obj = self._objs[name] = _Obj()
            obj.write(offset, data)
        return len(data)

    def flush(self):
        pass

    def stat(self, name):
        check_name(name)
        with self._cond:
            obj = self._objs.get(name)
            return None if obj is None else obj.size

    def delete(self, name, *, lease=None):
        check_name(name)
        with self._cond:
            self._fence(lease)
            return self._objs.pop(name, None) is not None

    def copy(self, src, dst, *, lease=None):
        check_name(src)
        check_name(dst)
        with self._cond:
            self._fence(lease)
            obj = self._objs.get(src)
            self._objs[dst] = obj.clone() if obj is not None else _Obj()

    # -- whole objects ----------------------------------------------------------------
    def get(self, name):
        check_name(name)
        with self._cond:
            obj = self._objs.get(name)
            if obj is None:
                raise NotFound(f"object {name} does not exist")
            return obj.whole()

    def replace(self, name, data, *, lease=None):
        check_name(name)
        with self._cond:
            self._fence(lease)
            self._objs[name] = _Obj(data)

    def put_if_absent(self, name, data):
        check_name(name)
        with self._cond:
            if name in self._objs:
                return False
            self._objs[name] = _Obj(data)
            return True

    def list(self, prefix=""):
        with self._cond:
            names = [n for n in self._objs if n.startswith(prefix)]
        return iter(names)

    def info(self):
        with self._cond:
            used = sum(min(len(o.pages) * PAGE, o.size) for o in self._objs.values())
        return StoreInfo(used=used, free=max(0, self._capacity - used))

    # -- leases -----------------------------------------------------------------------
    def _fence(self, lease):
        if lease is not None:
            leasing.check_fence(self._leases.get(lease.name, leasing.LeaseState()), lease)

    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        check_name(name)
        with self._cond:
            state = self._leases.setdefault(name, leasing.LeaseState())
            delays = leasing.wait_delays(timeout)
            while True:
                try:
                    lease = leasing.try_acquire(state, name, owner, ttl, version)
                    self._cond.notify_all()
                    return lease
                except leasing.Busy:
                    if not wait or version is not None:
                        raise
                delay = next(delays, None)
                if delay is None:
                    raise Timeout(f"timed out waiting for lease {name} "
                                  f"(held by {state.owner})") from None
                # Woken by release/break; the delay also covers expiry of a dead holder.
                self._cond.wait(max(delay, 0.05))

    def lease_renew(self, lease, ttl):
        with self._cond:
            return leasing.renew(self._leases.get(lease.name, leasing.LeaseState()), lease, ttl)

    def lease_release(self, lease):
        with self._cond:
            state = self._leases.get(lease.name)
            if state is not None and leasing.release(state, lease):
                self._cond.notify_all()

    def lease_break(self, name):
        check_name(name)
        with self._cond:
            state = self._leases.get(name)
            if state is not None and state.owner is not None:
                state.owner, state.expires = None, 0.0
                self._cond.notify_all()

    def lease_inquire(self, name):
        check_name(name)
        with self._cond:
            state = self._leases.get(name)
            if state is None or state.owner is None:
                return None
            return state.lease(name)
