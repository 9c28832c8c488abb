"""The skeleton both daemons share: config, bus, database, dispatcher, heartbeats,
graceful stop. A daemon subclasses Node and fills in its role, actions and jobs.
"""
import logging
import os
import shutil
import signal
import time

from .. import __version__
from ..config import NODE
from .config import RABBITMQ, broker_url
from .db import DATABASE, Database, default_url
from .dispatch import Dispatcher
from .schema import validate_host

log = logging.getLogger(__name__)


class Node:
    """One daemon on one node. Subclasses set ROLE, METADATA, REQUEST, and actions()."""

    ROLE = "node"
    METADATA = None          # the models' MetaData
    REQUEST = None           # the models' Request (idempotency log)
    NOT_IMPLEMENTED = ()
    SECTIONS = ()

    def __init__(self, cfg, bus=None, db_url=None):
        cfg.check(NODE, RABBITMQ, DATABASE, *self.SECTIONS)
        self.cfg = cfg
        node = cfg.section(NODE)
        self.name = validate_host(node.name, "node")
        self.state_dir = node.state_dir
        self.run_dir = node.run_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        rmq = cfg.section(RABBITMQ)
        self.heartbeat_interval = rmq.node_heartbeat
        if bus is None:
            from .pika_bus import PikaBus
            bus = PikaBus(broker_url(cfg), amqp_heartbeat=rmq.amqp_heartbeat)
        self.bus = bus
        self.db = Database(db_url or default_url(cfg, self.state_dir, self.ROLE), self.METADATA)
        self.dispatcher = Dispatcher(bus, self, self.db, self.REQUEST, self.actions(),
                                     self.NOT_IMPLEMENTED)
        self.started = time.time()

    @classmethod
    def check(cls, cfg):
        """Fail fast at `start`: every config section valid, the database reachable."""
        cfg.check(NODE, RABBITMQ, DATABASE, *cls.SECTIONS)
        node = cfg.section(NODE)
        validate_host(node.name, "node")
        node.state_dir.mkdir(parents=True, exist_ok=True)
        Database(default_url(cfg, node.state_dir, cls.ROLE), cls.METADATA).dispose()
        broker_url(cfg)

    def actions(self):
        raise NotImplementedError

    def jobs(self):
        """[(seconds, fn(ctx))]: periodic work run in its own session."""
        return []

    def capacity(self):
        """(capacity, free) bytes for heartbeats; the state dir's file system."""
        du = shutil.disk_usage(self.state_dir)
        return du.total, du.free

    REQUEST_TTL = 7 * 86400      # seconds a finished request_id stays deduplicated

    def prune_requests(self, ctx):
        """Forget finished requests older than REQUEST_TTL (the log must not grow)."""
        from sqlalchemy import delete
        R = self.REQUEST
        ctx.session.execute(delete(R).where(R.reply.is_not(None),
                                            R.created < time.time() - self.REQUEST_TTL))

    def recover(self, ctx):
        """Called once at start in a session: resume or roll back unfinished work."""

    def heartbeat_message(self):
        total, free = self.capacity()
        return {"v": 1, "action": "heartbeat", "request_id": f"hb-{self.name}",
                "name": self.name, "role": self.ROLE, "version": __version__,
                "capacity": total, "free": free, "load": round(os.getloadavg()[0], 2),
                "time": time.time(), "interval": self.heartbeat_interval}

    def setup(self):
        """Wire the bus: our queue, heartbeats, periodic jobs; recover old work."""
        self.dispatcher.run_job(self.recover)
        self.bus.consume(self.name, self.dispatcher)
        self.bus.every(self.heartbeat_interval, lambda: self.bus.heartbeat(
            self.heartbeat_message()))
        for seconds, job in [*self.jobs(), (600, self.prune_requests)]:
            self.bus.every(seconds, lambda job=job: self.dispatcher.run_job(job))

    def run(self):
        """Serve until SIGTERM/SIGINT; the message in progress finishes first."""
        def on_signal(signum, _frame):
            log.info("%s: signal %d, stopping after the work in progress", self.name, signum)
            self.bus.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.setup()
        log.info("%s %s started (queue %s)", self.ROLE, self.name, self.name)
        try:
            self.bus.heartbeat(self.heartbeat_message())
        except Exception as e:
            log.debug("first heartbeat not sent: %s", e)
        try:
            self.bus.run()
        finally:
            self.bus.close()
            self.db.dispose()
            log.info("%s %s stopped", self.ROLE, self.name)
