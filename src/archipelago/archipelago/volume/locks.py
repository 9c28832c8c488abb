"""Volume locks as store leases (DESIGN §3 "Locks and leases").

One lease per volume, named vl.<ID> (stable across renames), owned by the engine's
`owner` ("host:peer"). A background thread renews held leases every ttl/3. A holder
that fails to renew, or whose lease has expired locally, stops writing at once
(`check` raises Fenced) -- before anyone else may take the lease over; the store
also refuses writes made with a stale lease (fencing by generation).
"""
import logging
import threading
import time

from ..errors import Busy, Fenced
from .format import LEASE_PREFIX

log = logging.getLogger(__name__)


def lease_name(vid):
    return LEASE_PREFIX + vid


class LeaseKeeper:
    def __init__(self, store, owner, ttl):
        self.store, self.owner, self.ttl = store, owner, ttl
        self._held = {}                 # vid -> Lease
        self._fenced = {}               # vid -> reason
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def acquire(self, vid, what, *, wait=False, timeout=None, version=None):
        """Take (or renew) the lease of volume `vid`; Busy names the holder.
        `version`: only if the lease is still at that generation (migration hand-over:
        the target inquires, the source releases, the target acquires with it)."""
        try:
            lease = self.store.lease_acquire(lease_name(vid), self.owner, self.ttl,
                                             wait=wait, timeout=timeout, version=version)
        except Fenced:
            raise
        except Busy:
            cur = self.store.lease_inquire(lease_name(vid))
            if version is not None and (cur is None or cur.owner != self.owner):
                at = f"at generation {cur.generation}, held by {cur.owner}" if cur else \
                    "free at another generation"
                raise Busy(f"volume {what}: lock is {at}, not generation {version}") from None
            holder = f"{cur.owner} (generation {cur.generation})" if cur else "another owner"
            raise Busy(f"volume {what} is locked by {holder}") from None
        with self._lock:
            self._held[vid] = lease
            self._fenced.pop(vid, None)
        self._start()
        return lease

    def held(self, vid):
        with self._lock:
            return self._held.get(vid)

    def fenced(self, vid):
        with self._lock:
            return vid in self._fenced

    def check(self, vid, what):
        """The current lease for writing `vid`; Fenced if it was lost."""
        with self._lock:
            lease = self._held.get(vid)
            reason = self._fenced.get(vid)
        if reason:
            raise Fenced(f"volume {what}: {reason}; writes stopped")
        if lease is None:
            return None
        if lease.expires and time.time() >= lease.expires - min(1.0, self.ttl / 10):
            lease = self._renew(vid, lease)     # late: renew now or stop writing
        return lease

    def _renew(self, vid, lease):
        try:
            new = self.store.lease_renew(lease, self.ttl)
        except Fenced as e:
            with self._lock:
                self._held.pop(vid, None)
                self._fenced[vid] = f"lease lost ({e})"
            log.warning("lease of volume %s lost: %s", vid, e)
            raise
        with self._lock:
            if self._held.get(vid) is lease:
                self._held[vid] = new
        return new

    def release(self, vid):
        with self._lock:
            lease = self._held.pop(vid, None)
            self._fenced.pop(vid, None)
        if lease is not None:
            try:
                self.store.lease_release(lease)
            except Fenced:
                log.warning("lease of volume %s was already taken over at release", vid)

    def forget(self, vid):
        with self._lock:
            self._held.pop(vid, None)
            self._fenced.pop(vid, None)

    def break_lease(self, vid):
        self.store.lease_break(lease_name(vid))
        self.forget(vid)

    def inquire(self, vid):
        return self.store.lease_inquire(lease_name(vid))

    # -- renewal --------------------------------------------------------------------------
    def _start(self):
        if not self.ttl:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="lease-renewal",
                                            daemon=True)
            self._thread.start()

    def _run(self):
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                held = list(self._held.items())
            for vid, lease in held:
                try:
                    self._renew(vid, lease)
                except Fenced:
                    pass
                except Exception as e:     # a store hiccup: retry at the next period
                    log.warning("renewing lease of volume %s failed: %s", vid, e)

    def close(self, release=True):
        self._stop.set()
        if release:
            with self._lock:
                vids = list(self._held)
            for vid in vids:
                try:
                    self.release(vid)
                except Exception as e:
                    log.warning("releasing lease of volume %s failed: %s", vid, e)
