"""Start, stop and report the node's peers: foreground processes tracked by pid files.

Each role runs as `python -m archipelago.peers ROLE` in its own session, with
stdout/stderr appended to LOG_DIR/ROLE.log. The peer itself writes RUN_DIR/ROLE.pid
once its ports are bound (so "pid file present" means "ready") and removes it on a
clean exit; a pid file whose process is gone, or is not that role, is stale.
The segment is created before the first role starts and destroyed when the last
one stops, so the segment never outlives the node's peers.

nbdd is one of these processes (`peers.config.processes`): with `[nbd] datapath
= colocated` it *is* the vlmcd role's process (same pid file, log, readiness and
stop as vlmcd; `nbdd` names that role too), with `peers` it is a process of its
own after every role (started last, stopped first) when [nbd] is configured.
"""
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from .. import config as C
from .. import process
from ..errors import InvalidArgument, Unavailable
from . import config as PC
from . import segment

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0    # seconds for a role to bind its ports
STOP_TIMEOUT = 15.0     # seconds for a role to drain before SIGKILL


@dataclass
class RoleStatus:
    role: str
    type: str
    state: str          # running, stopped, dead
    pid: int | None
    ports: str
    log: str
    host: str = ""      # "nbdd": this role runs in nbdd's process (datapath = colocated)

    def line(self):
        what = {"running": f"running (pid {self.pid})", "stopped": "stopped",
                "dead": f"dead (stale pid file, pid {self.pid})"}[self.state]
        where = f", in {self.host} (datapath = colocated)" if self.host else ""
        return f"{self.role:<10} {self.type:<8} ports {self.ports:<10} {what}{where}"


class Supervisor:
    """The node's peers as described by a validated configuration."""

    def __init__(self, cfg, conf_path=None, as_current_user=False):
        self.cfg = cfg
        self.conf_path = conf_path
        self.as_current_user = as_current_user
        self.xseg, roles = PC.check(cfg)
        self.roles = PC.processes(cfg, roles)
        node = cfg.section(C.NODE)
        self.run_dir, self.log_dir = node.run_dir, node.log_dir
        self.state_dir = node.state_dir
        self.ident = cfg.section(PC.ARCHIPELAGO)

    # -- paths and state ------------------------------------------------------
    def pidfile(self, name):
        return self.run_dir / f"{name}.pid"

    def logfile(self, name):
        return self.log_dir / f"{name}.log"

    def select(self, name=None):
        if name is None:
            return list(self.roles)
        for r in self.roles:
            if r.name == name or (name == PC.NBDD and r.host == PC.NBDD):
                return [r]
        known = ", ".join(r.name for r in self.roles)
        raise InvalidArgument(f"unknown role {name!r} (this node runs: {known})")

    def pid_of(self, name):
        """(state, pid) of role `name` from its pid file and /proc."""
        try:
            pid = int(self.pidfile(name).read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return "stopped", None
        return ("running" if is_role_process(pid, name) else "dead"), pid

    def status(self):
        out = []
        for r in self.roles:
            state, pid = self.pid_of(r.name)
            o = r.opts
            ports = ("-" if o.portno_start is None else str(o.portno_start)
                     if o.portno_start == o.portno_end else f"{o.portno_start}-{o.portno_end}")
            out.append(RoleStatus(r.name, r.type, state, pid, ports,
                                  str(self.logfile(r.name)), r.host))
        return out

    # -- start ------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self):
        """One start/stop at a time per node (two operators, or a script and a human)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / ".supervisor.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def start(self, name=None):
        """Start the selected roles in ORDER; returns the names started now."""
        selected = self.select(name)
        self._make_dirs()
        with self._exclusive():
            return self._start(selected)

    def _start(self, selected):
        started = []
        if not segment.exists(self.xseg):
            segment.create(self.xseg, owner=self._drop_to())
        try:
            for r in selected:
                state, pid = self.pid_of(r.name)
                if state == "running":
                    log.info("%s already running (pid %d)", r.name, pid)
                    continue
                self.pidfile(r.name).unlink(missing_ok=True)
                self._spawn(r)
                started.append(r.name)
        except BaseException:
            # Roles that did start keep running (fix the cause, `start` again: it is
            # idempotent); a segment nobody uses does not outlive the failure.
            if all(s.state != "running" for s in self.status()):
                segment.destroy(self.xseg)
            raise
        return started

    def _make_dirs(self):
        for d in (self.run_dir, self.log_dir, self.state_dir):
            d.mkdir(parents=True, exist_ok=True)
            if self._drop_to():
                os.chown(d, *self._drop_to())

    def _drop_to(self):
        """(uid, gid) to run peers as, or None for the current user."""
        if self.as_current_user or os.geteuid() != 0 or not self.ident.user:
            return None
        import grp
        import pwd
        try:
            pw = pwd.getpwnam(self.ident.user)
            gid = grp.getgrnam(self.ident.group).gr_gid if self.ident.group else pw.pw_gid
        except KeyError as e:
            raise InvalidArgument(f"[ARCHIPELAGO] user/group {e} does not exist "
                                  "(use -u to run as the current user)") from None
        return pw.pw_uid, gid

    def _spawn(self, r):
        cmd = [sys.executable, "-m", "archipelago.peers", r.name]
        if self.conf_path:
            cmd += ["-c", str(self.conf_path)]
        if self._drop_to():
            # The peer drops root itself, first thing (process.spawn has no user=).
            cmd += ["--uid", str(self._drop_to()[0]), "--gid", str(self._drop_to()[1])]
        with open(self.logfile(r.name), "ab") as logf:
            log.info("starting %s", r.name)
            proc = process.spawn(cmd, stdout=logf, stderr=logf)
        self._wait_ready(r, proc)

    def _wait_ready(self, r, proc):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.pid_of(r.name) == ("running", proc.pid):
                return
            try:
                rc = proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise Unavailable(f"{r.name} exited with status {rc} at start: "
                              f"{last_line(self.logfile(r.name))}")
        proc.kill()
        raise Unavailable(f"{r.name} did not become ready in {START_TIMEOUT:.0f}s; "
                          f"see {self.logfile(r.name)}")

    # -- stop -------------------------------------------------------------------
    def stop(self, name=None, timeout=STOP_TIMEOUT):
        """Stop the selected roles in reverse ORDER; returns the names stopped now."""
        selected = self.select(name)
        with self._exclusive():
            return self._stop(selected, timeout)

    def _stop(self, selected, timeout):
        stopped = []
        for r in reversed(selected):
            state, pid = self.pid_of(r.name)
            if state == "running":
                terminate(pid, timeout)
                stopped.append(r.name)
            self.pidfile(r.name).unlink(missing_ok=True)
        if all(s.state != "running" for s in self.status()):
            segment.destroy(self.xseg)
        return stopped


def is_role_process(pid, name):
    """True if `pid` is alive and is the peer process of role `name` (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    try:
        i = argv.index(b"archipelago.peers")
    except ValueError:
        return False
    return len(argv) > i + 1 and argv[i + 1] == name.encode() and alive(pid)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pid, timeout):
    """SIGTERM, wait for the peer to drain and exit, SIGKILL after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    # Not our child (it outlived the `archipelago start` that spawned it), so there
    # is no waitpid; /proc is the only way to see it go.
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    log.warning("pid %d did not stop in %.0fs; killing it", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def last_line(path):
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def status_json(statuses):
    return json.dumps([asdict(s) for s in statuses], indent=2)
