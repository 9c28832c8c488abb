"""archipelago-nasd / archipelago-vmd as daemons: start|stop|restart|status, pid file,
--foreground, SIGTERM, bad configuration (real RabbitMQ)."""
import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["rabbitmq"]
pytestmark = pytest.mark.rabbitmq


def daemon_bin(name):
    return str(Path(sys.executable).parent / name)


def _die_with_parent():
    """PR_SET_PDEATHSIG: the daemon gets SIGKILL if the test process dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def conf(tmp_path, url, name="nas-3-0", extra=""):
    run = tmp_path / name
    run.mkdir(exist_ok=True)
    c = run / "archipelago.conf"
    c.write_text(f"[node]\nname = {name}\nrun_dir = {run}\nstate_dir = {run}/state\n"
                 f"log_dir = {run}/log\n[rabbitmq]\nurl = {url}\nnode_heartbeat = 1\n{extra}")
    return c, run


def run(prog, c, *args):
    return subprocess.run([daemon_bin(prog), "-c", str(c), *args], capture_output=True,
                          text=True, timeout=60)


def test_start_status_restart_stop(rabbitmq, tmp_path):
    c, rundir = conf(tmp_path, rabbitmq.url)
    pidfile = rundir / "archipelago-nasd.pid"
    assert run("archipelago-nasd", c, "status").returncode == 3
    r = run("archipelago-nasd", c, "start")
    assert r.returncode == 0, r.stderr
    try:
        st = run("archipelago-nasd", c, "status")
        assert st.returncode == 0 and "running" in st.stdout
        pid = int(pidfile.read_text())
        again = run("archipelago-nasd", c, "start")
        assert again.returncode != 0 and "already running" in again.stderr
        r = run("archipelago-nasd", c, "restart")
        assert r.returncode == 0, r.stderr
        assert int(pidfile.read_text()) != pid
    finally:
        r = run("archipelago-nasd", c, "stop")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert run("archipelago-nasd", c, "status").returncode == 3
    assert not pidfile.exists()
    assert "started" in (rundir / "log" / "archipelago-nasd.log").read_text()


def test_foreground_sigterm(rabbitmq, tmp_path):
    c, rundir = conf(tmp_path, rabbitmq.url, "compute-3-0", "[vm]\nattacher = memory\n")
    p = subprocess.Popen([daemon_bin("archipelago-vmd"), "-c", str(c), "start",
                          "--foreground"], stderr=subprocess.PIPE, text=True,
                         preexec_fn=_die_with_parent)
    try:
        end = time.monotonic() + 30
        while not (rundir / "archipelago-vmd.pid").exists() and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(1)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        err = p.stderr.read()
        assert "stopping after the work in progress" in err and "stopped" in err
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("extra, want", [
    ("[nas]\nmap_timeout = soon\n", "map_timeout"),
    ("[nas]\nvolumez = memory\n", "unknown setting 'volumez'"),
    ("[database]\nurl = nosuchdb://x\n", "state database"),
])
def test_bad_configuration_fails_at_start(rabbitmq, tmp_path, extra, want):
    c, _ = conf(tmp_path, rabbitmq.url, extra=extra)
    r = run("archipelago-nasd", c, "start")
    assert r.returncode != 0 and want in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
