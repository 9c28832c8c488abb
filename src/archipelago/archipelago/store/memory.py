"""MemoryStore: the in-process twin of the object stores, for unit tests and
benchmarks of the map logic. Same contract as FileStore and RADOS (the store
contract suite runs against it); nothing survives the process."""
import threading

from ..errors import NotFound, Timeout
from . import leasing
from .base import ObjectStore, StoreInfo
from .leasing import check_name


class MemoryStore(ObjectStore):
    kind = "memory"

    def __init__(self, capacity=1 << 40):
        self._objs = {}            # name -> bytearray
        self._leases = {}          # name -> LeaseState
        self._capacity = capacity
        self._cond = threading.Condition(threading.RLock())

    # -- data objects -----------------------------------------------------------------
    def readinto(self, name, offset, buf):
        check_name(name)
        buf = memoryview(buf).cast("B")
        with self._cond:
            data = self._objs.get(name)
            n = 0
            if data is not None and offset < len(data):
                n = min(len(buf), len(data) - offset)
                buf[:n] = data[offset:offset + n]
        buf[n:] = bytes(len(buf) - n)
        return len(buf)

    def write(self, name, offset, data, *, fua=False, lease=None):
        check_name(name)
        data = memoryview(data).cast("B")
        with self._cond:
            self._fence(lease)
            obj = self._objs.setdefault(name, bytearray())
            end = offset + len(data)
            if len(obj) < end:
                obj.extend(bytes(end - len(obj)))
            obj[offset:end] = data
        return len(data)

    def flush(self):
        pass

    def stat(self, name):
        check_name(name)
        with self._cond:
            obj = self._objs.get(name)
            return None if obj is None else len(obj)

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
            self._objs[dst] = bytearray(self._objs.get(src, b""))

    # -- whole objects ----------------------------------------------------------------
    def get(self, name):
        check_name(name)
        with self._cond:
            obj = self._objs.get(name)
            if obj is None:
                raise NotFound(f"object {name} does not exist")
            return bytes(obj)

    def replace(self, name, data, *, lease=None):
        check_name(name)
        with self._cond:
            self._fence(lease)
            self._objs[name] = bytearray(data)

    def put_if_absent(self, name, data):
        check_name(name)
        with self._cond:
            if name in self._objs:
                return False
            self._objs[name] = bytearray(data)
            return True

    def list(self, prefix=""):
        with self._cond:
            names = [n for n in self._objs if n.startswith(prefix)]
        return iter(names)

    def info(self):
        with self._cond:
            used = sum(len(o) for o in self._objs.values())
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
