"""`vlmc send` and `vlmc receive`: incremental snapshot streams (archipelago.sync).

    vlmc send VOL@SNAP [--from SNAP] [-o FILE|-] [--limit RATE] [--resume TOKEN]
              [--format 1|2]
    vlmc send VOL@SNAP [--from SNAP] --to DEST [-t tcp|ssh|bbcp] [--volume NAME]
    vlmc receive VOLUME [-i FILE|-] [--force] [--limit RATE]
    vlmc receive VOLUME --listen [ADDR:PORT] [--force] [--timeout S]
    vlmc receive VOLUME --token | --abort

Same conventions as the rest of vlmc: one-line errors on stderr, exit 1 for a
failure, 2 for bad input; --json for scripts. An interrupted receive prints the
token that `vlmc send --resume` continues from (`vlmc receive VOL --token` shows it
again later, e.g. after the receiver was killed).
"""
import functools
import json
import os
import sys
import time

import click

from .. import sync
from ..errors import InvalidArgument
from ..names import split_snapshot, validate_name
from ..sync import config as sync_config
from ..sync import service, transport
from ..sync import token as tokens
from ..sync.ratelimit import parse_rate
from ..sync.transport.file import open_input
from ..units import format_size
from .common import echo_json, fail, handle_errors

LISTEN_CONFIG = "@config"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # glibc mallopt(3) parameters


def _keep_freed_memory():
    """Let glibc keep freed chunks for reuse in this (short-lived) process.

    The stream reader takes a new 4 MiB chunk per 4 MiB received (payloads stay
    views into it until written); by default glibc maps each with its own mmap and
    unmaps it when freed, so every chunk's pages fault in and are zeroed anew. On
    the heap they are reused: ~0.03 s less CPU per 100 MiB received here. Freed
    memory up to 256 MiB then stays mapped until the command exits."""
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 64 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):       # not glibc: its defaults
        pass


def os_errors(fn):
    """A file or socket error (disk full, connection refused...) is one line too."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            raise
        except OSError as e:
            fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
    return wrapper


PIPE_SIZE = 1 << 20     # a pipe's buffer, as large as Linux allows by default


def _big_pipe(f):
    """Grow `f`'s pipe buffer (64 KiB by default) to PIPE_SIZE when it is a pipe: a
    stream then crosses it in 1 MiB steps instead of a context switch per 64 KiB
    record. Best effort (another OS, a limit lowered by the admin: unchanged)."""
    try:
        import fcntl
        import stat
        fd = f.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ValueError, AttributeError):
        pass


def _client(ctx):
    from .vlmc import client  # late: vlmc imports this module
    return client(ctx)


def _settings(ctx):
    return sync_config.load(ctx.find_root().obj["conf"])


def _rate(text, settings):
    return parse_rate(text) if text is not None else settings.limit


def _summary(stats):
    return (f"{stats['records']} records, {format_size(stats['data_bytes'])} data + "
            f"{format_size(stats['zero_bytes'])} zeros, {stats['wire_bytes']} bytes on the "
            f"wire, {stats['seconds']:.2f}s")


def _fail_result(res, as_json):
    if as_json:
        click.echo(json.dumps(res, sort_keys=True))
    msg = res.get("error") or "failed"
    if res.get("token") and "--resume" not in msg:
        msg += f"; resume with: vlmc send --resume {res['token']}"
    fail(msg, res.get("code") or 1)


@click.command()
@click.argument("spec", metavar="VOLUME@SNAP", required=False)
@click.option("--from", "from_snap", metavar="SNAP", help="send only what changed since SNAP")
@click.option("-o", "--output", metavar="FILE|-", help="write the stream here (- = stdout)")
@click.option("--to", "dest", metavar="DEST",
              help="send to a receiver: HOST[:PORT] (tcp) or [USER@]HOST (ssh, bbcp)")
@click.option("-t", "--transport", "tname", type=click.Choice(transport.NAMES),
              help="transport for --to (default: [sync] transport)")
@click.option("--volume", "target", metavar="NAME",
              help="the volume on the receiver (default: the same name)")
@click.option("--force", is_flag=True, help="ssh/bbcp: let the receiver roll back")
@click.option("--limit", metavar="RATE", help="bytes per second, e.g. 50M (K/M/G)")
@click.option("--resume", metavar="TOKEN", help="continue an interrupted stream")
@click.option("--format", "version", type=click.IntRange(1, 2),
              help="stream format version (default 2; 1 for receivers before 2)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
@click.pass_context
@handle_errors
@os_errors
def send(ctx, spec, from_snap, output, dest, tname, target, force, limit, resume, version,
         as_json):
    """Send snapshot VOLUME@SNAP as a stream (incremental with --from)."""
    if spec is None:
        if not resume:
            raise InvalidArgument("give VOLUME@SNAP (or --resume TOKEN)")
        tok = tokens.decode(resume)
        spec = f"{tok['volume']}@{tok['to_name']}"
    vol, _snap = split_snapshot(spec)
    if output and dest:
        raise InvalidArgument("give -o FILE or --to DEST, not both")
    if as_json and (output in (None, "-")) and not dest:
        raise InvalidArgument("--json needs -o FILE or --to DEST (stdout is the stream)")
    settings = _settings(ctx)
    rate = _rate(limit, settings)
    kw = {"from_snap": from_snap, "resume": resume, "rate": rate, "version": version}
    c = _client(ctx)
    if not dest:
        ch = transport.get("file").connect(output, vol, settings)
        _big_pipe(ch.wfile)
        try:
            stats = sync.send(c, spec, ch.wfile, **kw)
        except BaseException:
            ch.abort()
            raise
        ch.finish()
        if as_json:
            echo_json({"ok": True, "sent": stats})
        else:
            click.echo(f"sent {spec}: {_summary(stats)}", err=True)
        return
    t = transport.get(tname or settings.transport)
    if t.name == "file":
        raise InvalidArgument("--to needs a network transport (tcp, ssh, bbcp)")
    res = service.send_to(c, spec, t, dest, validate_name(target or vol), settings,
                          force=force, **kw)
    if not res.get("ok"):
        _fail_result(res, as_json)
    if as_json:
        echo_json(res)
    else:
        click.echo(f"sent {spec} to {dest} ({t.name}) as {res.get('volume')}@"
                   f"{res.get('snapshot')}: {_summary(res['sent'])}")


@click.command()
@click.argument("volume")
@click.option("-i", "--input", "inp", metavar="FILE|-", help="read the stream here (- = stdin)")
@click.option("--listen", is_flag=False, flag_value=LISTEN_CONFIG, default=None,
              metavar="[ADDR:PORT]",
              help="receive one stream over TCP (default address: [sync] listen)")
@click.option("--force", is_flag=True,
              help="roll VOLUME back to the stream's base if it moved on")
@click.option("--limit", metavar="RATE", help="bytes per second, e.g. 50M (K/M/G)")
@click.option("--timeout", type=float, help="--listen: give up after this many seconds")
@click.option("--token", "show_token", is_flag=True,
              help="print the resume token of an interrupted receive")
@click.option("--abort", is_flag=True, help="discard an interrupted receive")
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
@click.pass_context
@handle_errors
@os_errors
def receive(ctx, volume, inp, listen, force, limit, timeout, show_token, abort, as_json):
    """Receive a stream into VOLUME; it moves to the new snapshot only once verified."""
    validate_name(volume)
    settings = _settings(ctx)
    state_dir = str(settings.state_dir)
    if show_token:
        tok = sync.resume_token(state_dir, volume)
        if tok is None:
            fail(f"no interrupted receive into {volume}")
        click.echo(tok)
        return
    if abort:
        done = sync.abort(_client(ctx), state_dir, volume)
        click.echo(f"aborted the interrupted receive into {volume}" if done else
                   f"no interrupted receive into {volume}")
        return
    if inp is not None and listen is not None:
        raise InvalidArgument("give -i FILE or --listen, not both")
    _keep_freed_memory()
    kw = {"state_dir": state_dir, "force": force, "rate": _rate(limit, settings),
          "checkpoint": (settings.checkpoint_interval, settings.checkpoint_bytes),
          "spool_max": settings.spool_max}
    c = _client(ctx)
    if listen is not None:
        res = _listen(c, volume, listen, settings, timeout, kw)
    else:
        f = open_input(inp)
        if f is sys.stdin.buffer and sys.stdin.isatty():
            raise InvalidArgument("refusing to read a stream from a terminal; use -i FILE "
                                  "or a pipe")
        _big_pipe(f)
        with f:
            res = service.receive_result(c, volume, f, **kw)
    if not res.get("ok"):
        _fail_result(res, as_json)
    if as_json:
        click.echo(json.dumps(res, sort_keys=True))
    else:
        click.echo(f"received {res['source']}@{res['snapshot']} into {volume}@"
                   f"{res['snapshot']}: {_summary(res)}")


def _listen(c, volume, listen, settings, timeout, kw):
    from ..sync.transport import tcp
    addr = settings.listen if listen == LISTEN_CONFIG else listen
    if not addr:
        raise InvalidArgument("no listen address: give --listen ADDR:PORT or set [sync] "
                              "listen")
    secret = sync_config.secret(settings)
    srv = tcp.bind(addr)
    with srv:
        host, port = srv.getsockname()[:2]
        click.echo(f"vlmc: listening on {host}:{port}", err=True)
        sys.stderr.flush()

        def handle(requested, rfile):
            if requested != volume:
                return service.failure(InvalidArgument(
                    f"this receiver takes volume {volume}, not {requested}"))
            return service.receive_result(c, volume, rfile, **kw)

        deadline = time.monotonic() + timeout if timeout else None
        return tcp.serve(srv, secret, handle, auth_timeout=settings.connect_timeout,
                         idle_timeout=settings.connect_timeout * 10, deadline=deadline)


COMMANDS = [send, receive]


def register(group):
    """Add send and receive to the vlmc group."""
    for cmd in COMMANDS:
        group.add_command(cmd)
