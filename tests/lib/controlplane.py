"""Fixture: a one-machine cluster (tools/cluster.py) on the session's private RabbitMQ.

Register both as plugins so the session's broker is one fixture for every module
(a fixture imported into several modules would be one broker per module):

    pytest_plugins = ["rabbitmq", "controlplane"]

A test module sets NODES = ("nas-1-0", ("compute-1-0", "compute-1-1")) to get its own
node names (queues are durable and the broker is shared by the session), optionally
VOLUMES ("memory"|"engine"), ATTACHER ("uri"|"kernel"|"memory") and MAP_TIMEOUT.
"""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cluster(rabbitmq, tmp_path_factory, request):
    from cluster import Cluster  # tools/cluster.py, put on sys.path by rabbitmq.py
    nas, computes = getattr(request.module, "NODES", ("nas-0-0", ("compute-0-0",
                                                                   "compute-0-1")))
    cl = Cluster(tmp_path_factory.mktemp("cluster"), nas=nas, computes=computes,
                 map_timeout=getattr(request.module, "MAP_TIMEOUT", 10),
                 volumes=getattr(request.module, "VOLUMES", "memory"),
                 attacher=getattr(request.module, "ATTACHER", "uri"))
    cl.url = rabbitmq.url
    cl.broker = rabbitmq
    watchdog = _watchdog(cl)
    try:
        for name, _ in cl.nodes():
            cl.start_node(name, wait=False)
        for name, _ in cl.nodes():
            cl.wait_ready(name)
        yield cl
    finally:
        cl.stop_nodes(timeout=10)
        watchdog.kill()
        watchdog.wait()


def _watchdog(cl):
    """Stop the cluster's daemons if this test process dies without its teardown."""
    from cluster import DAEMON
    stops = "; ".join(
        f"ARCHIPELAGO_RUN_DIR={shlex.quote(str(cl.dir / name))} "
        f"{shlex.quote(str(Path(sys.executable).parent / DAEMON[role]))} "
        f"-c {shlex.quote(str(cl.conf(name)))} stop"
        for name, role in cl.nodes())
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; {stops}"
    return subprocess.Popen(["sh", "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
