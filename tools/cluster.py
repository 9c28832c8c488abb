#!/usr/bin/env python3
"""A one-machine Archipelago cluster: a private RabbitMQ, one NAS and compute nodes,
each daemon with its own ARCHIPELAGO_RUN_DIR, config file and state database.

    tools/cluster.py up   [--dir DIR]     start it (idempotent) and print how to use it
    tools/cluster.py down [--dir DIR]     stop the daemons and the broker
    tools/cluster.py status [--dir DIR]

Used by `make up` / `make down`, tools/demo.py, the integration tests and the bench.
Layout under DIR: rabbitmq/ (broker state), <node>/ (run dir: archipelago.conf,
pid file, log/, state/), frontend/ (the rocks commands' config and state).
"""
import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RABBITMQ = ROOT / "tools" / "rabbitmq-private"
DEFAULT_DIR = Path(os.environ.get("ARCHIPELAGO_CLUSTER_DIR",
                                  f"/tmp/archipelago-cluster-{os.getuid()}"))
DAEMON = {"nas": "archipelago-nasd", "compute": "archipelago-vmd"}


def best_attacher():
    """'kernel' (FUSE+loop or kernel nbd block devices) when this host can, else 'uri'."""
    if os.geteuid() != 0:
        return "uri"
    try:
        from archipelago_kernel.connector import connectors
    except ImportError:
        return "uri"
    return "kernel" if any(c.available()[0] for c in connectors().values()) else "uri"


def best_volumes():
    """'engine' (real volumes + NBD) when the volume engine is installed, else 'memory'."""
    try:
        import archipelago.nbd.server
        import archipelago.volume  # noqa: F401
    except ImportError:
        return "memory"
    return "engine"


class Cluster:
    def __init__(self, run_dir=DEFAULT_DIR, nas="nas-0-0",
                 computes=("compute-0-0", "compute-0-1"), volumes="memory", attacher="uri",
                 map_timeout=30, heartbeat=1, extra=None, wrap=None, addresses=None,
                 nas_options=None):
        self.dir = Path(run_dir)
        self.nas = nas
        self.computes = list(computes)
        self.volumes, self.attacher = volumes, attacher
        self.map_timeout, self.heartbeat = map_timeout, heartbeat
        self.extra = extra or {}          # node -> extra config text (whole sections)
        self.nas_options = nas_options or {}  # more [nas] keys, e.g. {"store": "rados"}
        self.wrap = wrap or {}            # node (or "frontend"/"rabbitmq") -> argv prefix
        self.addresses = addresses or {}  # node -> IP address (default 127.0.0.1)
        self.url = None

    # -- broker --
    def start_broker(self):
        out = subprocess.run([*self.wrap.get("rabbitmq", []), str(RABBITMQ), "start",
                              str(self.dir / "rabbitmq")],
                             check=True, capture_output=True, text=True)
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def stop_broker(self):
        subprocess.run([*self.wrap.get("rabbitmq", []), str(RABBITMQ), "stop",
                        str(self.dir / "rabbitmq")], capture_output=True, text=True)

    def broker_running(self):
        return subprocess.run([*self.wrap.get("rabbitmq", []), str(RABBITMQ), "status",
                               str(self.dir / "rabbitmq")], capture_output=True).returncode == 0

    # -- nodes --
    def nodes(self):
        return [(self.nas, "nas")] + [(c, "compute") for c in self.computes]

    def role(self, name):
        return "nas" if name == self.nas else "compute"

    def address(self, name):
        return self.addresses.get(name, "127.0.0.1")

    def conf(self, name):
        return self.dir / name / "archipelago.conf"

    def write_conf(self, name, role):
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        text = (f"[node]\nname = {name}\nrole = {role}\n\n[rabbitmq]\nurl = {self.url}\n"
                f"node_heartbeat = {self.heartbeat}\n")
        if role == "nas":
            text += f"\n[nas]\nvolumes = {self.volumes}\nmap_timeout = {self.map_timeout}\n"
            if self.volumes == "engine":      # no DNS for the node names here
                hosts = " ".join(f"{c}={self.address(c)}" for c in self.computes)
                me = self.address(name)
                text += f"nbd_listen = {me}\nnbd_host = {me}\nhosts = {hosts}\n"
            text += "".join(f"{k} = {v}\n" for k, v in self.nas_options.items())
        elif role == "compute":
            text += f"\n[vm]\nattacher = {self.attacher}\n"
        text += self.extra.get(name, "")
        self.conf(name).write_text(text)
        self.conf(name).chmod(0o600)           # it holds the broker password
        return self.conf(name)

    def node_env(self, name):
        env = dict(os.environ, ARCHIPELAGO_RUN_DIR=str(self.dir / name),
                   ARCHIPELAGO_CONF=str(self.conf(name)))
        env.setdefault("ARCHIPELAGO_LOG_LEVEL", "INFO")
        return env

    def daemon(self, name, *args):
        cmd = [*self.wrap.get(name, []), str(BIN / DAEMON[self.role(name)]), "-c",
               str(self.conf(name)), *args]
        return subprocess.run(cmd, env=self.node_env(name), capture_output=True, text=True)

    def start_node(self, name, wait=True):
        self.write_conf(name, self.role(name))
        r = self.daemon(name, "start")
        if r.returncode != 0:
            raise RuntimeError(f"{name}: {r.stderr.strip() or r.stdout.strip()}")
        if wait:
            self.wait_ready(name)

    def stop_node(self, name, timeout=30):
        return self.daemon(name, "stop", "--timeout", str(timeout))

    def kill_node(self, name):
        """SIGKILL (a crash), for tests."""
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)
            (self.dir / name / f"{DAEMON[self.role(name)]}.pid").unlink(missing_ok=True)

    def detach_all(self, name):
        """Force-detach every block device a compute node attached (after its daemon
        stopped): nothing may outlive the cluster."""
        if self.attacher != "kernel":
            return
        import types

        from archipelago_vm.attach.kernel import KernelAttacher
        att = KernelAttacher(types.SimpleNamespace(run_dir=self.dir / name))
        for d in att.list():
            try:
                att.detach(d["device"], force=True)
            except Exception as e:
                print(f"{name}: could not detach {d['device']}: {e}", file=sys.stderr)

    def stop_nodes(self, timeout=30):
        """Stop every node's daemon (SIGKILL one that does not stop in `timeout`) and
        force-detach what the compute nodes attached: teardown of `down` and of tests."""
        for name, role in reversed(self.nodes()):
            if not self.conf(name).exists():
                continue
            if self.stop_node(name, timeout=timeout).returncode != 0:
                self.kill_node(name)
            if role == "compute":
                self.detach_all(name)

    def pid(self, name):
        try:
            return int((self.dir / name / f"{DAEMON[self.role(name)]}.pid").read_text())
        except (OSError, ValueError):
            return None

    def wait_ready(self, name, timeout=60):
        what = "storagemap" if self.role(name) == "nas" else "storagedev"
        end, last = time.monotonic() + timeout, None
        while time.monotonic() < end:
            r = self.rocks("list", "host", what, name, "timeout=2")
            if r.returncode == 0:
                return
            last = r.stderr.strip()
            time.sleep(0.2)
        log = self.dir / name / "log" / f"{DAEMON[self.role(name)]}.log"
        tail = log.read_text()[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"{name} did not answer within {timeout}s ({last}); log:\n{tail}")

    # -- frontend --
    def frontend_conf(self):
        d = self.dir / "frontend"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "archipelago.conf"
        if not conf.exists() or self.url not in conf.read_text():
            conf.write_text(f"[node]\nname = frontend\nrole = frontend\nstate_dir = {d}\n\n"
                            f"[rabbitmq]\nurl = {self.url}\n")
            conf.chmod(0o600)
        return conf

    def env(self):
        """The environment for `rocks` commands against this cluster."""
        return dict(os.environ, ARCHIPELAGO_CONF=str(self.frontend_conf()),
                    ARCHIPELAGO_RUN_DIR=str(self.dir / "frontend"))

    def rocks(self, *words, check=False):
        r = subprocess.run([*self.wrap.get("frontend", []), str(BIN / "rocks"),
                            *map(str, words)], env=self.env(),
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"rocks {' '.join(map(str, words))}: {r.stderr.strip()}")
        return r

    # -- all together --
    def up(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.start_broker()
        for name, _role in self.nodes():
            if self.conf(name).exists() and self.daemon(name, "status").returncode == 0:
                continue
            self.start_node(name, wait=False)
        for name, _ in self.nodes():
            self.wait_ready(name)

    def unmap_all(self):
        """Unmap every mapped volume through the NAS (so `up` starts consistent)."""
        import json
        r = self.rocks("list", "host", "storagemap", self.nas, "output-format=json",
                       "timeout=5")
        if r.returncode != 0:
            return
        for row in json.loads(r.stdout):
            if row["state"] != "unmapped":
                verb = "remove" if row["state"] == "mapped" else "clean"
                out = self.rocks(verb, "host", "storagemap", self.nas, row["volume"],
                                 "timeout=20")
                print((out.stdout or out.stderr).strip())

    def down(self):
        if self.conf(self.nas).exists() and self.daemon(self.nas, "status").returncode == 0:
            self.unmap_all()
        self.stop_nodes()
        self.stop_broker()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["up", "down", "status"])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    a = p.parse_args(argv)
    cl = Cluster(a.dir, volumes=best_volumes(), attacher=best_attacher())
    rmq = a.dir / "rabbitmq" / "url"
    if a.command == "up":
        cl.up()
        print(f"cluster up under {a.dir}: broker {cl.url.rsplit('@', 1)[-1]}, "
              f"{cl.nas} + {', '.join(cl.computes)}")
        print(f"  export ARCHIPELAGO_CONF={cl.frontend_conf()}")
        print(f"  .venv/bin/rocks add host storagemap {cl.nas} pool vol1 {cl.computes[0]} 10G")
        print(f"  .venv/bin/rocks list host storagemap {cl.nas}")
        print("  make down   # stops it")
    elif a.command == "down":
        if rmq.exists():
            cl.url = rmq.read_text().strip()
        cl.down()
        print(f"cluster under {a.dir} stopped")
    else:
        if not rmq.exists() or not cl.broker_running():
            print("broker: stopped")
            return 3
        cl.url = rmq.read_text().strip()
        print(f"broker: running ({cl.url.rsplit('@', 1)[-1]})")
        for name, _ in cl.nodes():
            out = cl.daemon(name, "status") if cl.conf(name).exists() else None
            print(f"{name}: {out.stdout.strip() if out else 'not configured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
