"""archipelago-vmd: attaches and detaches volumes on one compute node."""
import logging

from sqlalchemy import select

from archipelago.bus.daemon import make_cli
from archipelago.bus.node import Node

from . import attach, handlers
from .config import VM
from .models import Base, Device, Request
from .replica.config import REPLICA

log = logging.getLogger(__name__)


class VmNode(Node):
    ROLE = "compute"
    METADATA = Base.metadata
    REQUEST = Request
    NOT_IMPLEMENTED = handlers.NOT_IMPLEMENTED
    SECTIONS = (VM, REPLICA)

    def __init__(self, cfg, bus=None, db_url=None, attacher=None):
        super().__init__(cfg, bus, db_url)
        self.attacher = attacher or attach.make(cfg.section(VM).attacher, self)
        self._replicas = None

    @property
    def replicas(self):
        """The local replicas (img_sync), created on first use."""
        if self._replicas is None:
            from .replica import ReplicaService
            self._replicas = ReplicaService(self)
        return self._replicas

    def replica_progress(self, volume):
        if self._replicas is None or self._replicas.get(volume) is None:
            return None
        return self._replicas.progress(volume)

    def jobs(self):
        from .replica.handlers import drain
        return [(1, drain)]

    def actions(self):
        return handlers.actions()

    def recover(self, ctx):
        """Serve the local replicas again; drop the rows of devices that disappeared
        while we were down."""
        if (self.state_dir / "replicas" / "replicas.json").exists():
            self.replicas.restore()
        rows = {d.device: d for d in ctx.session.scalars(select(Device))}
        for gone in self.attacher.reconcile([(d.device, d.uri) for d in rows.values()]):
            log.warning("volume %s (%s) is no longer attached; forgetting it",
                        rows[gone].volume, gone)
            ctx.session.delete(rows[gone])

    def run(self):
        try:
            super().run()
        finally:
            if self._replicas is not None:
                self._replicas.close()


cli = make_cli("archipelago-vmd", VmNode)


def main():
    cli(prog_name="archipelago-vmd")
