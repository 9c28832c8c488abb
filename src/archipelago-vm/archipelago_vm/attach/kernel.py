"""KernelAttacher: a kernel block device for a NAS's NBD export, through
archipelago_kernel's connectors (kernel nbd via netlink, else FUSE+loop). Mapping
records live under the node's run dir (archipelago_kernel.state), so `vlmc
showmapped` on the compute node sees them too."""
import logging

from archipelago.errors import Busy
from archipelago_kernel import devices
from archipelago_kernel.connector import Mapping, choose, connectors
from archipelago_kernel.state import State

from .base import Attacher

log = logging.getLogger(__name__)


class KernelAttacher(Attacher):
    def __init__(self, node, method=None):
        self.state = State(node.run_dir)
        self.method = method

    def _alive(self, m):
        try:
            return connectors()[m.method]().alive(m)
        except (KeyError, OSError):
            return False

    def attach(self, uri, read_only=False):
        volume = uri.rsplit("/", 1)[-1]
        with self.state.locked():
            for m in self.state.all():
                if m.uri != uri:
                    continue
                if self._alive(m) and m.read_only == read_only:
                    return m.device
                log.warning("cleaning up stale mapping of %s at %s", m.volume, m.device)
                connectors()[m.method]().detach(m, force=True)
                self.state.remove(m)
            conn = choose(self.method)()
            m = Mapping(self.state.new_id(), volume, uri, conn.name, read_only=read_only)
            try:
                conn.attach(m, self.state.work_dir(m.id))
            except BaseException:
                self.state.remove(m)
                raise
            self.state.save(m)
            log.info("attached %s at %s (%s)", uri, m.device, conn.name)
            return m.device

    def detach(self, device, force=False):
        with self.state.locked():
            found = [m for m in self.state.all() if device in (m.device, m.uri)]
            for m in found:
                if not force and m.device and self._alive(m):
                    reason = devices.busy(m.device)
                    if reason:
                        raise Busy(f"{reason}; stop what uses it and retry (or force)")
            for m in found:
                connectors()[m.method]().detach(m, force=force)
                self.state.remove(m)
                log.info("detached %s from %s", m.uri, m.device)

    def list(self):
        return [{"device": m.device, "uri": m.uri} for m in self.state.all()]
