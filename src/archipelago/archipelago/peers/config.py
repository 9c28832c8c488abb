"""Peer configuration: [XSEG], [PEERS], [ARCHIPELAGO] and one section per role (DESIGN §6).

The embedded default (no /etc/archipelago/archipelago.conf) is a single-node
setup under the node's state directory, as the original archipelago shipped it:

    [PEERS]    ROLES = ORDER = blockerb blockerm mapperd vlmcd
    [blockerb] type = filed, port 1000, archip_dir = STATE/blocks   (volume data)
    [blockerm] type = filed, port 1002, archip_dir = STATE/maps     (maps and locks)
    [mapperd]  type = mapperd, port 1001, blockerb_port 1000, blockerm_port 1002
    [vlmcd]    type = vlmcd, port 500, mapper_port 1001, blocker_port 1000

A role section may omit anything its well-known name has a default for;
`check(cfg)` validates every section, the port layout and the cross-references
between roles, so a typo fails `archipelago start` with the file, section and key.
"""
from dataclasses import dataclass
from types import SimpleNamespace

from .. import config as C
from ..errors import ConfigError
from ..peer.config import XSEG  # one [XSEG] section for the framework and the roles
from .blocker import OPTIONS as BLOCKER
from .mapperd import OPTIONS as MAPPERD
from .vlmcd import OPTIONS as VLMCD

PEERS = C.Section("PEERS", "Which roles this node runs and in which order", [
    C.Option("roles", ["blockerb", "blockerm", "mapperd", "vlmcd"], C.words,
             "role sections to run"),
    C.Option("order", lambda cfg: None, C.words, "start order (default: ROLES order)"),
])

ARCHIPELAGO = C.Section("ARCHIPELAGO", "Process identity of the peers", [
    C.Option("user", "", C.string, "run peers as this user when started as root (-u: ignore)"),
    C.Option("group", "", C.string, "and this group"),
    C.Option("umask", 0o007, C.integer(0, 0o777), "umask of the peers"),
])


def _state(sub):
    return lambda cfg: cfg.section(C.NODE).state_dir / sub


# Options every role has; the role's `type` adds its own (ROLE_OPTIONS).
COMMON = [
    C.Option("type", None, C.string, "filed, rados, memd, mapperd or vlmcd"),
    C.Option("portno_start", None, C.integer(0, 65535), "first port this role binds"),
    C.Option("portno_end", None, C.integer(0, 65535), "last port (default portno_start)"),
    C.Option("nr_ops", 1024, C.integer(1, 65536),
             "requests a port may hold at once (incoming and its own outgoing)"),
    C.Option("nr_threads", 8, C.integer(0, 256),
             "worker threads (a write waiting for a lock holds one); 0 = serve in the "
             "loop, for a data blocker only (mapperd and vlmcd wait for other peers)"),
    C.Option("log_level", "INFO", C.choice("DEBUG", "INFO", "WARNING", "ERROR"),
             "log level of the role's log file"),
]
# Each role type declares its own options next to its code (blocker.py, ...).


def _rados_options():
    # The RADOS store declares its own settings (pool, namespace, cephx_id, ...);
    # its role section is this one, so they are read from here too.
    from ..store.rados import RADOS
    return [o for o in RADOS.options if o.name != "type"]


ROLE_OPTIONS = {
    "filed": BLOCKER, "memd": [], "rados": _rados_options, "mapperd": MAPPERD,
    "vlmcd": VLMCD,
}
BLOCKER_TYPES = ("filed", "memd", "rados")

# Defaults of the well-known role names (the original's layout and ports).
WELL_KNOWN = {
    "blockerb": {"type": "filed", "portno_start": 1000, "archip_dir": _state("blocks")},
    "blockerm": {"type": "filed", "portno_start": 1002, "archip_dir": _state("maps")},
    "mapperd": {"type": "mapperd", "portno_start": 1001},
    "vlmcd": {"type": "vlmcd", "portno_start": 500},
}


@dataclass
class Role:
    """One validated role section."""

    name: str
    type: str
    opts: SimpleNamespace
    host: str = ""      # "nbdd": the role runs inside nbdd's process ([nbd] datapath)

    @property
    def port(self):
        return self.opts.portno_start

    @property
    def is_blocker(self):
        return self.type in BLOCKER_TYPES


def role_spec(name, typ):
    """The Section for role `name` of type `typ`, with the well-known defaults applied."""
    known = WELL_KNOWN.get(name, {})
    extra = ROLE_OPTIONS[typ]
    extra = extra() if callable(extra) else extra
    opts = [C.Option(o.name, known.get(o.name, o.default), o.parse, o.help)
            for o in COMMON + extra]
    return C.Section(name, f"{typ} role", opts)


def role(cfg, name):
    """The validated Role `name` from `cfg`; ConfigError names what is wrong."""
    typ = cfg.raw(name).get("type", "").strip() or WELL_KNOWN.get(name, {}).get("type")
    if not typ:
        if not cfg.has_section(name):
            raise ConfigError(f"{cfg.source}: [PEERS] names role {name!r} but there is no "
                              f"[{name}] section")
        raise ConfigError(f"{cfg.source}: [{name}] type is missing "
                          f"(one of: {', '.join(ROLE_OPTIONS)})")
    if typ not in ROLE_OPTIONS:
        raise ConfigError(f"{cfg.source}: [{name}] type = {typ!r}: must be one of: "
                          f"{', '.join(ROLE_OPTIONS)}")
    opts = cfg.section(role_spec(name, typ))
    if opts.portno_start is None:
        raise ConfigError(f"{cfg.source}: [{name}] portno_start is required")
    if opts.portno_end is None:
        opts.portno_end = opts.portno_start
    if opts.portno_end < opts.portno_start:
        raise ConfigError(f"{cfg.source}: [{name}] portno_end {opts.portno_end} is below "
                          f"portno_start {opts.portno_start}")
    if opts.nr_threads == 0 and typ not in BLOCKER_TYPES:
        raise ConfigError(f"{cfg.source}: [{name}] nr_threads = 0 is only for blockers: "
                          f"a {typ} waits for other peers and needs worker threads")
    if typ == "filed" and opts.archip_dir is None:
        raise ConfigError(f"{cfg.source}: [{name}] archip_dir is required for type filed")
    return Role(name, typ, opts)


def roles(cfg):
    """Every configured Role in start order."""
    peers = cfg.section(PEERS)
    order = peers.order or peers.roles
    if sorted(order) != sorted(peers.roles):
        raise ConfigError(f"{cfg.source}: [PEERS] ORDER {' '.join(order)} must list the "
                          f"same roles as ROLES {' '.join(peers.roles)}")
    if len(set(order)) != len(order):
        raise ConfigError(f"{cfg.source}: [PEERS] ROLES lists a role twice")
    return [role(cfg, name) for name in order]


def check(cfg):
    """Validate the whole node configuration; returns (xseg, [Role])."""
    cfg.check(C.NODE, ARCHIPELAGO)
    xseg = cfg.section(XSEG)
    rs = roles(cfg)
    _check_ports(cfg, xseg, rs)
    _check_references(cfg, rs)
    return xseg, rs


def _check_ports(cfg, xseg, rs):
    static = xseg.segment_ports - xseg.segment_dynports
    owner = {}
    for r in rs:
        if r.opts.portno_end >= static:
            raise ConfigError(f"{cfg.source}: [{r.name}] port {r.opts.portno_end} is beyond "
                              f"the {static} static ports of the segment ([XSEG] "
                              "SEGMENT_PORTS - SEGMENT_DYNPORTS)")
        for p in range(r.opts.portno_start, r.opts.portno_end + 1):
            if p in owner:
                raise ConfigError(f"{cfg.source}: [{r.name}] port {p} is also used by "
                                  f"[{owner[p]}]")
            owner[p] = r.name


def _check_references(cfg, rs):
    by_port = {r.port: r for r in rs}
    refs = {"mapperd": [("blockerb_port", True), ("blockerm_port", True)],
            "vlmcd": [("mapper_port", False), ("blocker_port", True)]}
    for r in rs:
        for key, want_blocker in refs.get(r.type, []):
            port = getattr(r.opts, key)
            target = by_port.get(port)
            if target is None:
                raise ConfigError(f"{cfg.source}: [{r.name}] {key} = {port}: no role of "
                                  "this node listens there")
            if want_blocker != target.is_blocker or (not want_blocker
                                                     and target.type != "mapperd"):
                want = "a blocker" if want_blocker else "mapperd"
                raise ConfigError(f"{cfg.source}: [{r.name}] {key} = {port} is [{target.name}]"
                                  f" ({target.type}); expected {want}")


NBDD = "nbdd"     # the NBD frontend as a supervised process (not a [PEERS] role)


def datapath(cfg):
    """[nbd] datapath: 'colocated' (nbdd hosts the vlmcd role) or 'peers'."""
    from ..nbd.settings import NBD  # validates the whole [nbd] section
    return cfg.section(NBD).datapath


def processes(cfg, rs):
    """The node's processes in start order, as Roles (what `archipelago start` runs).

    A node with a vlmcd role serves its volumes over NBD: with `[nbd] datapath =
    colocated` (the default) nbdd serves the first vlmcd role itself, so that
    role's process is nbdd (host "nbdd"); with `peers`, nbdd is a process of its
    own after every role. A node without vlmcd (blockers, mapperd) runs no nbdd."""
    out = list(rs)
    vlmcd = next((i for i, r in enumerate(out) if r.type == "vlmcd"), None)
    if vlmcd is None:
        return out
    if datapath(cfg) == "colocated":
        r = out[vlmcd]
        out[vlmcd] = Role(r.name, r.type, r.opts, host=NBDD)
    else:
        out.append(Role(NBDD, NBDD, SimpleNamespace(portno_start=None, portno_end=None,
                                                    log_level="INFO")))
    return out


def find_type(rs, typ):
    """The first role of type `typ` (clients look up vlmcd/mapperd ports here)."""
    for r in rs:
        if r.type == typ:
            return r
    raise ConfigError(f"no {typ} role configured in [PEERS] ROLES")
