"""The [sync] section: which transport moves streams and how it is set up.

    [sync]
    transport = tcp              # tcp | ssh | bbcp | file: the default for `vlmc send --to`
    listen = 10.1.0.5:7450       # where `vlmc receive --listen` (and the daemons) bind;
                                 # empty: no TCP receiver on this node (never a wildcard
                                 # bind unless configured so)
    port = 7450                  # the port `--to HOST` means when it names none
    auth_token_file = /etc/archipelago/sync.token   # shared secret of the TCP transport
    connect_timeout = 30         # seconds to connect / authenticate / wait for a result
    idle_timeout = 300           # seconds a daemon's TCP receiver waits for more of a
                                 # stream before it checkpoints and gives up on it
    ssh_command = ssh -o BatchMode=yes
    bbcp_command = bbcp -s 4 -w 2M
    remote_vlmc = vlmc           # the command run on the far side by ssh and bbcp
    limit =                      # default --limit (e.g. 50M); empty: unlimited
    state_dir =                  # receive jobs (default: [node] state_dir/sync)
    checkpoint_interval = 5      # seconds between a receiver's checkpoints
    checkpoint_bytes = 64M       # and bytes at most
    spool_max = 0                # incremental streams up to this size spool locally
                                 # (0: none; all are staged in a clone adopted at commit)

ARCHIPELAGO_SYNC_TOKEN (the secret itself) overrides auth_token_file.
"""
import os
import shlex

from .. import config as C
from ..errors import ConfigError, InvalidArgument
from .ratelimit import parse_rate

DEFAULT_PORT = 7450


def _state_dir(cfg):
    return cfg.section(C.NODE).state_dir / "sync"


def _optional_path(text):
    return C.path(text) if text.strip() else None


SYNC = C.Section("sync", "Send/receive streams between nodes (archipelago.sync)", [
    C.Option("transport", "tcp", C.choice("tcp", "ssh", "bbcp", "file"),
             "transport of `vlmc send --to` and of the daemons' syncs"),
    C.Option("listen", "", C.string, "ADDR:PORT the TCP receiver binds (empty: none)"),
    C.Option("port", DEFAULT_PORT, C.integer(1, 65535), "default TCP port"),
    C.Option("auth_token_file", None, _optional_path, "file holding the TCP shared secret"),
    C.Option("connect_timeout", 30.0, float, "seconds to connect and authenticate"),
    C.Option("idle_timeout", 300.0, float,
             "seconds a daemon's TCP receiver waits for more of a stream (a cut link) "
             "before it checkpoints it and takes the next sender"),
    C.Option("ssh_command", ["ssh", "-o", "BatchMode=yes"], shlex.split,
             "ssh command line (before the host)"),
    C.Option("bbcp_command", ["bbcp", "-s", "4", "-w", "2M"], shlex.split,
             "bbcp command line (before -N io SRC DST)"),
    C.Option("remote_vlmc", ["vlmc"], shlex.split, "vlmc on the far side (ssh, bbcp)"),
    C.Option("limit", None, parse_rate, "default rate limit (e.g. 50M); empty: none"),
    C.Option("state_dir", _state_dir, C.path, "receive jobs and their resume state"),
    C.Option("checkpoint_interval", 5.0, float,
             "seconds between a receiver's checkpoints (what a resume can skip)"),
    C.Option("checkpoint_bytes", 64 << 20, C.size(), "bytes between checkpoints at most"),
    C.Option("spool_max", 0, C.size(),
             "incremental streams up to this size are spooled to state_dir (written "
             "into the volume at commit); the others (all with 0) are written into a "
             "staging clone as they arrive, adopted by the volume at commit"),
])


def load(conf=None):
    """The validated [sync] settings of the node configured by `conf`."""
    return C.load(conf).section(SYNC)


def secret(settings):
    """The TCP transport's shared secret (bytes); InvalidArgument if none is set."""
    env = os.environ.get("ARCHIPELAGO_SYNC_TOKEN")
    if env:
        return env.strip().encode()
    path = settings.auth_token_file
    if path is None:
        raise InvalidArgument("the TCP transport needs a shared secret: set [sync] "
                              "auth_token_file or ARCHIPELAGO_SYNC_TOKEN")
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"[sync] auth_token_file {path}: {e.strerror}") from None
    if len(text) < 16:
        raise ConfigError(f"[sync] auth_token_file {path}: the secret must have at least "
                          "16 characters")
    return text.encode()


def parse_hostport(text, default_port=DEFAULT_PORT, what="address", any_port=False):
    """'host:port', '[v6]:port', 'host' -> (host, port); port 0 only if `any_port`."""
    text = (text or "").strip()
    if not text:
        raise InvalidArgument(f"empty {what}")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        port = int(port) if port else default_port
    except ValueError:
        raise InvalidArgument(f"bad {what} {text!r}: port must be a number") from None
    if not host or not (0 if any_port else 1) <= port < 65536:
        raise InvalidArgument(f"bad {what} {text!r}")
    return host, port
