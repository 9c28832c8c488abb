"""The `[nbd]` configuration section, its parsers, and the node's NBD URIs.

    [nbd]
    listen = 127.0.0.1:10809 unix:/run/archipelago/nbd.sock
    allow = 127.0.0.0/8 ::1 unix
    exports_dir = /srv/raw          # optional: serve raw files DIR/NAME
    memory = scratch:1G test:64M    # optional: RAM disks NAME:SIZE
    datapath = colocated            # or peers (docs/datapath.md)
"""
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..config import NODE, Option, Section, path, words
from ..config import choice as _choice
from ..errors import InvalidArgument
from ..names import validate_name
from ..units import parse_size

DEFAULT_PORT = 10809


@dataclass(frozen=True)
class Address:
    """A listen address: kind 'unix' (path) or 'tcp' (host, port)."""

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self):
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def uri(self, export=""):
        """The NBD URI (libnbd syntax) of `export` at this address."""
        if self.kind == "unix":
            return f"nbd+unix:///{export}?socket={self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]", ""):
            host = "localhost"
        return f"nbd://{host}:{self.port}/{export}"


def parse_address(text):
    """'unix:PATH', 'HOST:PORT', '[V6]:PORT', ':PORT' or 'HOST' -> Address."""
    text = text.strip()
    if text.startswith("unix:"):
        p = text[5:]
        if not p.startswith("/"):
            raise InvalidArgument(f"{text!r}: a unix socket path must be absolute")
        return Address("unix", path=p)
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise InvalidArgument(f"{text!r}: expected [ADDRESS]:PORT")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise InvalidArgument(f"{text!r}: bad port") from None
    return Address("tcp", host=host or "0.0.0.0", port=port)


def parse_listen(text):
    addrs = [parse_address(w) for w in words(text)]
    if not addrs:
        raise InvalidArgument("at least one listen address is needed")
    return addrs


class AllowList:
    """Who may connect: IP addresses/networks, 'unix' (local socket clients), 'any'."""

    def __init__(self, entries):
        self.any = False
        self.unix = False
        self.nets = []
        for e in entries:
            if e in ("any", "*"):
                self.any = True
            elif e == "unix":
                self.unix = True
            else:
                try:
                    self.nets.append(ipaddress.ip_network(e, strict=False))
                except ValueError:
                    raise InvalidArgument(f"allow: {e!r} is not an address, network, "
                                          "'unix' or 'any'") from None
        self.entries = list(entries)

    def allows(self, kind, host=None):
        """kind 'unix' or 'tcp' (with the peer's host address)."""
        if self.any:
            return True
        if kind == "unix":
            return self.unix
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in n for n in self.nets)

    def __repr__(self):
        return f"AllowList({' '.join(self.entries)})"


def parse_allow(text):
    return AllowList(words(text))


def parse_memory(text):
    """'NAME:SIZE NAME:SIZE' -> {name: bytes} (bare sizes are MiB)."""
    disks = {}
    for w in words(text):
        name, sep, size = w.partition(":")
        if not sep:
            raise InvalidArgument(f"memory: {w!r} is not NAME:SIZE")
        disks[validate_name(name)] = parse_size(size)
    return disks


def _default_listen(cfg):
    run_dir = cfg.section(NODE).run_dir
    return [Address("tcp", host="127.0.0.1", port=DEFAULT_PORT),
            Address("unix", path=str(run_dir / "nbd.sock"))]


NBD = Section("nbd", "The NBD frontend (nbdd)", [
    Option("listen", _default_listen, parse_listen,
           "addresses to serve: HOST:PORT, [V6]:PORT, unix:PATH (port 0 = any free port)"),
    Option("allow", AllowList(["127.0.0.0/8", "::1", "unix"]), parse_allow,
           "clients allowed to connect: addresses, CIDR networks, 'unix', 'any'"),
    Option("exports_dir", None, path, "serve the raw files in this directory as exports"),
    Option("memory", {}, parse_memory, "RAM-disk exports NAME:SIZE (tests, demos)"),
    Option("volumes", True, lambda t: t.strip().lower() in ("1", "yes", "true", "on"),
           "serve archipelago volumes (when the volume client is installed)"),
    Option("datapath", "colocated", _choice("peers", "colocated"),
           "nbdd serves the vlmcd role itself with the data store in-process "
           "(colocated: `archipelago start` runs nbdd as the vlmcd role; see "
           "docs/datapath.md), or volume I/O through a separate vlmcd peer (peers)"),
])


STATUS_FILE = "nbdd.json"      # RUN_DIR/nbdd.json, written by a running nbdd


def local_uri(cfg, export, prefer="unix", run_dir=None):
    """URI of `export` on this node's nbdd (for `vlmc info`, `vlmc map`).

    Uses the addresses the running nbdd reports in RUN_DIR/nbdd.json (real port
    numbers even for port 0), else the [nbd] listen setting; a Unix socket is
    preferred (`prefer="tcp"` for remote clients).
    """
    import json
    status_path = Path(run_dir or cfg.section(NODE).run_dir) / STATUS_FILE
    try:
        addrs = [parse_address(a) for a in json.loads(status_path.read_text())["listen"]]
    except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
        addrs = []
    addrs = addrs or cfg.section(NBD).listen
    addrs = sorted(addrs, key=lambda a: a.kind != prefer)
    return addrs[0].uri(export)
