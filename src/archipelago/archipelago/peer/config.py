"""Declared configuration of the segment and of every peer role (DESIGN §6).

[XSEG] describes the node's segment.  Every role section extends PEER_OPTIONS:

    MAPPERD = role_section("mapperd", "volume maps", [
        Option("blockerb_port", 1000, integer(0), "port of the data blocker"),
    ])
    opts = cfg.section(MAPPERD)       # .portno_start, .nr_threads, ...

The [XSEG] options are the same as archipelago.peers.config's (one section, one
meaning); this module adds the spec string built from them.
"""
import hashlib
import os

from .. import config as C

PAGE_SHIFT = 12
NR_REQS = 4096


def _default_name(cfg):
    """A name private to the node's run dir, so test nodes never share a segment."""
    run = os.environ.get("ARCHIPELAGO_RUN_DIR")
    if not run:
        return "archipelago"
    return "archipelago-" + hashlib.sha256(os.path.abspath(run).encode()).hexdigest()[:12]


XSEG = C.Section("XSEG", "The shared-memory segment the peers talk through", [
    C.Option("segment_name", _default_name, C.string,
             "POSIX shm name; unique per node (derived from ARCHIPELAGO_RUN_DIR)"),
    C.Option("segment_ports", 2048, C.integer(1, 65535), "number of ports"),
    C.Option("segment_dynports", 1024, C.integer(0, 65535),
             "ports reserved for dynamic binding by clients (vlmc, tests, nbdd)"),
    C.Option("segment_size", 256 << 20, C.size("M"), "segment heap size (bare number = MiB)"),
    C.Option("request_timeout", 120.0, float,
             "seconds a client waits for a peer's reply before failing"),
])

LOG_LEVELS = ("debug", "info", "warning", "error", "DEBUG", "INFO", "WARNING", "ERROR")

PEER_OPTIONS = [
    C.Option("portno_start", None, C.integer(0, 65534), "first port the peer binds"),
    C.Option("portno_end", None, C.integer(0, 65534), "last port (default: portno_start)"),
    C.Option("nr_ops", 1024, C.integer(1, 1 << 20), "requests in flight per port"),
    C.Option("nr_threads", 1, C.integer(0, 256),
             "worker threads (0: serve inline in the loop; handlers must not call peers)"),
    C.Option("log_level", "info", C.choice(*LOG_LEVELS), "this peer's log level"),
]


def role_section(name, help, extra=()):
    """A role's section: the common peer options plus its own."""
    return C.Section(name, help, [*PEER_OPTIONS, *extra])


def spec(x):
    """The libxseg spec string of an [XSEG] section's values."""
    return (f"posix:{x.segment_name}:{x.segment_dynports}:{x.segment_ports}:"
            f"{max(1, x.segment_size >> 20)}:{PAGE_SHIFT}:{NR_REQS}")


def port_range(opts):
    """(start, end) of a role's ports, checked."""
    from ..errors import ConfigError
    start = opts.portno_start
    end = opts.portno_end if opts.portno_end is not None else start
    if start is None:
        raise ConfigError("portno_start is not set")
    if end < start:
        raise ConfigError(f"portno_end {end} is below portno_start {start}")
    return start, end
