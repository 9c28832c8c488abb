"""`archipelago`: start, stop, restart and report this node's peers.

    archipelago [-c CONF] [-u] start [ROLE]
    archipelago [-c CONF] stop [ROLE]
    archipelago [-c CONF] [-u] restart [ROLE]
    archipelago [-c CONF] status [--json]      # exit 1 when a role is down
    archipelago [-c CONF] config               # the effective peer configuration
"""
import json
from pathlib import Path

import click

from .. import config as C
from ..nbd.server import read_status
from ..nbd.settings import STATUS_FILE
from ..peers import config as PC
from ..peers import segment
from ..peers.supervisor import Supervisor, status_json
from ..peers.supervisor import alive as _proc_alive
from ..units import format_size
from .common import OneLineGroup, echo_json, fail, handle_errors, setup_logging


@click.group(name="archipelago", cls=OneLineGroup,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--conf", "conf", metavar="CONF", envvar="ARCHIPELAGO_CONF",
              help="configuration file (default /etc/archipelago/archipelago.conf; "
                   "missing = the embedded single-node defaults)")
@click.option("-u", "--user", "as_user", is_flag=True,
              help="run the peers as the current user, ignoring [ARCHIPELAGO] user")
@click.option("-v", "--verbose", count=True, help="log more (-vv: debug)")
@click.pass_context
@handle_errors
def main(ctx, conf, as_user, verbose):
    """Archipelago node: supervise the xseg peers (blockers, mapperd, vlmcd) and nbdd."""
    setup_logging(verbose)
    ctx.obj = {"conf": conf, "as_user": as_user}


def supervisor(ctx):
    obj = ctx.find_root().obj
    return Supervisor(C.load(obj["conf"]), obj["conf"], obj["as_user"])


@main.command()
@click.argument("role", required=False)
@click.pass_context
@handle_errors
def start(ctx, role):
    """Start every role in [PEERS] ORDER (and nbdd), or just ROLE."""
    sup = supervisor(ctx)
    started = sup.start(role)
    for s in sup.status():
        if role is None or s.role == role:
            click.echo(s.line())
    if not started:
        click.echo("already running", err=True)


@main.command()
@click.argument("role", required=False)
@click.pass_context
@handle_errors
def stop(ctx, role):
    """Stop every role in reverse order (then remove the segment), or just ROLE."""
    sup = supervisor(ctx)
    stopped = sup.stop(role)
    click.echo(f"stopped: {' '.join(stopped)}" if stopped else "nothing was running")


@main.command()
@click.argument("role", required=False)
@click.pass_context
@handle_errors
def restart(ctx, role):
    """Stop then start every role, or just ROLE."""
    sup = supervisor(ctx)
    sup.stop(role)
    sup.start(role)
    for s in sup.status():
        if role is None or s.role == role:
            click.echo(s.line())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_context
@handle_errors
def status(ctx, as_json):
    """One line per role; exit status 1 if any role is not running."""
    sup = supervisor(ctx)
    statuses = sup.status()
    nbd = nbd_status(sup.run_dir)
    if as_json:
        entries = json.loads(status_json(statuses))
        own = next((e for e in entries if e["role"] == PC.NBDD), None)
        if own is not None and nbd:
            own.update({k: v for k, v in nbd.items() if k not in own})
        elif nbd:
            # nbdd hosting vlmcd (colocated), or one started by hand: listed only while
            # it runs, so a script's "every entry is running" check still holds
            entries.append(nbd)
        click.echo(json.dumps(entries, indent=2))
    else:
        for s in statuses:
            click.echo(s.line())
        seg = sup.xseg.segment_name
        click.echo(f"{'segment':<10} {seg} {'present' if segment.exists(sup.xseg) else 'absent'}")
        _echo_nbd(nbd, supervised=any(PC.NBDD in (s.host, s.role) for s in statuses))
    down = [s.role for s in statuses if s.state != "running"]
    if down:
        if not as_json:
            fail(f"not running: {' '.join(down)}")
        ctx.exit(1)


@main.command("config")
@click.pass_context
@handle_errors
def show_config(ctx):
    """Print the validated peer configuration (defaults filled in) as JSON."""
    cfg = C.load(ctx.find_root().obj["conf"])
    xseg, roles = PC.check(cfg)
    echo_json({"source": cfg.source, "XSEG": _plain(vars(xseg)),
               "roles": {r.name: _plain(vars(r.opts)) for r in roles}})


def nbd_status(run_dir):
    """The node's nbdd as it reports itself in RUN_DIR/nbdd.json; None if not running."""
    st = read_status(Path(run_dir) / STATUS_FILE)
    if not st or not _alive(st.get("pid")):
        return None     # no file, or a stale one left by a killed nbdd
    return {"role": "nbdd", "type": "nbdd", "state": "running", **st}


def _alive(pid):
    try:
        return _proc_alive(int(pid))        # a zombie is not alive
    except (TypeError, ValueError):
        return False


def _echo_nbd(nbd, supervised):
    if nbd is None:
        hint = ("archipelago start nbdd" if supervised else
                "this node has no vlmcd role: run archipelago-nbdd")
        click.echo(f"{'nbdd':<10} not running ({hint})")
        return
    exports, conns = nbd["exports"], nbd["connections"]
    click.echo(f"{'nbdd':<10} running (pid {nbd['pid']}) {' '.join(nbd.get('uris', []))}, "
               f"{len(exports)} open export(s), {len(conns)} connection(s)")
    for e in exports:
        mode = "ro" if e["read_only"] else "rw"
        clients = ", ".join(sorted(set(e["clients"]))) or "-"
        click.echo(f"  export   {e['name']:<24} {format_size(e['size']):>6} {mode} "
                   f"{e['connections']} connection(s) from {clients}")


def _plain(d):
    return {k: (v if isinstance(v, int | float | str | list | type(None)) else str(v))
            for k, v in d.items()}


if __name__ == "__main__":
    main(prog_name="archipelago")
