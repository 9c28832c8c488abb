"""What travels between the roles: op codes, flags, and the call envelope.

Data I/O (READ, WRITE) is raw: target = object or volume name, offset, size,
and the request's data buffer holds the bytes (in for WRITE, out for READ), so
the hot path never encodes anything. Every other request is a *call*: flag
XF_CALL set, and the buffer holds an envelope

    u32 little-endian header length | JSON header | raw payload

whose header names the method ("m") and its arguments; the reply uses the
same envelope (JSON result, optional payload). The op code of a call is the
xseg op that best names it (CREATE, SNAPSHOT, MAPW, ACQUIRE, ...), so `xseg`
traces and port statistics stay readable.

A failed request carries an errno (the xseg request's `err`) and, when the
buffer has room, the message as UTF-8 text, so an operator sees "volume x is
locked by nodeb:mapperd" rather than "EBUSY".
"""
import json
import struct

from ..errors import ArchipelagoError, from_errno

# Op codes: the numbers of libxseg's enum xseg_op (include/xseg.h).
X_PING, X_READ, X_WRITE, X_SYNC, X_TRUNCATE = 0, 1, 2, 3, 4
X_DELETE, X_ACQUIRE, X_RELEASE, X_COPY, X_CLONE = 5, 6, 7, 8, 9
X_COMMIT, X_INFO, X_MAPR, X_MAPW, X_OPEN = 10, 11, 12, 13, 14
X_CLOSE, X_SNAPSHOT, X_HASH, X_CREATE, X_RENAME = 15, 16, 17, 18, 19
X_FLUSH, X_UPDATE = 20, 21

OP_NAMES = {v: k[2:] for k, v in dict(globals()).items() if k.startswith("X_")}

# Flags: libxseg's, plus XF_CALL (ours; the library passes unknown bits through).
XF_NOSYNC, XF_FLUSH, XF_FUA, XF_FORCE = 1, 2, 4, 8
XF_CALL = 1 << 8

_HDR = struct.Struct("<I")
CALL_REPLY_CAP = 64 << 10      # room for a call's reply (peers grow it if need be)


def pack(header, payload=b""):
    """The envelope bytes for `header` (a JSON-able dict) and a raw payload."""
    h = json.dumps(header, separators=(",", ":")).encode()
    return b"".join((_HDR.pack(len(h)), h, bytes(payload)))


def unpack(buf):
    """(header dict, payload memoryview) from envelope bytes."""
    buf = memoryview(buf)
    if len(buf) < _HDR.size:
        raise ArchipelagoError("malformed call: short envelope", errno=22)
    (n,) = _HDR.unpack_from(buf)
    if _HDR.size + n > len(buf):
        raise ArchipelagoError("malformed call: header overruns the buffer", errno=22)
    try:
        header = json.loads(bytes(buf[_HDR.size:_HDR.size + n]))
    except ValueError:
        raise ArchipelagoError("malformed call: header is not JSON", errno=22) from None
    return header, buf[_HDR.size + n:]


def error_from(err, message):
    """The ArchipelagoError a client raises for a failed request."""
    return from_errno(err, message or f"request failed ({err})")


def lease_to_json(lease):
    if lease is None:
        return None
    return {"name": lease.name, "owner": lease.owner, "generation": lease.generation,
            "expires": lease.expires}


def lease_from_json(d):
    from ..store.base import Lease
    if d is None:
        return None
    return Lease(d["name"], d["owner"], int(d["generation"]), float(d["expires"]))
