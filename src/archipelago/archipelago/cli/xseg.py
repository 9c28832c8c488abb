"""`xseg`: create, inspect and destroy the node's shared-memory segment.

    xseg create [SPEC]            # default: the spec from [XSEG] of the node config
    xseg info [NAME] [--json]
    xseg report [NAME] [--json] [--all]
    xseg check [NAME]             # recover ports whose owner died
    xseg destroy [NAME]
"""
import click

from .. import config as C
from ..errors import from_errno
from ..peer.config import XSEG, spec
from .common import echo_json, handle_errors, setup_logging


def _xseg():
    import xseg
    return xseg


def _wrap(e):
    """An xseg error as the project's error (one-line exit with its errno's code)."""
    return from_errno(e.errno, e.strerror or str(e))


def _node_xseg(ctx):
    return C.load(ctx.obj["conf"]).section(XSEG)


def _join(ctx, name):
    xseg = _xseg()
    name = name or _node_xseg(ctx).segment_name
    try:
        return xseg.Segment.join(name)
    except xseg.XsegError as e:
        raise _wrap(e) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--conf", "conf", metavar="CONF", envvar="ARCHIPELAGO_CONF",
              help="node configuration (default /etc/archipelago/archipelago.conf)")
@click.option("-v", "--verbose", count=True, help="log more (-vv: debug)")
@click.pass_context
def main(ctx, conf, verbose):
    """Create, inspect and destroy the xseg segment the peers share."""
    setup_logging(verbose)
    ctx.obj = {"conf": conf}


@main.command()
@click.argument("spec_str", metavar="[SPEC]", required=False)
@click.pass_context
@handle_errors
def create(ctx, spec_str):
    """Create a segment: SPEC is posix:NAME:DYNPORTS:NR_PORTS:HEAP_MiB:PAGE_SHIFT:NR_REQS."""
    xseg = _xseg()
    spec_str = spec_str or spec(_node_xseg(ctx))
    try:
        xseg.Segment.create(spec_str).close()
    except xseg.XsegError as e:
        raise _wrap(e) from None
    click.echo(f"created {spec_str}")


@main.command()
@click.argument("name", required=False)
@click.pass_context
@handle_errors
def destroy(ctx, name):
    """Remove a segment (peers that have it mapped keep working until they leave)."""
    xseg = _xseg()
    name = name or _node_xseg(ctx).segment_name
    try:
        xseg.Segment.destroy(name)
    except xseg.XsegError as e:
        raise _wrap(e) from None
    click.echo(f"destroyed {name}")


def _mib(n):
    return f"{n / (1 << 20):.1f} MiB"


@main.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def info(ctx, name, as_json):
    """Sizes, free requests and free heap of a segment."""
    with _join(ctx, name) as seg:
        i = seg.info()
    if as_json:
        return echo_json(i)
    click.echo(f"segment {i['name']} (xseg {i['version']}), {_mib(i['size'])}, "
               f"created by pid {i['creator_pid']}")
    click.echo(f"ports     {i['nr_ports']} ({i['dynports']} dynamic)")
    click.echo(f"requests  {i['pool_free']} of {i['nr_reqs']} in the free pool")
    click.echo(f"heap      {_mib(i['heap_free'])} free of {_mib(i['heap_size'])}, "
               f"page {1 << i['page_shift']} B, max request {_mib(i['max_data'])}")


COLUMNS = ("portno", "state", "owner", "owner_pid", "owner_alive", "req_q", "reply_q",
           "free_q", "alloc", "accepted", "responded", "submitted", "received",
           "failed_back")
HEADERS = ("PORT", "STATE", "OWNER", "PID", "ALIVE", "REQQ", "REPLYQ", "FREEQ", "ALLOC",
           "ACCEPTED", "RESPONDED", "SUBMITTED", "RECEIVED", "FAILED")


@main.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--all", "all_ports", is_flag=True, help="free ports too")
@click.pass_context
@handle_errors
def report(ctx, name, as_json, all_ports):
    """Ports: owner, liveness, queue depths and counters."""
    with _join(ctx, name) as seg:
        ports = seg.ports(all=all_ports)
        i = seg.info()
    if as_json:
        return echo_json({"segment": i, "ports": ports})
    rows = [HEADERS] + [tuple(_cell(p[c]) for c in COLUMNS) for p in ports]
    widths = [max(len(r[k]) for r in rows) for k in range(len(HEADERS))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo(f"{len(ports)} ports shown; {i['pool_free']} of {i['nr_reqs']} requests "
               f"free in the pool")


def _cell(v):
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return str(v) if v != "" else "-"


@main.command()
@click.argument("name", required=False)
@click.pass_context
@handle_errors
def check(ctx, name):
    """Recover ports whose owner died: their requests fail back to the requesters."""
    with _join(ctx, name) as seg:
        n = seg.check()
    click.echo(f"recovered {n} port{'s' if n != 1 else ''}")
