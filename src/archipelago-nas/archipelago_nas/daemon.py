"""archipelago-nasd: serves map/unmap/delete/list/attributes for one storage node."""
import logging
import time

from archipelago.bus import schema
from archipelago.bus.daemon import make_cli
from archipelago.bus.errors import BusError
from archipelago.bus.node import Node
from archipelago.errors import Unavailable

from . import handlers, imagefile, images, jobs, volumes
from .config import NAS
from .models import Base, Peer, Request
from .sync import flow
from .sync.receiver import Receiver

log = logging.getLogger(__name__)


class NasNode(Node):
    ROLE = "nas"
    METADATA = Base.metadata
    REQUEST = Request
    NOT_IMPLEMENTED = handlers.NOT_IMPLEMENTED
    SECTIONS = (NAS,)

    def __init__(self, cfg, bus=None, db_url=None, volume_service=None):
        sec = cfg.section(NAS)
        self.map_timeout = sec.map_timeout
        self.node_timeout = sec.node_timeout
        self.sweep_interval = sec.sweep_interval
        self.image_dirs = imagefile.image_dirs(sec.image_dirs)
        if not self.image_dirs:
            log.warning("[nas] image_dirs is not set: image imports may read any file "
                        "this daemon can read")
        super().__init__(cfg, bus, db_url)
        self.volumes = volume_service or volumes.make(sec.volumes, self)
        self.importer = images.Importer(self)      # image imports run as jobs

    def actions(self):
        return handlers.actions()

    def jobs(self):
        return [(self.sweep_interval, jobs.sweep), (self.sweep_interval, flow.tick)]

    def recover(self, ctx):
        jobs.recover(ctx)
        images.recover(ctx)

    def setup(self):
        super().setup()
        self.receiver = Receiver(self)           # img_sync streams (sync/receiver.py)
        if hasattr(self.volumes, "engine"):
            self.receiver.start()
        self.bus.on_heartbeat(lambda hb: self.dispatcher.run_job(
            lambda ctx: jobs.remember(ctx, hb)))

    def capacity(self):
        return self.volumes.capacity() or super().capacity()

    def check_alive(self, session, host):
        """Unavailable if `host` was heard from but has missed its heartbeats."""
        peer = session.get(Peer, host)
        if peer is None:
            return
        age = time.time() - peer.last_seen
        if age > peer.interval * self.node_timeout:
            raise Unavailable(f"compute node {host} is unavailable: its last heartbeat was "
                              f"{age:.0f}s ago")

    def undo_attach(self, host, volume):
        """Best effort: tell `host` to force-detach `volume` (its reply is ignored)."""
        msg = schema.request("unmap", f"undo-{schema.new_request_id()}", volume=volume,
                             force=True)
        try:
            self.bus.publish(host, msg, reply_to=self.name, correlation_id=msg["request_id"],
                             expiration=600)
        except BusError as e:
            log.warning("could not ask %s to detach %s: %s", host, volume, e)

    def run(self):
        try:
            super().run()
        finally:
            self.receiver.stop()
            self.volumes.close()


cli = make_cli("archipelago-nasd", NasNode)


def main():
    cli(prog_name="archipelago-nasd")
