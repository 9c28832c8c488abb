"""Running a peer as a process: config, segment, SIGTERM, foreground loop.

    def main(argv=None):                       # e.g. archipelago/peers/mapperd.py
        return run_role(Mapperd, MAPPERD, argv)

run_role reads the configuration (-c PATH / $ARCHIPELAGO_CONF), validates [XSEG]
and the role's section, joins the segment (creating it if absent), binds the
role's ports and serves until SIGTERM or SIGINT; then it stops accepting, lets
the workers finish what they hold, and unbinds (queued requests fail back).
"""
import logging
import signal
import threading

import xseg

from .. import config as C
from .. import log as L
from ..errors import ArchipelagoError, Unavailable
from .config import XSEG, port_range, spec

log = logging.getLogger(__name__)


def open_segment(cfg):
    """The node's segment, joined (or created if absent) from the [XSEG] section."""
    x = cfg.section(XSEG)
    try:
        return xseg.Segment.open(spec(x))
    except xseg.XsegError as e:
        raise Unavailable(f"segment {x.segment_name}: {e.strerror}") from None


def serve_forever(peer, ready=None):
    """Run `peer` until SIGTERM/SIGINT (in the main thread) or peer.stop()."""
    stopped = threading.Event()
    plog = getattr(peer, "log", log)    # the peer's own logger has its log_level

    def on_signal(signum, frame):
        plog.info("%s: %s, stopping", peer.name, signal.Signals(signum).name)
        stopped.set()

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, on_signal)
    peer.start()
    plog.info("%s: serving ports %s", peer.name, [p.portno for p in peer.ports])
    if ready:
        ready()
    while not stopped.wait(0.5) and peer._thread.is_alive():
        pass
    peer.close()
    plog.info("%s: stopped", peer.name)


def build(cls, cfg, section, segment=None, **kwargs):
    """A peer of class cls from its role section (already validated by cfg)."""
    opts = cfg.section(section)
    start, end = port_range(opts)
    seg = segment or open_segment(cfg)
    try:
        return cls(seg, range(start, end + 1), nr_threads=opts.nr_threads,
                   nr_ops=opts.nr_ops, log_level=opts.log_level,
                   name=section.name, **kwargs)
    except xseg.XsegError as e:
        raise Unavailable(f"{section.name}: cannot bind ports {start}-{end}: "
                          f"{e.strerror}") from None


def run_role(cls, section, cfg_path=None, ready=None, **kwargs):
    """Configure, build and serve a peer; returns an exit code."""
    L.setup()
    try:
        cfg = C.load(cfg_path)
        cfg.check(XSEG, section)
        peer = build(cls, cfg, section, **kwargs)
    except ArchipelagoError as e:
        log.error("%s", e)
        return e.exit_code
    serve_forever(peer, ready)
    return 0
