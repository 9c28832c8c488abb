"""nbdd: the NBD frontend in the foreground (`archipelago-nbdd`, `python -m archipelago.nbd`).

    archipelago-nbdd -c /etc/archipelago/archipelago.conf
    archipelago-nbdd --listen 127.0.0.1:0 --listen unix:/tmp/n.sock --memory disk:1G

Reads `[node]` and `[nbd]`; command-line options override the file. Writes
RUN_DIR/nbdd.pid and RUN_DIR/nbdd.json (see server.py) and removes them on exit.
SIGTERM/SIGINT stop it cleanly.
"""
import logging
import os
import signal
import sys

import click

from .. import config as cfgmod
from .. import log as logmod
from ..errors import ArchipelagoError
from .registry import ExportRegistry, FileProvider, MemoryProvider
from .server import Server
from .settings import NBD, STATUS_FILE, parse_address, parse_allow, parse_memory

log = logging.getLogger(__name__)

PID_FILE = "nbdd.pid"


def volume_provider(conf=None):
    """The archipelago volume provider, or None while archipelago.client is absent.

    This is the seam described in docs/nbd.md: a Provider whose open() returns a
    Backend doing volume I/O through archipelago.client.
    """
    try:
        from .volume import VolumeProvider
    except ImportError:
        return None
    return VolumeProvider(conf)


def build_registry(nbd, conf=None):
    """The ExportRegistry for a validated [nbd] section."""
    reg = ExportRegistry()
    if nbd.memory:
        reg.add_provider(MemoryProvider(nbd.memory))
    if nbd.exports_dir:
        reg.add_provider(FileProvider(nbd.exports_dir))
    if nbd.volumes and getattr(nbd, "datapath", "peers") == "colocated":
        from .colocated import ColocatedProvider
        reg.add_provider(ColocatedProvider(conf))
    elif nbd.volumes:
        vp = volume_provider(conf)
        if vp is not None:
            reg.add_provider(vp)
        else:
            log.info("volume client not installed: serving memory and file exports only")
    return reg


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", help="configuration file")
@click.option("--listen", multiple=True, help="override [nbd] listen (repeatable)")
@click.option("--allow", multiple=True, help="override [nbd] allow (repeatable)")
@click.option("--memory", multiple=True, help="add a RAM disk NAME:SIZE (repeatable)")
@click.option("--exports-dir", help="serve the raw files of this directory")
@click.option("--no-volumes", is_flag=True, help="do not serve archipelago volumes")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default), ERROR")
def main(config_path, listen, allow, memory, exports_dir, no_volumes, log_level):
    """Serve volumes over NBD in the foreground."""
    logmod.setup(log_level)
    try:
        server, run_dir = build(config_path, listen, allow, memory, exports_dir, no_volumes)
    except ArchipelagoError as e:
        click.echo(f"archipelago-nbdd: {e}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:
        click.echo(f"archipelago-nbdd: {e}", err=True)
        sys.exit(1)
    serve(server, run_dir)


def build(config_path=None, listen=(), allow=(), memory=(), exports_dir=None,
          no_volumes=False):
    """(started Server, run_dir) from the node's configuration and the overrides.

    With `datapath = colocated` this binds the vlmcd role's ports: once it
    returns, nbdd is ready both as NBD server and as the node's vlmcd."""
    cfg = cfgmod.load(config_path)
    cfg.check(cfgmod.NODE, NBD)
    node, nbd = cfg.section(cfgmod.NODE), cfg.section(NBD)
    if listen:
        nbd.listen = [parse_address(x) for x in listen]
    if allow:
        nbd.allow = parse_allow(" ".join(allow))
    if memory:
        nbd.memory = {**nbd.memory, **parse_memory(" ".join(memory))}
    if exports_dir:
        nbd.exports_dir = exports_dir
    if no_volumes:
        nbd.volumes = False
    run_dir = node.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    registry = build_registry(nbd, config_path)
    server = Server(registry, nbd.listen, nbd.allow, status_path=str(run_dir / STATUS_FILE))
    try:
        server.start()
    except BaseException:
        _close_providers(registry)      # a co-located vlmcd gives its ports back
        raise
    return server, run_dir


def serve(server, run_dir, ready=None):
    """Serve until SIGTERM/SIGINT with RUN_DIR/nbdd.pid in place; `ready()` once the
    pid file is written (the supervisor's readiness signal)."""
    pid_file = run_dir / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")

    def stop(signum, frame):
        log.info("signal %d: stopping", signum)
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if ready is not None:
            ready()
        server.serve_forever()
    finally:
        server.stop()
        _close_providers(server.registry)
        try:
            pid_file.unlink()
        except FileNotFoundError:
            pass
        log.info("nbdd stopped")


def _close_providers(registry):
    for p in registry.providers:
        if hasattr(p, "close"):
            p.close()
