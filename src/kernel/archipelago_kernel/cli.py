"""Click commands `map`, `unmap`, `showmapped` for vlmc (and `python -m archipelago_kernel`).

    from archipelago_kernel.cli import COMMANDS
    for cmd in COMMANDS:
        vlmc.add_command(cmd)

The commands take the configuration path from the root context's
`obj["conf"]` (vlmc's -c/--conf), so they behave the same under vlmc and
under this module's own group. Exit status: 0 ok, 1 failed, 2 bad input;
failures print one line on stderr.
"""
import functools
import json
import sys
import time

import click

from archipelago import config as C
from archipelago import log as logmod
from archipelago.errors import ArchipelagoError

from .mapper import Mapper

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _fail(message, code=1):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArchipelagoError as e:
            _fail(str(e), e.exit_code)
    return wrapper


def _mapper(ctx, method=None):
    obj = ctx.find_root().obj
    conf = obj.get("conf") if isinstance(obj, dict) else None
    return Mapper(C.load(conf), method=method)


@click.command("map", context_settings=CONTEXT)
@click.argument("volume")
@click.option("--ro", "--read-only", "read_only", is_flag=True,
              help="map read-only (snapshots VOL@SNAP always are)")
@click.option("--method", type=click.Choice(["nbd", "fuse"]), default=None,
              help="attach method (default: kernel nbd if loaded, else FUSE+loop)")
@click.pass_context
@_errors
def map_cmd(ctx, volume, read_only, method):
    """Map VOLUME (served by this node's nbdd) as a block device; print the device."""
    m = _mapper(ctx, method).map(volume, read_only)
    click.echo(m.device)


@click.command("unmap", context_settings=CONTEXT)
@click.argument("target", metavar="DEVICE|VOLUME")
@click.option("-f", "--force", is_flag=True, help="detach even if mounted or open (lazy)")
@click.pass_context
@_errors
def unmap_cmd(ctx, target, force):
    """Unmap a device or every mapping of a volume (nothing mapped is not an error)."""
    _mapper(ctx).unmap(target, force)


@click.command("showmapped", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@_errors
def showmapped_cmd(ctx, as_json):
    """List this node's mapped volumes."""
    rows = _mapper(ctx).showmapped()
    if as_json:
        click.echo(json.dumps([{**m.to_dict(), "alive": alive} for m, alive in rows],
                              indent=2, sort_keys=True))
        return
    if not rows:
        return
    fmt = "{:<12} {:<30} {:<6} {:<3} {:<6} {}"
    click.echo(fmt.format("DEVICE", "VOLUME", "METHOD", "RO", "STATE", "SINCE"))
    for m, alive in rows:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created))
        click.echo(fmt.format(m.device, m.volume, m.method, "ro" if m.read_only else "rw",
                              "ok" if alive else "stale", since))


COMMANDS = (map_cmd, unmap_cmd, showmapped_cmd)


@click.group(context_settings=CONTEXT)
@click.option("-c", "--conf", metavar="CONF", envvar="ARCHIPELAGO_CONF",
              help="node configuration (default /etc/archipelago/archipelago.conf)")
@click.option("-v", "--verbose", count=True, help="log more (-vv: debug)")
@click.pass_context
def main(ctx, conf, verbose):
    """Block devices for volumes served by this node's nbdd."""
    logmod.setup(["WARNING", "INFO", "DEBUG"][min(verbose, 2)])
    ctx.obj = {"conf": conf}


for _cmd in COMMANDS:
    main.add_command(_cmd)
