"""Small structured payloads in a request's data buffer.

The envelope (the same as archipelago.peers.protocol's): a little-endian u32
header length, a JSON header, then raw bytes.  COPY carries its source name
this way; the reply of a call can carry a result the same way.

    req.data[:] = encode({"src": "obj-a"})        # after sizing the request
    header, raw = decode(req.data)
"""
import json
import struct

from ..errors import InvalidArgument

_LEN = struct.Struct("<I")


def encode(header, raw=b""):
    """Envelope bytes for a JSON-able header and optional raw bytes."""
    h = json.dumps(header, separators=(",", ":")).encode()
    return b"".join((_LEN.pack(len(h)), h, bytes(raw)))


def size(header, raw=b""):
    """How many bytes encode(header, raw) takes."""
    return len(encode(header, raw))


def decode(buf):
    """(header, raw memoryview) from envelope bytes; InvalidArgument if malformed."""
    buf = memoryview(buf)
    if len(buf) < _LEN.size:
        raise InvalidArgument("malformed payload: shorter than its length field")
    (n,) = _LEN.unpack_from(buf)
    if _LEN.size + n > len(buf):
        raise InvalidArgument("malformed payload: header overruns the buffer")
    try:
        header = json.loads(bytes(buf[_LEN.size:_LEN.size + n]))
    except ValueError:
        raise InvalidArgument("malformed payload: header is not JSON") from None
    return header, buf[_LEN.size + n:]
