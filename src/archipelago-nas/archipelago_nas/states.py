"""Mapping states and the transitions allowed between them (DESIGN §4).

Every change goes through `transition()`, which checks it, records it with time and
reason in `transitions`, and logs it at INFO.
"""
import logging
import time

from archipelago.errors import ArchipelagoError

from .models import Transition

log = logging.getLogger(__name__)

UNMAPPED = "unmapped"
MAPPING = "mapping"
MAPPED = "mapped"
SYNCING_TO_HOST = "syncing-to-host"
MAPPED_LOCAL = "mapped-local"
SYNCING_TO_NAS = "syncing-to-nas"
UNMAPPING = "unmapping"
ERROR = "error"
STATES = (UNMAPPED, MAPPING, MAPPED, SYNCING_TO_HOST, MAPPED_LOCAL, SYNCING_TO_NAS,
          UNMAPPING, ERROR)

ALLOWED = {
    UNMAPPED: {MAPPING},
    MAPPING: {MAPPED, SYNCING_TO_HOST, UNMAPPED, ERROR},
    MAPPED: {UNMAPPING, ERROR},
    SYNCING_TO_HOST: {MAPPED_LOCAL, SYNCING_TO_NAS, UNMAPPED, ERROR},
    MAPPED_LOCAL: {SYNCING_TO_NAS, ERROR},
    SYNCING_TO_NAS: {MAPPED_LOCAL, UNMAPPED, ERROR},
    UNMAPPING: {UNMAPPED, MAPPED, ERROR},
    ERROR: {UNMAPPING, UNMAPPED, MAPPED, SYNCING_TO_NAS, MAPPED_LOCAL},
}
# Work in flight: another map/unmap/delete must wait for it (or for its timeout).
IN_PROGRESS = {MAPPING, UNMAPPING, SYNCING_TO_HOST, SYNCING_TO_NAS}


class BadTransition(ArchipelagoError):
    """A state change the state machine forbids (a bug, never user input)."""


def transition(session, mapping, new, reason, *, force=False):
    """Move `mapping` to `new`, recording why. `force` (operator clean) skips the check."""
    old = mapping.state or UNMAPPED
    if new not in STATES:
        raise BadTransition(f"unknown mapping state {new!r}")
    if not force and new != old and new not in ALLOWED[old]:
        raise BadTransition(f"volume {mapping.volume}: {old} -> {new} is not allowed")
    now = time.time()
    mapping.state = new
    mapping.since = now
    session.add(Transition(volume=mapping.volume, old=old, new=new, reason=reason, at=now))
    log.info("volume %s: %s -> %s (%s)", mapping.volume, old, new, reason)
