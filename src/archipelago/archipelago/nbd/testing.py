"""An in-process nbdd for tests and benchmarks (nbdkit's start_nbdkit, in Python).

    with serve(memory={"disk": 64 << 20}) as srv:
        uri = srv.uri("disk")                  # nbd+unix:///disk?socket=...
        subprocess.run(["nbdinfo", uri])

The server runs in background threads of the calling process on a private Unix
socket (and TCP 127.0.0.1:0 with tcp=True) and is stopped on exit.
"""
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .registry import ExportRegistry, FileProvider, MemoryProvider
from .server import Server
from .settings import Address, AllowList


class Served:
    def __init__(self, server, registry):
        self.server = server
        self.registry = registry

    def uri(self, export="", tcp=False):
        for a in self.server.addresses:
            if (a.kind == "tcp") == tcp:
                return a.uri(export)
        raise LookupError("no such listener")

    @property
    def unix_path(self):
        return next(a.path for a in self.server.addresses if a.kind == "unix")

    @property
    def tcp_port(self):
        return next(a.port for a in self.server.addresses if a.kind == "tcp")


@contextmanager
def serve(memory=None, exports_dir=None, providers=(), tcp=False, allow=("any",),
          status_path=None):
    """Run a server for the duration of the with-block; yields a Served."""
    tmp = Path(tempfile.mkdtemp(prefix="nbdd-"))
    reg = ExportRegistry(list(providers))
    if memory:
        reg.add_provider(MemoryProvider(memory))
    if exports_dir:
        reg.add_provider(FileProvider(exports_dir))
    listen = [Address("unix", path=str(tmp / "nbd.sock"))]
    if tcp:
        listen.append(Address("tcp", host="127.0.0.1", port=0))
    srv = Server(reg, listen, AllowList(list(allow)), status_path=status_path)
    srv.start()
    try:
        yield Served(srv, reg)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
