"""EngineVolumeService: volumes of archipelago.volume.VolumeEngine on a FileStore
under the NAS state dir (one store per pool), each mapped volume exported by its own
in-process NBD server that allows only the compute node's addresses.

Exports survive a daemon restart: (pool, volume, host, port) are kept in
state_dir/exports.json and served again on the same ports at start, so a compute
node's NBD connection can reconnect.
"""
import json
import logging
import os
import shutil
import socket
import threading

from archipelago.errors import Busy, InvalidArgument, NotFound, Unavailable
from archipelago.nbd import engine as nbd_engine
from archipelago.nbd.registry import ExportRegistry
from archipelago.nbd.server import Server
from archipelago.nbd.settings import AllowList, parse_address
from archipelago.store.file import FileStore
from archipelago.units import format_size
from archipelago.volume import VolumeEngine

from ..config import NAS
from .base import VolumeInfo, VolumeService
from .images import EngineImages

log = logging.getLogger(__name__)


class EngineBackend(nbd_engine.EngineBackend):
    """A mapped volume: its server closes the volume when the last client leaves."""

    def close(self):
        self.engine.close(self.name)


class EngineVolumeService(EngineImages, VolumeService):
    def __init__(self, node):
        sec = node.cfg.section(NAS)
        self.root = node.state_dir / "pools"
        self.rados_cfg = node.cfg if sec.store == "rados" else None   # docs/rados.md
        self.listen = sec.nbd_listen
        self.uri_host = sec.nbd_host or node.name
        self.hosts = _host_table(sec.hosts)
        self.owner = f"nas:{node.name}"
        self.engines = {}
        self.servers = {}             # (pool, name) -> (Server, host)
        self._lock = threading.Lock()
        self._table = node.state_dir / "exports.json"
        self._restore()

    def engine(self, pool):
        if pool not in self.engines:
            d = self.root / pool
            d.mkdir(parents=True, exist_ok=True)
            store = FileStore(d) if self.rados_cfg is None else _rados(self.rados_cfg, pool)
            self.engines[pool] = VolumeEngine(store, owner=self.owner)
        return self.engines[pool]

    def _info(self, pool, name):
        return self.engine(pool).info(name)

    def ensure(self, pool, name, size):
        eng = self.engine(pool)
        try:
            have = eng.info(name).size
        except NotFound:
            eng.create(name, size)
            return VolumeInfo(pool, name, size, True)
        if have < size:
            raise InvalidArgument(f"volume {name} exists with {format_size(have)}, smaller "
                                  f"than the {format_size(size)} asked for")
        return VolumeInfo(pool, name, have, False, self._exported_to(pool, name))

    def remove(self, pool, name):
        if (pool, name) in self.servers:
            raise Busy(f"volume {name} is exported to {self.servers[(pool, name)][1]}")
        self.engine(pool).remove(name)

    def exists(self, pool, name):
        try:
            self._info(pool, name)
            return True
        except NotFound:
            return False

    def _exported_to(self, pool, name):
        entry = self.servers.get((pool, name))
        return entry[1] if entry else None

    def export(self, pool, name, host, port=0):
        with self._lock:
            entry = self.servers.get((pool, name))
            if entry is not None:
                if entry[1] != host:
                    raise Busy(f"volume {name} is exported to {entry[1]}")
                return self._uri(entry[0], name)
            self._info(pool, name)                     # NotFound before serving
            allow = AllowList(self._addresses(host))
            eng = self.engine(pool)
            exports = ExportRegistry([nbd_engine.SingleExport(
                name, lambda: EngineBackend(eng, name))])
            srv = Server(exports, [parse_address(f"{self.listen}:{port}")], allow)
            try:
                srv.start()
            except OSError as e:
                raise Unavailable(f"cannot serve {name} over NBD: {e.strerror}") from None
            self.servers[(pool, name)] = (srv, host)
            self._save()
            log.info("exporting %s/%s to %s on port %d", pool, name, host,
                     srv.addresses[0].port)
            return self._uri(srv, name)

    def _uri(self, srv, name):
        return f"nbd://{self.uri_host}:{srv.addresses[0].port}/{name}"

    def unexport(self, pool, name):
        with self._lock:
            entry = self.servers.pop((pool, name), None)
            if entry is not None:
                entry[0].stop()
                self._save()
                log.info("stopped exporting %s/%s", pool, name)

    def list(self):
        out = []
        for pool in sorted(p.name for p in self.root.iterdir()) if self.root.exists() else []:
            for info in self.engine(pool).list():
                out.append(VolumeInfo(pool, info.name, info.size, False,
                                      self._exported_to(pool, info.name)))
        return out

    def capacity(self):
        self.root.mkdir(parents=True, exist_ok=True)
        du = shutil.disk_usage(self.root)
        return du.total, du.free

    def close(self):
        with self._lock:
            for srv, _host in self.servers.values():
                srv.stop()
            self.servers.clear()
        for eng in self.engines.values():
            eng.shutdown()

    # -- export table --
    def _addresses(self, host):
        if host in self.hosts:
            return self.hosts[host]
        try:
            return sorted({ai[4][0] for ai in socket.getaddrinfo(host, None)})
        except socket.gaierror:
            raise Unavailable(f"compute node {host} is unavailable: cannot resolve its "
                              f"address (add {host}=ADDRESS to [nas] hosts)") from None

    def _save(self):
        table = [{"pool": p, "volume": n, "host": h, "port": s.addresses[0].port}
                 for (p, n), (s, h) in self.servers.items()]
        tmp = self._table.with_suffix(".tmp")
        tmp.write_text(json.dumps(table))
        os.replace(tmp, self._table)

    def _restore(self):
        try:
            table = json.loads(self._table.read_text())
        except (OSError, ValueError):
            return
        for e in table:
            try:
                self.export(e["pool"], e["volume"], e["host"], e["port"])
            except Exception as err:       # one bad export must not stop the NAS
                log.error("could not export %s/%s again: %s", e.get("pool"),
                          e.get("volume"), err)


def _host_table(pairs):
    table = {}
    for pair in pairs:
        name, sep, addr = pair.partition("=")
        if not sep:
            raise InvalidArgument(f"[nas] hosts: {pair!r} is not NAME=ADDRESS")
        table.setdefault(name, []).append(addr)
    return table


def _rados(cfg, pool):
    """[nas] store = rados: the volume pool's objects in namespace POOL of [rados]."""
    from archipelago.store.rados import RadosStore
    return RadosStore.from_config(cfg, "rados", namespace=pool)
