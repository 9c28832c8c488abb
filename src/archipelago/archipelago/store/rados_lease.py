"""Leases and fencing for RadosStore, on RADOS primitives.

Lease record: one RADOS object per lease name in the `<namespace>.leases` namespace,
holding JSON {owner, generation, expires, addrs}. Every change is a compare-and-swap:
read the record and its object version, apply the shared state machine
(store.leasing: the same rules as the memory and file stores), write it back in one
op that asserts the version (or creates it exclusively); a lost race retries.

`addrs` are the RADOS client addresses (librados instances) that may write under the
current generation (a store with the native data path has two, both registered): the
acquirer's, plus any other store that wrote under the lease (it registers itself before
its first leased write). Fencing is done by the cluster:

  1. when a new generation is taken (an expired holder taken over, or a lease whose
     previous holders are still registered), and on lease_break, every registered
     address except our own is added to the OSD blocklist and we wait for the OSD map
     that carries it before the record changes -- from then on the OSDs refuse every
     request of the old holder's client (ESHUTDOWN -> Fenced), on every object;
  2. each leased mutation carries, in the same atomic RADOS op, an omap guard on the
     object: `archipelago.fence.<lease>` must be below generation+1, and is set to our
     generation -- a late writer of an older generation can never overwrite an object
     a newer holder has written, whatever client it uses.
A clean release removes the releaser's address, so a hand-over (migration:
inquire -> release -> acquire(version=g)) fences nobody. A store whose client was
blocklisted reconnects (new address) and must re-validate each lease against its
record before writing under it again; this happens on the next leased write.
"""
import errno
import json
import logging
import threading
import time
from dataclasses import dataclass

from ..errors import BackendError, Busy, Fenced, Timeout
from . import leasing, rados_watch
from .leasing import check_name

try:
    import rados
except ImportError:  # pragma: no cover
    rados = None

log = logging.getLogger(__name__)

FENCE_KEY = "archipelago.fence."
# assert_version: ERANGE (newer) / EOVERFLOW (older); exclusive create: EEXIST
_LOST_RACE = (errno.ERANGE, errno.EOVERFLOW, errno.EEXIST)


def gen_key(generation):
    """A generation as a fixed-width string: omap compares bytes, so 20 digits keep
    lexicographic order equal to numeric order."""
    return f"{generation:020d}"


@dataclass
class _Held:
    """What this store knows about a lease it has acquired, renewed or validated."""

    owner: str
    generation: int
    expires: float
    epoch: int          # connection epoch the lease was validated under
    valid: bool = True  # False once released or broken through this store


class RadosLeases:
    """Mixin for RadosStore: the lease half of ObjectStore."""

    def __init__(self, margin):
        self._held = {}
        self._lease_lock = threading.Lock()   # lio.get_last_version is per ioctx
        self._lease_margin = margin

    # -- the record ---------------------------------------------------------------------
    def _record(self, c, name):
        """(LeaseState, addrs, version or None if the record does not exist)."""
        try:
            data = c.lio.read(name, 65536, 0)
            ver = c.lio.get_last_version()
        except rados.ObjectNotFound:
            return leasing.LeaseState(), [], None
        try:
            d = json.loads(data)
            return leasing.LeaseState.from_dict(d), list(d.get("addrs", [])), ver
        except (ValueError, TypeError, AttributeError):
            raise BackendError(f"lease record {name} in pool {self.cfg.pool} is corrupt") \
                from None

    def _cas(self, c, name, ver, state, addrs):
        """Write the record if it is still at `ver`; False if someone changed it."""
        d = state.to_dict()
        d["addrs"] = addrs
        w = c.lio.create_write_op()
        try:
            if ver is None:
                w.new(rados.LIBRADOS_CREATE_EXCLUSIVE)
            else:
                w.assert_version(ver)
            w.write_full(json.dumps(d).encode())
            c.lio.operate_write_op(w, name)
            return True
        except rados.Error as e:
            if abs(getattr(e, "errno", 0) or 0) in _LOST_RACE:
                return False
            raise
        finally:
            c.lio.release_write_op(w)

    def _update(self, name, change):
        """Apply change(c, state, addrs) -> (result, new_addrs) with compare-and-swap."""
        check_name(name)

        def attempt(c):
            while True:
                with self._lease_lock:
                    state, addrs, ver = self._record(c, name)
                    result, new_addrs = change(c, state, addrs)
                    if new_addrs is None:           # nothing to write
                        return result
                    if self._cas(c, name, ver, state, new_addrs):
                        return result
        return self._sync(f"lease {name}", attempt, retry=True)

    def _fence_clients(self, c, name, addrs):
        """Blocklist every client in `addrs` but ours; wait until the OSDs know it."""
        others = [a for a in addrs if a not in c.addrs]
        if not others:
            return
        if not self.cfg.fence_blocklist:
            log.warning("lease %s: not fencing %s (fence_blocklist = no)", name, others)
            return
        for addr in others:
            log.warning("lease %s: fencing RADOS client %s (blocklist %ss)", name, addr,
                        self.cfg.blocklist_expire)
            try:
                c.cluster.blocklist_add(addr, self.cfg.blocklist_expire)
            except rados.PermissionError:
                raise BackendError(f"lease {name}: cannot fence client {addr}: client."
                                   f"{self.cfg.cephx_id} may not blocklist (give it mon "
                                   "'profile rbd' or 'allow command \"osd blocklist\"')") \
                    from None
        c.cluster.wait_for_latest_osdmap()

    def _remember(self, lease, c):
        margin = min(self._lease_margin, (lease.expires - time.time()) / 4) \
            if lease.expires else 0
        self._held[lease.name] = _Held(lease.owner, lease.generation,
                                       lease.expires - max(margin, 0) if lease.expires else 0,
                                       c.epoch)

    # -- ObjectStore lease API ------------------------------------------------------------
    def lease_acquire(self, name, owner, ttl, *, wait=False, timeout=None, version=None):
        """wait: retry until `timeout`, woken by a RADOS notify when the holder releases
        (rados_watch.py); the watch is set up before the retry that follows the first
        refusal, so a release in between is never missed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waker = None
        try:
            while True:
                if waker is not None:
                    waker.arm()
                try:
                    return self._acquire_once(name, owner, ttl, version)
                except Busy as e:
                    if isinstance(e, Fenced) or not wait or version is not None:
                        raise
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise Timeout(f"timed out waiting for lease {name}: {e}") from None
                    if waker is None:
                        waker = rados_watch.Waker(self.conn().lio, name)
                        continue
                    waker.wait(rados_watch.WAIT_CAP if left is None else left)
        finally:
            if waker is not None:
                waker.close()

    def _acquire_once(self, name, owner, ttl, version):
        def change(c, state, addrs):
            before = state.generation
            lease = leasing.try_acquire(state, name, owner, ttl, version)
            if lease.generation != before:       # a new generation: fence the old one
                self._fence_clients(c, name, addrs)
                addrs = []
            return (lease, c), _with(addrs, c.addrs)
        lease, c = self._update(name, change)
        self._remember(lease, c)
        return lease

    def lease_renew(self, lease, ttl):
        def change(c, state, addrs):
            new = leasing.renew(state, lease, ttl)
            return (new, c), _with(addrs, c.addrs)
        new, c = self._update(lease.name, change)
        self._remember(new, c)
        return new

    def lease_release(self, lease):
        def change(c, state, addrs):
            if state.owner is None:
                return None, None
            leasing.release(state, lease)
            return c, [a for a in addrs if a not in c.addrs]
        c = self._update(lease.name, change)
        if c is not None:
            rados_watch.notify(c.lio, lease.name)
        held = self._held.get(lease.name)
        if held is not None and held.generation == lease.generation:
            held.valid = False

    def lease_break(self, name):
        def change(c, state, addrs):
            if state.owner is None:
                return None, None
            log.warning("breaking lease %s held by %s (generation %d)",
                        name, state.owner, state.generation)
            self._fence_clients(c, name, addrs)
            state.owner, state.expires = None, 0.0
            return c, []
        c = self._update(name, change)
        if c is not None:
            rados_watch.notify(c.lio, name)
        held = self._held.get(name)
        if held is not None:
            held.valid = False

    def lease_inquire(self, name):
        check_name(name)
        state, _addrs, _ver = self._sync(f"lease {name}",
                                         lambda c: self._locked_record(c, name))
        return None if state.owner is None else state.lease(name)

    def _locked_record(self, c, name):
        with self._lease_lock:
            return self._record(c, name)

    # -- the check before every leased mutation ---------------------------------------------
    def check_lease(self, lease, c):
        """Refuse (Fenced) a mutation under a lease this client knows is stale; validate
        against the record (and register our client address) when not known fresh."""
        h = self._held.get(lease.name)
        if h is not None:
            if lease.generation < h.generation or (lease.generation == h.generation
                                                   and lease.owner != h.owner):
                raise Fenced(f"lease {lease.name} generation {lease.generation} was "
                             f"superseded by generation {h.generation}")
            if lease.generation == h.generation:
                if not h.valid:
                    raise Fenced(f"lease {lease.name} generation {lease.generation} was "
                                 "released or broken")
                if h.epoch == c.epoch and (not h.expires or time.time() < h.expires):
                    return
        self._join(lease)

    def _join(self, lease):
        def change(c, state, addrs):
            leasing.check_fence(state, lease)
            return (state.lease(lease.name), c), (None if set(c.addrs) <= set(addrs)
                                                  else _with(addrs, c.addrs))
        current, c = self._update(lease.name, change)
        self._remember(current, c)


def _with(addrs, ours):
    """addrs plus each of our client addresses (a store may have two: rados_aio.py)."""
    return [*addrs, *(a for a in ours if a not in addrs)]
