"""The attach-method interface (os-brick's InitiatorConnector, cut to what we need).

A Connector turns an NBD URI served by the local nbdd into a block device and
back. It is stateless: what an attach created is returned as a `Mapping`
(persisted by state.py), and detach/check get that record back, so a CLI run
after a restart can still detach what an earlier run attached.

Rules every connector follows:
- `attach` either returns a live device or raises after undoing everything it
  did (no half-attached leftovers);
- `detach` is idempotent: detaching something already gone succeeds;
- `detach` never checks whether the device is busy; the mapper does that once
  for every method (devices.busy) before calling it;
- every external command goes through archipelago.process.
"""
import abc
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Mapping:
    """One attached volume. `extra` holds the connector's own keys."""

    id: str                     # unique per mapping; the backend identifier for kernel nbd
    volume: str                 # export name (VOL or VOL@SNAP)
    uri: str                    # what the device is attached to
    method: str                 # connector name
    device: str = ""            # /dev/loopN, /dev/nbdN
    read_only: bool = False
    created: float = field(default_factory=time.time)
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


class Connector(abc.ABC):
    """One way of attaching an NBD export as a block device."""

    name = "?"

    @classmethod
    @abc.abstractmethod
    def available(cls):
        """(ok, reason): can this method work on this host right now?"""

    @abc.abstractmethod
    def attach(self, mapping, work_dir):
        """Attach `mapping.uri`; fill in mapping.device (and extra); return mapping.

        work_dir: a private, existing directory for this mapping's files.
        Must clean up everything on failure before raising.
        """

    @abc.abstractmethod
    def detach(self, mapping, force=False):
        """Detach; idempotent. force: lazy detach even if still in use."""

    @abc.abstractmethod
    def alive(self, mapping):
        """True if mapping.device is still attached to this mapping."""


def connectors():
    """The method table, in order of preference."""
    from .fuse_loop import FuseLoopConnector
    from .netlink import NetlinkNbdConnector
    return {c.name: c for c in (NetlinkNbdConnector, FuseLoopConnector)}


def choose(method=None, table=None):
    """The Connector class to use: `method` if given, else the first available."""
    table = table if table is not None else connectors()
    from archipelago.errors import InvalidArgument, Unavailable
    if method:
        if method not in table:
            raise InvalidArgument(f"unknown attach method {method!r} "
                                  f"(known: {', '.join(table)})")
        ok, why = table[method].available()
        if not ok:
            raise Unavailable(f"attach method {method}: {why}")
        return table[method]
    reasons = []
    for cls in table.values():
        ok, why = cls.available()
        if ok:
            return cls
        reasons.append(f"{cls.name}: {why}")
    raise Unavailable("no way to attach a block device here: " + "; ".join(reasons))
