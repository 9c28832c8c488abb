"""A private RabbitMQ for the test session (tools/rabbitmq-private): state under a
temp dir, a free port, vhost `archipelago`, its own user. One broker per session.

    pytest_plugins = ["rabbitmq"]      # in the test module: one broker per session

    def test_x(rabbitmq):
        rabbitmq.url; rabbitmq.restart()
Skips on a laptop without rabbitmq-server, fails under CI (conftest.require_service).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "rabbitmq-private"
sys.path.insert(0, str(ROOT / "tools"))   # tools/cluster.py for the cluster fixtures


class Broker:
    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        self.url = None

    def _run(self, *args):
        return subprocess.run([str(TOOL), *args, str(self.dir)], capture_output=True,
                              text=True, timeout=120)

    def start(self):
        r = self._run("start")
        if r.returncode != 0:
            raise RuntimeError(f"private RabbitMQ did not start: {r.stderr.strip()}")
        self.url = r.stdout.strip().splitlines()[-1]
        return self.url

    def watch(self):
        """Stop the broker if this test process dies without its teardown (a killed
        session must not leave a broker behind): libnbd's --exit-with-parent idea."""
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; "
                  f"exec {TOOL} stop {self.dir}")
        self._watchdog = subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)

    def stop(self):
        self._run("stop")
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None and watchdog.poll() is None:
            watchdog.kill()
            watchdog.wait()

    def restart(self):
        """Stop and start on the same port with the same state (durable queues stay)."""
        self.stop()
        self.start()


def available():
    return Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() and shutil.which("ss")


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory):
    require_service(available(), "rabbitmq-server")
    broker = Broker(tmp_path_factory.mktemp("rabbitmq"))
    try:
        broker.start()
        broker.watch()
    except RuntimeError as e:
        require_service(False, str(e))
    yield broker
    broker.stop()
