"""Control-plane messages: JSON objects with a schema version, an action and an
idempotency key, checked against a per-action field table.

    {"v": 1, "action": "map", "request_id": "5f0c...", "volume": "vm1-disk", ...}

Replies are messages too: the same `action` (or the callback's, e.g. volume_mapped),
the same `request_id`, plus `status` ("success" or "error") and `error` (a message
for an operator, or null) and `kind` (the ArchipelagoError class name) on errors.
"""
import json
import re
import uuid
from dataclasses import dataclass

from .. import errors
from ..names import validate_name
from ..units import parse_size
from .errors import MessageError

VERSION = 1
EXCHANGE = "rocks.vm-manage"                 # direct; routing key = node name
HEARTBEAT_EXCHANGE = "rocks.vm-manage.heartbeat"  # fanout; liveness of every daemon
MAX_REQUEST = 64 * 1024                      # bytes; requests are small
MAX_REPLY = 8 << 20                          # listings of many volumes
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}")
SUCCESS, ERROR = "success", "error"


def new_request_id():
    return uuid.uuid4().hex


def validate_host(name, what="host"):
    """A node name: also a routing key and a queue name."""
    if not isinstance(name, str) or not HOST_RE.fullmatch(name):
        raise errors.InvalidArgument(f"invalid {what} name {name!r}: use letters, digits, "
                                     "'.' and '-', starting with a letter or digit")
    return name


def validate_pool(name):
    return validate_name(name, "pool")


def validate_size(value):
    """Sizes travel as bytes (int); the frontend parses '10G'."""
    return parse_size(value, "", what="size")


@dataclass(frozen=True)
class Field:
    """One field of an action: JSON type, required or not, an optional checker."""

    type: type | tuple
    required: bool = True
    check: object = None
    default: object = None


def _type_name(t):
    names = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object",
             list: "a list", float: "a number"}
    if isinstance(t, tuple):
        return " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def _is(value, t):
    types = t if isinstance(t, tuple) else (t,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def encode(msg, limit=MAX_REQUEST):
    data = json.dumps(msg, separators=(",", ":"), sort_keys=True).encode()
    if len(data) > limit:
        raise MessageError(f"message of {len(data)} bytes exceeds the {limit}-byte limit")
    return data


def decode(body, limit=MAX_REQUEST):
    """Bytes -> message dict with valid v, action and request_id; MessageError otherwise."""
    if len(body) > limit:
        raise MessageError(f"message of {len(body)} bytes exceeds the {limit}-byte limit")
    try:
        msg = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise MessageError(f"message is not valid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise MessageError("message must be a JSON object")
    if msg.get("v") != VERSION:
        raise MessageError(f"unsupported message version {msg.get('v')!r} (expected {VERSION})")
    if not isinstance(msg.get("action"), str) or not msg["action"]:
        raise MessageError("message has no 'action'")
    rid = msg.get("request_id")
    if not isinstance(rid, str) or not REQUEST_ID_RE.fullmatch(rid):
        raise MessageError("message has no valid 'request_id' (1-128 of [A-Za-z0-9._:-])")
    return msg


def decode_reply(body, limit=MAX_REPLY):
    """A reply: a JSON object with a status (replies to malformed requests carry no
    usable action or request_id, so those are not required)."""
    if len(body) > limit:
        raise MessageError(f"reply of {len(body)} bytes exceeds the {limit}-byte limit")
    try:
        msg = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise MessageError(f"reply is not valid JSON: {e}") from None
    if not isinstance(msg, dict) or msg.get("status") not in (SUCCESS, ERROR):
        raise MessageError("reply is not a JSON object with a status")
    return msg


def validate(msg, fields):
    """The action's fields from `msg`, type-checked and normalised by their checkers."""
    out = {}
    known = set(fields) | {"v", "action", "request_id", "status", "error", "kind"}
    unknown = sorted(set(msg) - known)
    if unknown:
        raise MessageError(f"{msg['action']}: unknown field(s) {', '.join(unknown)}")
    for name, spec in fields.items():
        if name not in msg or msg[name] is None:
            if spec.required:
                raise MessageError(f"{msg['action']}: missing field {name!r}")
            out[name] = spec.default
            continue
        value = msg[name]
        if not _is(value, spec.type):
            raise MessageError(f"{msg['action']}: field {name!r} must be "
                               f"{_type_name(spec.type)}, not {type(value).__name__}")
        out[name] = spec.check(value) if spec.check else value
    return out


def request(action, request_id=None, **fields):
    return {"v": VERSION, "action": action, "request_id": request_id or new_request_id(),
            **fields}


def success(msg, action=None, **fields):
    return {"v": VERSION, "action": action or msg["action"], "request_id": msg["request_id"],
            "status": SUCCESS, "error": None, **fields}


def _kind(err):
    """The nearest archipelago.errors class name of `err` (what the frontend re-raises)."""
    for cls in type(err).__mro__:
        if getattr(errors, cls.__name__, None) is cls:
            return cls.__name__
    return "ArchipelagoError"


def failure(msg, err, action=None):
    """An error reply for `msg` (a dict, possibly partial) from an exception or text."""
    kind = _kind(err)
    rid = msg.get("request_id") if isinstance(msg, dict) else None
    act = action or (msg.get("action") if isinstance(msg, dict) else None)
    reply = {"v": VERSION, "action": act if isinstance(act, str) else "error",
             "request_id": rid if isinstance(rid, str) else None,
             "status": ERROR, "error": str(err), "kind": kind}
    if isinstance(msg, dict) and isinstance(msg.get("volume"), str):
        reply["volume"] = msg["volume"]     # callbacks are matched by volume
    return reply


def raise_for_error(reply):
    """Turn an error reply into the matching ArchipelagoError (frontend side)."""
    if reply.get("status") == SUCCESS:
        return reply
    cls = getattr(errors, str(reply.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.ArchipelagoError)):
        cls = errors.ArchipelagoError
    raise cls(reply.get("error") or "the daemon reported an error without a message")
