"""archipelago-vmd: attaches and detaches volumes on one compute node."""
import logging

from sqlalchemy import select

from archipelago.bus.daemon import make_cli
from archipelago.bus.node import Node

from . import attach, handlers
from .config import VM
from .models import Base, Device, Request

log = logging.getLogger(__name__)


class VmNode(Node):
    ROLE = "compute"
    METADATA = Base.metadata
    REQUEST = Request
    NOT_IMPLEMENTED = handlers.NOT_IMPLEMENTED
    SECTIONS = (VM,)

    def __init__(self, cfg, bus=None, db_url=None, attacher=None):
        super().__init__(cfg, bus, db_url)
        self.attacher = attacher or attach.make(cfg.section(VM).attacher, self)

    def actions(self):
        return handlers.actions()

    def recover(self, ctx):
        """Drop the rows of devices that disappeared while we were down."""
        rows = {d.device: d for d in ctx.session.scalars(select(Device))}
        for gone in self.attacher.reconcile([(d.device, d.uri) for d in rows.values()]):
            log.warning("volume %s (%s) is no longer attached; forgetting it",
                        rows[gone].volume, gone)
            ctx.session.delete(rows[gone])


cli = make_cli("archipelago-vmd", VmNode)


def main():
    cli(prog_name="archipelago-vmd")
