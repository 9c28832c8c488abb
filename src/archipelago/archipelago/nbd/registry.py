"""The export registry: export name -> open backend, shared and reference-counted.

An export name is a volume name, or `VOLUME@SNAP` for a snapshot, which is
always exported read-only. Names are validated with archipelago.names before
any provider sees them, so no provider ever gets a path or a stray '/'.

Providers are the seam where storage plugs in. A provider answers `open()` for
the names it knows and `names()` for NBD_OPT_LIST; the registry asks each in
order. Shipped here: `MemoryProvider` (RAM disks declared up front) and
`FileProvider` (raw files `DIR/NAME`, snapshots `DIR/NAME@SNAP` read-only).
The volume provider (archipelago.client opening a volume through vlmcd) is a
third implementation of the same two methods; see docs/nbd.md.

All connections to one export share one Backend (opened on first use, closed
when the last connection goes), which is what lets the server advertise
NBD_FLAG_CAN_MULTI_CONN when the backend's flush covers all of them.
"""
import abc
import logging
import threading
from dataclasses import dataclass, field

from ..errors import InvalidArgument, NotFound
from ..names import split_snapshot
from .backend import Filter, ReadOnlyView

log = logging.getLogger(__name__)


class Provider(abc.ABC):
    """Resolves validated export names to backends."""

    @abc.abstractmethod
    def open(self, volume, snapshot):
        """A new Backend for VOLUME (snapshot None) or VOLUME@SNAP; NotFound if unknown.

        The registry wraps snapshot backends read-only; a provider may also
        return a read-only backend for a volume (e.g. a locked one).
        """

    def names(self):
        """Export names to list for NBD_OPT_LIST (may be a subset)."""
        return []


class MemoryProvider(Provider):
    """RAM disks declared by name and size; their contents live as long as the server."""

    def __init__(self, disks=None):
        from .memory import MemoryBackend
        self._make = MemoryBackend
        self._sizes = dict(disks or {})
        self._disks = {}
        self._lock = threading.Lock()

    def open(self, volume, snapshot):
        if snapshot is not None or volume not in self._sizes:
            raise NotFound(f"no memory export {volume!r}")
        with self._lock:
            if volume not in self._disks:
                self._disks[volume] = self._make(self._sizes[volume], f"memory {volume}")
            return _Persistent(self._disks[volume])

    def names(self):
        return sorted(self._sizes)


class FileProvider(Provider):
    """Raw files in one directory: export NAME is DIR/NAME, NAME@SNAP is DIR/NAME@SNAP."""

    def __init__(self, directory):
        from pathlib import Path
        self.directory = Path(directory)

    def open(self, volume, snapshot):
        from .file import FileBackend
        fname = volume if snapshot is None else f"{volume}@{snapshot}"
        path = self.directory / fname
        if not path.is_file():
            raise NotFound(f"no export {fname!r} in {self.directory}")
        return FileBackend(path, read_only=snapshot is not None)

    def names(self):
        if not self.directory.is_dir():
            return []
        names = []
        for p in self.directory.iterdir():
            try:
                split_snapshot(p.name)
            except InvalidArgument:
                continue                  # not exportable under that name
            if p.is_file():
                names.append(p.name)
        return sorted(names)


class _Persistent(Filter):
    """Forwards everything but close(): the provider keeps the backend alive."""

    def close(self):
        pass


@dataclass
class Export:
    """One open export, shared by its connections."""

    name: str
    backend: object
    refs: int = 0
    clients: list = field(default_factory=list)

    @property
    def read_only(self):
        return self.backend.read_only


class ExportRegistry:
    """Maps export names to shared backends through a list of providers."""

    def __init__(self, providers=()):
        self.providers = list(providers)
        self._open = {}
        self._lock = threading.Lock()

    def add_provider(self, provider):
        self.providers.append(provider)

    @staticmethod
    def check_name(name):
        """(volume, snapshot) for a valid export name; InvalidArgument otherwise."""
        if not name:
            raise InvalidArgument("this server has no default export; name a volume")
        return split_snapshot(name)

    def acquire(self, name, client="?"):
        """The Export for `name`, opened on first use; pair with release()."""
        volume, snapshot = self.check_name(name)
        with self._lock:
            exp = self._open.get(name)
            if exp is None:
                backend = self._resolve(volume, snapshot)
                if snapshot is not None and not backend.read_only:
                    backend = ReadOnlyView(backend)
                exp = self._open[name] = Export(name, backend)
                log.info("export %s opened (%s, %d bytes%s)", name, backend.description,
                         backend.size(), ", read-only" if backend.read_only else "")
            exp.refs += 1
            exp.clients.append(client)
            return exp

    def release(self, exp, client="?"):
        with self._lock:
            exp.refs -= 1
            if client in exp.clients:
                exp.clients.remove(client)
            if exp.refs > 0:
                return
            self._open.pop(exp.name, None)
        try:
            exp.backend.close()
        finally:
            log.info("export %s closed", exp.name)

    def _resolve(self, volume, snapshot):
        for p in self.providers:
            try:
                return p.open(volume, snapshot)
            except NotFound:
                continue
        shown = volume if snapshot is None else f"{volume}@{snapshot}"
        raise NotFound(f"no such export {shown!r}")

    def names(self):
        seen = []
        for p in self.providers:
            for n in p.names():
                if n not in seen:
                    seen.append(n)
        return seen

    def status(self):
        """[{name, size, read_only, connections, clients}] of the open exports."""
        with self._lock:
            return [{"name": e.name, "size": e.backend.size(), "read_only": e.read_only,
                     "connections": e.refs, "clients": list(e.clients)}
                    for e in self._open.values()]
