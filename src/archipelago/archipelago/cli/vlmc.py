"""`vlmc`: volumes, snapshots and clones of this node, through its peers.

Every command talks to the node's mapperd (metadata) and vlmcd (volume I/O)
through `archipelago.client`; the node must be running (`archipelago start`).
Sizes take K/M/G/T suffixes; a bare number is MiB, as in the original vlmc.
Exit status: 0 ok, 1 failed (message on stderr), 2 bad input or usage.
"""
import copy
import re
import time

import click

from ..errors import InvalidArgument
from ..names import split_snapshot, validate_name
from ..units import format_size, parse_size
from .common import OneLineGroup, echo_json, fail, handle_errors, setup_logging

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _parse(value, what, default_unit="M"):
    # units.parse_size reads "512B" as 512 MiB (the B is taken for the optional "iB"
    # of "MiB"); an explicit B alone means bytes here.
    if re.fullmatch(r"\s*\d+\s*[bB]\s*", str(value)):
        default_unit = ""
    try:
        return parse_size(value, default_unit, what=what)
    except InvalidArgument as e:
        fail(str(e), e.exit_code)


def size_arg(what):
    """A click callback: parse_size; bad input is a one-line error, exit 2."""
    return lambda ctx, param, value: None if value is None else _parse(value, what)


def object_size_arg(ctx, param, value):
    return None if value is None else _parse(value, "object size", default_unit="")


class VlmcGroup(OneLineGroup):
    """vlmc's group; send and receive (cli/sync.py, which imports the whole sync
    machinery) and map/unmap/showmapped (archipelago_kernel.cli) are added on first
    use, so every other command starts faster -- and `vlmc map`, whose time to a
    usable device is a target, does not import the sync machinery."""

    _loaded = ()

    def _load(self, which):
        if which in self._loaded:
            return
        self._loaded = (*self._loaded, which)
        if which == "sync":
            from . import sync as sync_cli
            sync_cli.register(self)     # vlmc send / vlmc receive
        else:
            _add_kernel_commands(self)

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        # send/receive need only the sync machinery; any other name the kernel's
        # commands first (cheaper to import), then the sync machinery
        for which in (("sync",) if name in ("send", "receive") else ("kernel", "sync")):
            if cmd is not None:
                break
            self._load(which)
            cmd = super().get_command(ctx, name)
        return cmd

    def list_commands(self, ctx):
        self._load("kernel")
        self._load("sync")
        return super().list_commands(ctx)


@click.group(name="vlmc", cls=VlmcGroup, context_settings=CONTEXT)
@click.option("-c", "--conf", metavar="CONF", envvar="ARCHIPELAGO_CONF",
              help="node configuration (default /etc/archipelago/archipelago.conf)")
@click.option("-v", "--verbose", count=True, help="log more (-vv: debug)")
@click.pass_context
def main(ctx, conf, verbose):
    """Manage Archipelago volumes, snapshots and clones."""
    setup_logging(verbose)
    ctx.obj = {"conf": conf, "client": None}
    ctx.call_on_close(lambda: ctx.obj["client"] and ctx.obj["client"].close())


def client(ctx):
    """The node client, connected on first use (so --help needs no running node)."""
    obj = ctx.find_root().obj
    if obj["client"] is None:
        # imported here: the client pulls in the peers and the xseg binding, which
        # `vlmc map` (start-up time to a device is a target) never needs
        from .. import client as _client
        obj["client"] = _client.connect(obj["conf"])
    return obj["client"]


@main.command()
@click.argument("name")
@click.option("-s", "--size", callback=size_arg("size"), help="volume size (bare = MiB)")
@click.option("--snap", metavar="VOL@SNAP", help="clone this snapshot (or hashed image)")
@click.option("--object-size", callback=object_size_arg,
              help="object size, a power of two 64K..32M (default 4M; bare = bytes)")
@click.pass_context
@handle_errors
def create(ctx, name, size, snap, object_size):
    """Create volume NAME: empty (--size) or a clone of a snapshot (--snap)."""
    validate_name(name)
    if snap:
        split_snapshot(snap)     # VOL@SNAP, or a hashed image; mapperd refuses the rest
        if object_size:
            raise InvalidArgument("--object-size: a clone keeps its snapshot's object size")
        client(ctx).clone(snap, name, size)
        click.echo(f"created {name} from {snap}")
        return
    if size is None:
        raise InvalidArgument("give --size SIZE (or --snap VOL@SNAP to clone)")
    kw = {"object_size": object_size} if object_size else {}
    client(ctx).create(name, size, **kw)
    click.echo(f"created {name} ({format_size(size)})")


def _alias(cmd, name):
    """`vlmc rm`/`vlmc ls` as in the original, kept out of --help."""
    alias = copy.copy(cmd)
    alias.hidden = True
    main.add_command(alias, name)


@main.command()
@click.argument("volume")
@click.argument("snap")
@click.pass_context
@handle_errors
def snapshot(ctx, volume, snap):
    """Take snapshot SNAP of VOLUME (read-only, named VOLUME@SNAP)."""
    validate_name(volume)
    validate_name(snap, "snapshot")
    client(ctx).snapshot(volume, snap)
    click.echo(f"created {volume}@{snap}")


@main.command(name="remove")
@click.argument("name")
@click.pass_context
@handle_errors
def remove(ctx, name):
    """Remove volume NAME or snapshot VOL@SNAP (space comes back with `vlmc gc`)."""
    split_snapshot(name)
    client(ctx).remove(name)
    click.echo(f"removed {name}")


_alias(remove, "rm")


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def list_(ctx, as_json):
    """List volumes (with their snapshots and origins)."""
    infos = client(ctx).list_info()
    if as_json:
        echo_json(infos)
        return
    for i in infos:
        origin = f"  from {i['origin']}" if i.get("origin") else ""
        kind = "  image" if i.get("image") else "  read-only" if i.get("read_only") else ""
        click.echo(f"{i['name']:<40} {format_size(i['size']):>8}{kind}{origin}")
        for snap in i.get("snapshots") or []:
            click.echo(f"  {i['name']}@{snap}")


_alias(list_, "ls")


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def info(ctx, name, as_json):
    """Size, object size, origin, snapshots, allocated/unique bytes and lock owner."""
    split_snapshot(name)
    i = client(ctx).info(name)
    from .. import config
    from ..nbd import settings as nbd_settings  # here: only `info` pays for the import
    i["nbd_uri"] = nbd_settings.local_uri(config.load(ctx.find_root().obj["conf"]), name)
    if as_json:
        echo_json(i)
        return
    for key, value in i.items():
        if key in ("size", "object_size", "allocated", "unique"):
            value = f"{format_size(value)} ({value} bytes)"
        elif key == "created" and isinstance(value, int | float):
            value = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(value))
        elif isinstance(value, list):
            value = " ".join(map(str, value)) or "-"
        elif value is None or value == "":
            value = "-"
        click.echo(f"{key + ':':<14} {value}")


@main.command()
@click.argument("name")
@click.argument("size", callback=size_arg("size"))
@click.pass_context
@handle_errors
def resize(ctx, name, size):
    """Grow or shrink volume NAME to SIZE."""
    validate_name(name)
    client(ctx).resize(name, size)
    click.echo(f"resized {name} to {format_size(size)}")


@main.command()
@click.argument("old")
@click.argument("new")
@click.pass_context
@handle_errors
def rename(ctx, old, new):
    """Rename volume OLD to NEW."""
    validate_name(old)
    validate_name(new)
    client(ctx).rename(old, new)
    click.echo(f"renamed {old} to {new}")


@main.command(name="hash")
@click.argument("snap")
@click.pass_context
@handle_errors
def hash_(ctx, snap):
    """Content-address snapshot VOL@SNAP (dedup); prints its hash."""
    split_snapshot(snap)
    click.echo(client(ctx).hash(snap))


@main.command(name="open")
@click.argument("name")
@click.pass_context
@handle_errors
def open_(ctx, name):
    """Open NAME on this node: take its lock and keep its map cached."""
    validate_name(name)
    client(ctx).open(name)
    click.echo(f"opened {name}")


@main.command(name="close")
@click.argument("name")
@click.pass_context
@handle_errors
def close_(ctx, name):
    """Close NAME: drain its writes and release its lock."""
    validate_name(name)
    client(ctx).close_volume(name)
    click.echo(f"closed {name}")


@main.command()
@click.argument("name")
@click.pass_context
@handle_errors
def lock(ctx, name):
    """Take the lock of NAME for this node (fails if held elsewhere)."""
    validate_name(name)
    client(ctx).lock(name)
    click.echo(f"locked {name}")


@main.command()
@click.option("-f", "--force", is_flag=True, help="break a lock held by someone else")
@click.argument("name")
@click.pass_context
@handle_errors
def unlock(ctx, force, name):
    """Release the lock of NAME (-f: whoever holds it)."""
    validate_name(name)
    client(ctx).unlock(name, force=force)
    click.echo(f"unlocked {name}")


@main.command(name="import")
@click.argument("name")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("-s", "--size", callback=size_arg("size"),
              help="create NAME with this size if it does not exist (default: FILE's size)")
@click.pass_context
@handle_errors
def import_(ctx, name, file, size):
    """Copy raw image FILE (- = stdin) into volume NAME, skipping holes and zeros."""
    validate_name(name)
    from . import transfer  # here: only import/export pay for it
    n = transfer.import_image(client(ctx), name, file, size)
    click.echo(f"imported {format_size(n)} into {name}", err=True)


@main.command(name="export")
@click.argument("spec", metavar="NAME[@SNAP]")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.pass_context
@handle_errors
def export(ctx, spec, file):
    """Copy volume or snapshot NAME[@SNAP] to raw FILE (- = stdout), sparse."""
    split_snapshot(spec)
    from . import transfer
    n = transfer.export_image(client(ctx), spec, file)
    click.echo(f"exported {format_size(n)} from {spec}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def du(ctx, as_json):
    """Space used: per volume (allocated, unique) and by the store."""
    c = client(ctx)
    totals = c.du()
    vols = [{k: i.get(k) for k in ("name", "size", "allocated", "unique")}
            for i in c.list_info()]
    if as_json:
        echo_json({"totals": totals, "volumes": vols})
        return
    for v in vols:
        click.echo(f"{v['name']:<40} {format_size(v['size'] or 0):>8} size "
                   f"{format_size(v['allocated'] or 0):>8} allocated "
                   f"{format_size(v['unique'] or 0):>8} unique")
    for key, value in sorted(totals.items()):
        shown = format_size(value) if key.endswith("bytes") else value
        click.echo(f"{key}: {shown}")


@main.command()
@click.argument("from_spec", metavar="FROM")
@click.argument("to_spec", metavar="TO")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def diff(ctx, from_spec, to_spec, as_json):
    """Byte ranges that differ between snapshots/volumes FROM and TO."""
    split_snapshot(from_spec)
    split_snapshot(to_spec)
    ranges = client(ctx).diff(from_spec, to_spec)
    if as_json:
        echo_json({"from": from_spec, "to": to_spec,
                   "changed": sum(n for _, n in ranges),
                   "ranges": [{"offset": o, "length": n} for o, n in ranges]})
        return
    for o, n in ranges:
        click.echo(f"{o} {n}")


@main.command()
@click.option("-n", "--dry-run", is_flag=True, help="report what would be freed")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def gc(ctx, dry_run, as_json):
    """Delete objects no map references any more."""
    report = client(ctx).gc(dry_run=dry_run)
    if as_json:
        echo_json(report)
        return
    if isinstance(report, dict):
        for key, value in sorted(report.items()):
            click.echo(f"{key}: {value}")
    else:
        click.echo(str(report))


def _add_kernel_commands(group):
    # map/unmap/showmapped come from src/kernel (archipelago_kernel), which a
    # storage-only node may not install; vlmc works without them.
    try:
        from archipelago_kernel.cli import COMMANDS
    except ImportError:
        return
    for cmd in COMMANDS:
        group.add_command(cmd)


if __name__ == "__main__":
    main(prog_name="vlmc")
