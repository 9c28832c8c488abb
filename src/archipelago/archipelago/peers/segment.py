"""The node's segment: created by `archipelago start`, destroyed by the last stop.

The spec string comes from the [XSEG] section (archipelago.peer.config.spec).
"""
import logging
import os

from ..errors import Unavailable

log = logging.getLogger(__name__)

def _binding():
    try:
        import xseg
    except ImportError:
        raise Unavailable("the xseg binding is not installed (src/libxseg: "
                          "pip install -e src/libxseg)") from None
    return xseg


def spec(x):
    from ..peer.config import spec as _spec
    return _spec(x)


def exists(x):
    xseg = _binding()
    try:
        seg = xseg.Segment.join(x.segment_name)
    except xseg.NoSuchSegment:
        return False
    seg.close()
    return True


def create(x, owner=None):
    """Create the segment; `owner` (uid, gid): hand it to the peers' user (they run
    unprivileged, the supervisor may be root)."""
    log.info("creating segment %s", spec(x))
    _binding().Segment.create(spec(x)).close()
    if owner is not None:
        os.chown(f"/dev/shm/{x.segment_name}", *owner)


def destroy(x):
    log.info("destroying segment %s", x.segment_name)
    xseg = _binding()
    try:
        xseg.Segment.destroy(x.segment_name)
    except xseg.NoSuchSegment:
        pass
