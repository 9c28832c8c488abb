"""Resume tokens: where an interrupted receive can continue (as `zfs receive -s`).

A token is "1-" + base64url(JSON) + "-" + 16 hex digits of BLAKE2b over the JSON,
so a token mangled in a copy and paste is refused instead of misleading the
sender. It holds the stream's identities (source volume, from/to snapshot names
and guids), the receiver's last committed point (next record seq, next volume
offset) and the counts and chain of the stream up to that point, and the
stream's format version ("format"; a token without it is from a version-1 stream,
which a resumed stream continues in version 1).
"""
import base64
import hashlib
import json

from ..errors import InvalidArgument

PREFIX = "1-"
FIELDS = ("volume", "from", "from_name", "to", "to_name", "seq", "offset", "counts")


def _mac(raw):
    return hashlib.blake2b(raw, digest_size=8, person=b"archsync.token").hexdigest()


def encode(state):
    """Token text for `state` (a dict with FIELDS, and "format" if not 1)."""
    d = {k: state[k] for k in FIELDS}
    if state.get("format", 1) != 1:
        d["format"] = state["format"]
    raw = json.dumps(d, sort_keys=True,
                     separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-" + _mac(raw)


def decode(text):
    """The state dict of a token; InvalidArgument for anything else."""
    text = (text or "").strip()
    body, _, mac = text[len(PREFIX):].rpartition("-")
    if not text.startswith(PREFIX) or not body:
        raise InvalidArgument("not a resume token (expected 1-...)")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise InvalidArgument("resume token is damaged (bad encoding)") from None
    if _mac(raw) != mac:
        raise InvalidArgument("resume token is damaged (checksum mismatch)")
    try:
        state = json.loads(raw)
    except ValueError:
        raise InvalidArgument("resume token is damaged (bad JSON)") from None
    if not isinstance(state, dict) or any(k not in state for k in FIELDS):
        raise InvalidArgument("resume token is incomplete")
    return state
