"""`archipelago-nasd|vmd [-c CONF] start|stop|restart|status [--foreground]`.

python-daemon detaches `start` (pid file under the node's run_dir, log file under
log_dir); `--foreground` keeps the process attached and logs to stderr, for tests
and systemd (Type=simple). SIGTERM lets the message in progress finish.
"""
import logging
import os
import signal
import sys
import time

import click

from .. import config as config_mod
from .. import log as log_mod
from ..config import NODE
from ..errors import ArchipelagoError

log = logging.getLogger(__name__)


def _pid(pidfile):
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def make_cli(prog, node_class):
    """A click group for one daemon class (a Node subclass)."""

    def load(conf):
        cfg = config_mod.load(conf)
        cfg.check(NODE)
        node = cfg.section(NODE)
        return cfg, node.run_dir / f"{prog}.pid", node.log_dir / f"{prog}.log"

    def serve(cfg, pidfile, foreground, logfile):
        from daemon.pidfile import TimeoutPIDLockFile
        lock = TimeoutPIDLockFile(str(pidfile), acquire_timeout=1)
        if foreground:
            log_mod.setup(os.environ.get("ARCHIPELAGO_LOG_LEVEL", "INFO"))
            with lock:
                node_class(cfg).run()
            return
        import daemon
        logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(logfile, "a")  # kept open for the daemon's whole life
        ctx = daemon.DaemonContext(pidfile=lock, stdout=out, stderr=out,
                                   working_directory="/", umask=0o022,
                                   signal_map={signal.SIGTERM: None, signal.SIGINT: None})
        node = None
        with ctx:
            log_mod.setup(os.environ.get("ARCHIPELAGO_LOG_LEVEL", "INFO"), stream=out)
            try:
                node = node_class(cfg)
                node.run()
            except ArchipelagoError as e:
                log.error("%s: %s", prog, e)
                sys.exit(e.exit_code)

    @click.group(help=f"{prog}: the control-plane daemon ({node_class.ROLE}).")
    @click.option("-c", "--config", "conf", default=None, help="configuration file")
    @click.pass_context
    def cli(ctx, conf):
        ctx.obj = conf

    def fail(e):
        click.echo(f"{prog}: {e}", err=True)
        sys.exit(getattr(e, "exit_code", 1))

    @cli.command(help="start the daemon (detached unless --foreground)")
    @click.option("--foreground", is_flag=True, help="stay attached, log to stderr")
    @click.pass_obj
    def start(conf, foreground):
        try:
            cfg, pidfile, logfile = load(conf)
            pidfile.parent.mkdir(parents=True, exist_ok=True)
            if (pid := _pid(pidfile)) is not None:
                raise ArchipelagoError(f"already running (pid {pid}, {pidfile})")
            if pidfile.exists():
                pidfile.unlink()      # stale: its process is gone
            node_class.check(cfg)           # fail fast on config and database
            if foreground:
                serve(cfg, pidfile, True, logfile)
                return
            child = os.fork()
            if child == 0:                  # python-daemon forks again and detaches
                try:
                    serve(cfg, pidfile, False, logfile)
                finally:
                    os._exit(0)
            os.waitpid(child, 0)
            click.echo(f"{prog} started (pid {_wait_started(pidfile, logfile)})")
        except ArchipelagoError as e:
            fail(e)

    @cli.command(help="stop the daemon; waits for the work in progress")
    @click.option("--timeout", default=30.0, help="seconds to wait before giving up")
    @click.pass_obj
    def stop(conf, timeout):
        try:
            _stop(load(conf)[1], timeout)
        except ArchipelagoError as e:
            fail(e)

    @cli.command(help="stop, then start detached")
    @click.pass_context
    def restart(ctx):
        ctx.invoke(stop)
        ctx.invoke(start)

    @cli.command(help="exit 0 if running (prints the pid), 3 if not")
    @click.pass_obj
    def status(conf):
        try:
            pidfile = load(conf)[1]
        except ArchipelagoError as e:
            fail(e)
        pid = _pid(pidfile)
        if pid is None:
            click.echo(f"{prog} is not running")
            sys.exit(3)
        click.echo(f"{prog} is running (pid {pid})")

    return cli


def _wait_started(pidfile, logfile, timeout=15):
    """The daemon's pid once its pid file exists; ArchipelagoError if it never does."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = _pid(pidfile)
        if pid is not None:
            return pid
        time.sleep(0.05)
    tail = ""
    if logfile.exists():
        lines = logfile.read_text().strip().splitlines()
        tail = f": {lines[-1]}" if lines else ""
    raise ArchipelagoError(f"the daemon did not start within {timeout}s (see {logfile}){tail}")


def _stop(pidfile, timeout):
    pid = _pid(pidfile)
    if pid is None:
        click.echo("not running")
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _pid(pidfile) is None:
            click.echo(f"stopped (pid {pid})")
            return
        time.sleep(0.1)
    raise ArchipelagoError(f"pid {pid} did not stop within {timeout:g}s")
