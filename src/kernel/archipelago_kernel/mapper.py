"""map / unmap / showmapped: volumes of the local nbdd as block devices.

    m = Mapper().map("vm1")           # Mapping, m.device == "/dev/loop3"
    Mapper().unmap("/dev/loop3")      # or unmap("vm1"); refuses if mounted/open
    Mapper().showmapped()             # [(Mapping, alive)]

Mapping a volume: find the local nbdd's address (its status file, else the
[nbd] config), check the export exists with an NBD_OPT_INFO, attach the NBD
URI with the first available connector (kernel nbd, else FUSE+loop), record
the mapping. Map is idempotent (the same volume in the same mode returns the
existing device); unmap is idempotent (nothing mapped is not an error).
"""
import logging

from archipelago import config as C
from archipelago.errors import ArchipelagoError, Busy
from archipelago.names import split_snapshot
from archipelago.nbd import proto
from archipelago.nbd.client import Client
from archipelago.nbd.settings import local_uri

from . import devices
from .connector import Mapping, choose, connectors
from .state import State

log = logging.getLogger(__name__)

class Mapper:
    def __init__(self, cfg=None, run_dir=None, method=None, table=None):
        """table: {name: Connector class} (default connector.connectors(); tests
        pass in-memory twins)."""
        self.cfg = cfg if cfg is not None else C.load()
        self.run_dir = run_dir or self.cfg.section(C.NODE).run_dir
        self.state = State(self.run_dir)
        self.method = method
        self.table = table if table is not None else connectors()

    def connector(self, mapping):
        return self.table[mapping.method]()

    # -- where is nbdd? -------------------------------------------------------------

    def uri(self, export):
        """The NBD URI of `export` on this node's nbdd (Unix socket preferred)."""
        return local_uri(self.cfg, export, run_dir=self.run_dir)

    @staticmethod
    def probe(uri, export):
        """Raise NotFound/Unavailable unless nbdd serves `export`."""
        with Client.connect_uri(uri) as c:
            c.go(export, opt=proto.OPT_INFO)
            c.send(proto.option(proto.OPT_ABORT))

    # -- the three verbs --------------------------------------------------------------

    def map(self, volume, read_only=False):
        _vol, snap = split_snapshot(volume)
        read_only = read_only or snap is not None
        with self.state.locked():
            for m in self.state.find(volume):
                conn = self.connector(m)
                if conn.alive(m):
                    if m.read_only != read_only:
                        mode = "read-only" if m.read_only else "read-write"
                        raise Busy(f"{volume} is already mapped {mode} at {m.device}")
                    return m
                log.warning("cleaning up stale mapping of %s at %s", m.volume, m.device)
                conn.detach(m, force=True)
                self.state.remove(m)
            uri = self.uri(volume)
            self.probe(uri, volume)
            conn = choose(self.method, self.table)()
            m = Mapping(self.state.new_id(), volume, uri, conn.name, read_only=read_only)
            try:
                conn.attach(m, self.state.work_dir(m.id))
            except BaseException:
                self.state.remove(m)
                raise
            self.state.save(m)
            log.info("mapped %s at %s (%s)", volume, m.device, conn.name)
            return m

    def unmap(self, what, force=False):
        """Unmap by device, volume or mapping id; returns what was unmapped."""
        with self.state.locked():
            found = self.state.find(what)
            for m in found:
                conn = self.connector(m)
                if not force and m.device and conn.alive(m):
                    reason = devices.busy(m.device)
                    if reason:
                        raise Busy(f"{reason}; unmount/close it first or use --force")
            for m in found:
                self.connector(m).detach(m, force=force)
                self.state.remove(m)
                log.info("unmapped %s from %s", m.volume, m.device)
            return found

    def reconnect(self, what):
        """After an nbdd restart: hand live kernel-nbd devices a fresh connection.

        Only connectors with a `reconnect(mapping)` (kernel nbd) take part; the
        kernel checks the backend identifier, so a device is never re-attached
        to another volume. FUSE+loop mappings cannot be reconnected: after an
        nbdd restart they fail I/O until unmapped and mapped again.
        """
        done = []
        with self.state.locked():
            for m in self.state.find(what):
                conn = self.connector(m)
                if hasattr(conn, "reconnect") and conn.alive(m):
                    conn.reconnect(m)
                    done.append(m)
        return done

    def showmapped(self):
        """[(Mapping, alive)] of every recorded mapping."""
        out = []
        for m in self.state.all():
            try:
                alive = self.connector(m).alive(m)
            except (ArchipelagoError, KeyError, OSError):
                alive = False
            out.append((m, alive))
        return out

