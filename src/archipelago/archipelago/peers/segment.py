"""The node's segment: created by `archipelago start`, destroyed by the last stop.

The spec follows libxseg's "type:name:dynports:ports:heapMiB:page_shift:nr_reqs"
(XSEG_DEFAULT_SPEC in include/xseg.h), built from the [XSEG] section.
"""
import logging

from ..errors import Unavailable

log = logging.getLogger(__name__)

PAGE_SHIFT = 12
NR_REQS = 4096


def _binding():
    try:
        import xseg
    except ImportError:
        raise Unavailable("the xseg binding is not installed (src/libxseg: "
                          "pip install -e src/libxseg)") from None
    return xseg


def spec(x):
    """The libxseg spec string of an [XSEG] section."""
    return (f"posix:{x.segment_name}:{x.segment_dynports}:{x.segment_ports}:"
            f"{max(1, x.segment_size >> 20)}:{PAGE_SHIFT}:{NR_REQS}")


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
        xseg.Segment.destroy_name(x.segment_name)
    except xseg.NoSuchSegment:
        pass
