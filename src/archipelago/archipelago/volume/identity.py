"""Snapshot identities: unique across nodes, not just names.

Every snapshot record carries a `guid`: random when the snapshot is taken, or the
sender's guid when `archipelago.sync` receives it, so the same snapshot has the
same identity on every node that holds a copy (as ZFS snapshot GUIDs). Incremental
streams name their base and target by guid. Records written before guids existed
get a derived identity, `<volume id>.<generation>`, also unique across nodes.
"""
import re

from ..errors import Exists, InvalidArgument
from .format import hexuid, new_uid

GUID_RE = re.compile(r"[0-9a-f][0-9a-f.]{7,63}")


def snapshot_guid(hdr, rec):
    """The identity of snapshot record `rec` of volume header `hdr` (None: a head)."""
    if rec is None:
        return None
    return rec.get("guid") or f"{hdr['id']}.{rec['gen']}"


def new_guid(hdr, guid=None):
    """The guid for a new snapshot of `hdr`: `guid` if given (validated, unused in this
    volume), else a fresh random one."""
    if guid is None:
        return hexuid(new_uid())
    if not isinstance(guid, str) or not GUID_RE.fullmatch(guid):
        raise InvalidArgument(f"bad snapshot identity {guid!r} (8-64 lowercase hex digits)")
    if any(snapshot_guid(hdr, r) == guid for r in hdr["snapshots"]):
        raise Exists(f"volume {hdr['name']} already has a snapshot with identity {guid}")
    return guid
