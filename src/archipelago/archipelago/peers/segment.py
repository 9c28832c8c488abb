"""The node's segment: created by `archipelago start`, destroyed by the last stop.

The spec string comes from the [XSEG] section (archipelago.peer.config.spec).
"""
import logging

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


def create(x):
    log.info("creating segment %s", spec(x))
    _binding().Segment.create(spec(x)).close()


def destroy(x):
    log.info("destroying segment %s", x.segment_name)
    xseg = _binding()
    try:
        xseg.Segment.destroy(x.segment_name)
    except xseg.NoSuchSegment:
        pass
