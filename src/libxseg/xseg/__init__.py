"""xseg: requests between processes through a shared-memory segment (libxseg).

    with xseg.Segment.create("posix:demo:8:16:64") as seg:
        with seg.bind(1, owner="client") as client, seg.bind(2) as server:
            req = client.get(5, op=xseg.Op.WRITE, target="vol1", offset=0)
            req.data[:] = b"hello"          # straight into the segment
            client.submit(2, req)
            [r] = server.accept()
            server.respond(r)                # SERVED unless told otherwise
            [reply] = client.receive()
            client.put(reply)

See docs/xseg.md for the spec string, ports, ops and recovery.
"""
from .constants import DEFAULT_SPEC, MAX_PATH, MAX_TARGETLEN, VERSION, Flag, Op, State
from .errors import (
    BadArgument,
    NoBuffers,
    NoFreePort,
    NoSuchSegment,
    NotOwner,
    PeerDied,
    PortInUse,
    PortNotBound,
    PortUnbound,
    RequestFailed,
    RequestTooLarge,
    SegmentExists,
    VersionMismatch,
    XsegError,
)
from .port import Port
from .request import Request
from .segment import Segment, parse_spec

__all__ = [
    "DEFAULT_SPEC", "MAX_PATH", "MAX_TARGETLEN", "VERSION", "BadArgument", "Flag",
    "NoBuffers", "NoFreePort", "NoSuchSegment", "NotOwner", "Op", "PeerDied", "Port",
    "PortInUse", "PortNotBound", "PortUnbound", "Request", "RequestFailed",
    "RequestTooLarge", "Segment", "SegmentExists", "State", "VersionMismatch", "XsegError",
    "parse_spec",
]
