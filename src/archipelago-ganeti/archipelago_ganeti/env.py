"""Ganeti's ExtStorage environment, parsed and validated once.

Ganeti (>= 2.5) cleans the environment before running a provider script, so
these variables are the whole input (ganeti-extstorage-interface(7)):
VOL_NAME, VOL_SIZE and VOL_NEW_SIZE (MiB), VOL_SNAPSHOT_NAME, VOL_SNAPSHOT_SIZE,
VOL_OPEN_EXCLUSIVE, VOL_METADATA, VOL_CNAME, VOL_UUID and EXTP_<param>.
"""
from dataclasses import dataclass, field

from archipelago.errors import InvalidArgument
from archipelago.names import split_snapshot, validate_name
from archipelago.units import parse_size

from .interface import ACTIONS, PARAMETERS

SNAP_SUFFIX = ".snap"


@dataclass
class Request:
    """One ExtStorage call: what Ganeti asked for, in checked form."""

    action: str
    name: str
    size_mib: int | None = None
    new_size_mib: int | None = None
    snapshot: str | None = None
    exclusive: bool = True
    metadata: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def target(self):
        """What vlmc calls the disk: VOL, or VOL@SNAP for a snapshot disk.

        `gnt-backup export` snapshots VOL as VOL_SNAPSHOT_NAME = VOL.snap, then
        attaches, reads and removes a disk named VOL.snap. Ganeti's own volume
        names (UUID.ext.diskN) never end in .snap, so the suffix is unambiguous.
        """
        if self.name.endswith(SNAP_SUFFIX) and len(self.name) > len(SNAP_SUFFIX):
            return f"{self.name[:-len(SNAP_SUFFIX)]}@{self.name}"
        return self.name


def _mib(environ, var, required):
    raw = environ.get(var, "").strip()
    if not raw:
        if required:
            raise InvalidArgument(f"{var} is not set")
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidArgument(f"{var}={raw!r}: expected a positive number of MiB")
    return int(raw)


def _bool(raw, var):
    value = raw.strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"{var}={raw!r}: expected True or False")


def params_from(environ):
    """EXTP_* variables as {lower-case name: value}; unknown names are an error."""
    params = {k[5:].lower(): v for k, v in environ.items() if k.startswith("EXTP_")}
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise InvalidArgument(f"unknown ExtStorage parameter(s) {', '.join(unknown)}; "
                              f"this provider takes {', '.join(PARAMETERS)}")
    if params.get("origin"):
        split_snapshot(params["origin"])   # VOLUME@SNAP, or a hashed image's name
    if params.get("object_size"):
        # vlmc reads a bare object size as bytes; hand it bytes, whatever the suffix.
        params["object_size"] = str(parse_size(params["object_size"], "M",
                                               what="object_size"))
    return {k: v for k, v in params.items() if v}


def parse(action, environ):
    """Build the Request for `action` from Ganeti's environment."""
    if action not in ACTIONS:
        raise InvalidArgument(f"unknown action {action!r}")
    name = environ.get("VOL_NAME", "")
    if not name:
        raise InvalidArgument("VOL_NAME is not set")
    validate_name(name)
    req = Request(action, name, params=params_from(environ))
    req.size_mib = _mib(environ, "VOL_SIZE", action in ("create", "grow"))
    if action == "grow":
        req.new_size_mib = _mib(environ, "VOL_NEW_SIZE", True)
        if req.new_size_mib <= req.size_mib:
            raise InvalidArgument(f"VOL_NEW_SIZE ({req.new_size_mib}) must be larger "
                                  f"than VOL_SIZE ({req.size_mib})")
    if action == "snapshot":
        req.snapshot = environ.get("VOL_SNAPSHOT_NAME", "")
        if not req.snapshot:
            raise InvalidArgument("VOL_SNAPSHOT_NAME is not set")
        validate_name(req.snapshot, "snapshot")
    req.exclusive = _bool(environ.get("VOL_OPEN_EXCLUSIVE", ""), "VOL_OPEN_EXCLUSIVE")
    req.metadata = environ.get("VOL_METADATA")
    return req
