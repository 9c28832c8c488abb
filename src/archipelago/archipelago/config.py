"""The node's INI configuration, declared next to the code that uses it.

Each module declares the section it reads with `Section(name, help, options)`;
`Config.section(SPEC)` returns the validated values or raises ConfigError naming
the file, section and key. Daemons call `Config.check(...)` for every section
they use before doing any work, so a bad setting fails at start, not at 3 a.m.

    NBD = Section("nbd", "NBD frontend", [
        Option("listen", "127.0.0.1:10809", string, "address:port or unix:PATH"),
    ])
    listen = load().section(NBD).listen

File lookup: `-c PATH` (passed as `path`), else $ARCHIPELAGO_CONF, else
/etc/archipelago/archipelago.conf; a missing default file means "all defaults"
(the embedded configuration), a missing explicit file is an error.
Keys are case-insensitive ([XSEG] SEGMENT_SIZE == segment_size).
"""
import configparser
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError, InvalidArgument
from .units import parse_size

DEFAULT_PATH = "/etc/archipelago/archipelago.conf"


# -- value parsers: str -> value, raising ValueError/InvalidArgument with a reason --

def string(text):
    return text.strip()


def integer(lo=None, hi=None):
    def parse(text):
        value = int(text, 0)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be between {lo} and {hi}")
        return value
    return parse


def boolean(text):
    t = text.strip().lower()
    if t in ("1", "yes", "true", "on"):
        return True
    if t in ("0", "no", "false", "off"):
        return False
    raise ValueError("must be yes/no, true/false, on/off or 1/0")


def choice(*allowed):
    def parse(text):
        if text.strip() not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return text.strip()
    return parse


def size(default_unit=""):
    return lambda text: parse_size(text, default_unit, sector=0)


def words(text):
    """A whitespace- or comma-separated list."""
    return [w for w in text.replace(",", " ").split() if w]


def path(text):
    return Path(os.path.expandvars(text.strip())).expanduser()


@dataclass(frozen=True)
class Option:
    name: str
    default: object          # a value (not parsed) or a callable(config) -> value
    parse: object = string
    help: str = ""


@dataclass(frozen=True)
class Section:
    name: str
    help: str
    options: list = field(default_factory=list)
    strict: bool = True      # unknown keys are errors (catches typos)

    def option(self, name):
        for opt in self.options:
            if opt.name.lower() == name.lower():
                return opt
        return None


class Config:
    """A parsed INI file plus the environment overrides."""

    def __init__(self, parser, source):
        self._parser = parser
        self.source = source   # the file path, or "<defaults>"

    def has_section(self, name):
        return self._parser.has_section(name)

    def sections(self):
        return self._parser.sections()

    def raw(self, name):
        """The section's raw key/value strings (empty if the section is absent)."""
        return dict(self._parser.items(name)) if self._parser.has_section(name) else {}

    def section(self, spec, name=None):
        """Validated values of `spec`, read from section `name` (default spec.name)."""
        name = name or spec.name
        raw = self.raw(name)
        values = {}
        for key in raw:
            if spec.strict and spec.option(key) is None:
                known = ", ".join(o.name for o in spec.options)
                raise ConfigError(f"{self.source}: [{name}] unknown setting {key!r} "
                                  f"(known: {known})")
        for opt in spec.options:
            key = opt.name.lower()
            if key in raw:
                try:
                    value = opt.parse(raw[key])
                except (ValueError, InvalidArgument) as e:
                    raise ConfigError(f"{self.source}: [{name}] {opt.name} = {raw[key]!r}: "
                                      f"{e}") from None
            else:
                value = opt.default(self) if callable(opt.default) else opt.default
            values[opt.name.lower()] = value
        return SimpleNamespace(**values)

    def check(self, *specs):
        """Validate several sections at start; raises the first ConfigError."""
        for spec in specs:
            if isinstance(spec, tuple):
                self.section(*spec)
            else:
                self.section(spec)


def find_path(path=None):
    """(path, explicit): the file to read and whether the user named it."""
    if path:
        return Path(path), True
    if os.environ.get("ARCHIPELAGO_CONF"):
        return Path(os.environ["ARCHIPELAGO_CONF"]), True
    return Path(DEFAULT_PATH), False


def load(path=None):
    """Read the configuration; see the module docstring for the lookup order."""
    p, explicit = find_path(path)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str.lower
    if p.exists():
        try:
            parser.read(p)
        except configparser.Error as e:
            raise ConfigError(f"{p}: {e}") from None
        return Config(parser, str(p))
    if explicit:
        raise ConfigError(f"configuration file {p} does not exist")
    return Config(parser, "<defaults>")


def from_text(text, source="<text>"):
    """A Config from a string (tests and generated configs)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str.lower
    try:
        parser.read_string(text)
    except configparser.Error as e:
        raise ConfigError(f"{source}: {e}") from None
    return Config(parser, source)


def _run_dir(cfg):
    return Path(os.environ.get("ARCHIPELAGO_RUN_DIR", "/run/archipelago"))


def _state_dir(cfg):
    env = os.environ.get("ARCHIPELAGO_RUN_DIR")
    return Path(env) / "state" if env else Path("/var/lib/archipelago")


def _log_dir(cfg):
    env = os.environ.get("ARCHIPELAGO_RUN_DIR")
    return Path(env) / "log" if env else Path("/var/log/archipelago")


# The node itself: who it is and where its private state lives. Tests and the
# one-machine cluster give each node its own ARCHIPELAGO_RUN_DIR (sanlock's
# SANLOCK_RUN_DIR is the model), so several nodes share a machine.
NODE = Section("node", "This node's identity and private directories", [
    Option("name", lambda cfg: socket.gethostname().split(".")[0], string,
           "node name; also the routing key of its daemon's queue"),
    Option("role", "all", choice("frontend", "nas", "compute", "all"),
           "what this node runs"),
    Option("run_dir", _run_dir, path, "pid files, sockets (default $ARCHIPELAGO_RUN_DIR)"),
    Option("state_dir", _state_dir, path, "databases and local replicas"),
    Option("log_dir", _log_dir, path, "peer and daemon logs"),
])
