"""A real Archipelago node for integration tests: its own config, run dir and segment.

    node = Node(tmp_path, "nodea")            # storage under tmp_path/shared
    node.start()                              # `archipelago start` (real peers)
    node.vlmc("create", "v", "--size", "64M")
    with node.client() as c: ...              # archipelago.client through vlmcd
    node.kill("mapperd"); node.start("mapperd")
    node.start_nbdd()                         # the node's NBD server (Unix socket)
    node.stop()                               # teardown: stop, then SIGKILL leftovers

nbdd listens on RUN_DIR/nbd.sock only (no TCP port to collide on). With the
default `[nbd] datapath = colocated` it is the vlmcd role's process (so
kill("vlmcd") kills nbdd); with `settings={"nbd": {"datapath": "peers"}}` it is
a process of its own that `archipelago start` runs after the roles.

Two Nodes built on one `shared` directory are two hosts on shared storage: their
own segments and peers, the same blocks and maps (and so the same volume locks).
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROLES = ("blockerb", "blockerm", "mapperd", "vlmcd")


class Node:
    def __init__(self, root, name="nodea", shared=None, extra="", settings=None):
        """settings: {section: {key: value}} merged into the generated config;
        extra: raw text appended (new sections only)."""
        self.root = Path(root) / name
        self.name = name
        self.shared = Path(shared or Path(root) / "shared")
        self.run_dir = self.root / "run"
        self.segment = f"archtest-{uuid.uuid4().hex[:10]}"
        self.conf = self.root / "archipelago.conf"
        self.root.mkdir(parents=True, exist_ok=True)
        sections = {
            "node": {"name": name, "run_dir": self.run_dir, "state_dir": self.root / "state",
                     "log_dir": self.root / "log"},
            "XSEG": {"segment_name": self.segment, "segment_size": 128,
                     "request_timeout": 60},
            "blockerb": {"archip_dir": self.shared / "blocks"},
            "blockerm": {"archip_dir": self.shared / "maps"},
            "mapperd": {"lease_ttl": 10},
            "nbd": {"listen": f"unix:{self.run_dir}/nbd.sock"},
        }
        for sec, values in (settings or {}).items():
            sections.setdefault(sec, {}).update(values)
        text = "".join(f"[{sec}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                       for sec, values in sections.items())
        self.conf.write_text(text + extra)

    # -- commands -------------------------------------------------------------------
    def env(self):
        env = dict(os.environ, ARCHIPELAGO_CONF=str(self.conf),
                   ARCHIPELAGO_RUN_DIR=str(self.run_dir))
        env.pop("CI_DEBUG", None)
        return env

    def run(self, module, *args, input=None, check=True, timeout=120):
        cmd = [sys.executable, "-m", module, "-c", str(self.conf), *map(str, args)]
        p = subprocess.run(cmd, input=input, capture_output=True, env=self.env(),
                           timeout=timeout)
        p.out = p.stdout.decode(errors="replace")
        p.err = p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd[2:])}: exit {p.returncode}\n{p.err}"
                                 f"{self.logs()}")
        return p

    def archipelago(self, *args, **kw):
        return self.run("archipelago.cli.node", *args, **kw)

    def vlmc(self, *args, **kw):
        return self.run("archipelago.cli.vlmc", *args, **kw)

    def client(self):
        from archipelago import client
        return client.connect(str(self.conf))

    # -- peers ------------------------------------------------------------------------
    def start(self, role=None):
        self.archipelago("start", *([role] if role else []))

    def pid(self, role):
        try:
            return int((self.run_dir / f"{role}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self, role, sig=signal.SIGKILL):
        pid = self.pid(role)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            _wait_gone(pid)
        return pid

    def start_nbdd(self):
        """The node's nbdd (`archipelago start nbdd`: with the co-located data path,
        the vlmcd role's process), once it serves; returns a handle with its pid."""
        self.archipelago("start", "nbdd")
        status = self.run_dir / "nbdd.json"
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = self.pid("nbdd")
        if not status.exists() or pid is None:
            raise RuntimeError(f"nbdd did not start:\n{self.logs()}")
        self.nbdd = NodeProcess(pid)
        return self.nbdd

    def stop(self):
        """Stop everything this node started, whatever state it is in."""
        with contextlib.suppress(Exception):
            self.archipelago("stop", check=False, timeout=60)
        for role in (*ROLES, "nbdd"):
            self.kill(role)
        with contextlib.suppress(Exception):
            import xseg
            xseg.Segment.destroy(self.segment)

    def logs(self):
        out = []
        for f in sorted((self.root / "log").glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-8:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)


class NodeProcess:
    """A process `archipelago start` ran (not our child): pid, kill, wait."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if _running(self.pid) else 0

    def kill(self, sig=signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        return self

    def terminate(self):
        return self.kill(signal.SIGTERM)

    def wait(self, timeout=None):
        _wait_gone(self.pid, timeout or 30)
        if _running(self.pid):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
        return 0


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.02)
