"""Validation of volume and snapshot names (DESIGN §3).

Names never become paths on their own: stores map them through their own
encoding. Validating here, once, gives every entry point the same message.
"""
import re

from .errors import InvalidArgument

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,88}")
NAME_MAX = 89


def validate_name(name, what="volume"):
    """Return `name` if it is a valid volume/snapshot name, else raise InvalidArgument."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{what} name must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"{what} name {name[:20]!r}... is {len(name)} characters; "
                              f"the limit is {NAME_MAX}")
    if not NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit")
    return name


def split_snapshot(spec):
    """'VOL@SNAP' -> ('VOL', 'SNAP'); 'VOL' -> ('VOL', None). Both parts validated."""
    vol, sep, snap = spec.partition("@")
    validate_name(vol)
    if sep:
        validate_name(snap, "snapshot")
        return vol, snap
    return vol, None
