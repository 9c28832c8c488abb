"""Store-side helpers shared by every ObjectStore backend: object-name checks and
the lease state machine (owner, generation, expiry), so that memory, file and RADOS
stores agree on every corner case the contract suite checks."""
import re
import time

from ..errors import Busy, Fenced, InvalidArgument
from .base import NAME_MAX, Lease

NAME_RE = re.compile(r"[A-Za-z0-9._:@-]{1,%d}" % (NAME_MAX,))  # noqa: UP031 -- regex braces


def check_name(name):
    """Return `name` if it is a valid store object name, else InvalidArgument."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) < 40 else repr(name)[:40]
        raise InvalidArgument(f"invalid object name {shown!r}: 1-{NAME_MAX} characters "
                              "from [A-Za-z0-9._:@-]")
    return name


class LeaseState:
    """The persistent record behind one lease name. `owner` None means free; the
    generation survives release so that a later acquisition gets a higher one."""

    __slots__ = ("expires", "generation", "owner")

    def __init__(self, owner=None, generation=0, expires=0.0):
        self.owner, self.generation, self.expires = owner, generation, expires

    def to_dict(self):
        return {"owner": self.owner, "generation": self.generation, "expires": self.expires}

    @classmethod
    def from_dict(cls, d):
        return cls(d.get("owner"), int(d.get("generation", 0)), float(d.get("expires", 0)))

    def live(self, now=None):
        """Held by someone whose lease has not expired."""
        if self.owner is None:
            return False
        return self.expires == 0 or (now if now is not None else time.time()) < self.expires

    def lease(self, name):
        return Lease(name, self.owner, self.generation, self.expires)


def _expiry(ttl, now):
    return 0.0 if not ttl else now + float(ttl)


def try_acquire(state, name, owner, ttl, version=None):
    """Apply an acquisition to `state` in place; return the Lease or raise Busy."""
    if not owner or not isinstance(owner, str):
        raise InvalidArgument("a lease owner must be a non-empty string")
    now = time.time()
    if version is not None and version != state.generation:
        raise Busy(f"lease {name} is at generation {state.generation}, not {version}"
                   + (f" (held by {state.owner})" if state.owner else ""))
    if state.owner == owner and version is None:
        state.expires = _expiry(ttl, now)       # idempotent for the holder: renew
        return state.lease(name)
    if state.live(now):
        raise Busy(f"lease {name} is held by {state.owner} (generation {state.generation})")
    state.owner, state.generation, state.expires = owner, state.generation + 1, _expiry(ttl, now)
    return state.lease(name)


def is_current(state, lease):
    """True if `lease` is still the one in force (same holder and generation)."""
    return state.owner == lease.owner and state.generation == lease.generation


def check_fence(state, lease):
    if not is_current(state, lease):
        holder = f"held by {state.owner}" if state.owner else "free"
        raise Fenced(f"lease {lease.name} generation {lease.generation} of {lease.owner} "
                     f"is no longer current (now {holder}, generation {state.generation})")


def renew(state, lease, ttl):
    check_fence(state, lease)
    state.expires = _expiry(ttl, time.time())
    return state.lease(lease.name)


def release(state, lease):
    """Free the lease if `lease` is current; idempotent when already free."""
    if state.owner is None:
        return False
    check_fence(state, lease)
    state.owner, state.expires = None, 0.0
    return True


def wait_delays(timeout):
    """Back-off delays for a blocking acquisition across processes (no wakeup channel
    exists between stores of different processes); stops after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            yield min(delay, left)
        else:
            yield delay
        delay = min(delay * 2, 0.25)
