"""Segment: create, join, inspect and destroy a shared-memory segment; bind ports."""
import errno
import os
import time
import weakref

from ._xseg import ffi, lib
from .errors import SegmentExists, XsegError, last_error
from .port import Port
from .request import Request


def parse_spec(spec):
    """The fields of a spec string `type:name:dynports:nr_ports:heap_MiB:page_shift:nr_reqs`
    (trailing fields optional) as a dict; BadArgument says what is wrong."""
    s = ffi.new("struct xseg_spec *")
    if lib.xseg_parse_spec(spec.encode(), s) < 0:
        raise last_error()
    return {"type": ffi.string(s.type).decode(), "name": ffi.string(s.name).decode(),
            "dynports": s.dynports, "nr_ports": s.nr_ports, "heap_mib": s.heap_mib,
            "page_shift": s.page_shift, "nr_reqs": s.nr_reqs}


class _either:
    """A method callable on the class (gets the class) or on an instance."""

    def __init__(self, fn):
        self.fn = fn

    def __get__(self, obj, cls):
        return self.fn.__get__(cls if obj is None else obj)


def _fields(cdata, names):
    return {n: getattr(cdata, n) for n in names}


class Segment:
    """A process's mapping of a segment.  Close it (or use `with`) to unmap; that
    unbinds the ports this object bound.  destroy() removes the segment itself."""

    def __init__(self, handle, name):
        self._h = handle
        self.name = name
        self._ports = set()
        self._users = weakref.WeakSet()
        self._cache = {}

    @classmethod
    def create(cls, spec):
        """Create a new segment (SegmentExists if the name is taken)."""
        h = lib.xseg_create(spec.encode())
        if h == ffi.NULL:
            raise last_error()
        return cls(h, parse_spec(spec)["name"])

    @classmethod
    def join(cls, name):
        """Map an existing segment (NoSuchSegment, VersionMismatch)."""
        h = lib.xseg_join(name.encode())
        if h == ffi.NULL:
            raise last_error()
        return cls(h, name)

    @classmethod
    def open(cls, spec):
        """Join the segment the spec names, creating it first if it does not exist."""
        name = parse_spec(spec)["name"]
        try:
            return cls.create(spec)
        except SegmentExists:
            pass
        for _ in range(200):        # another process may be creating it right now
            try:
                return cls.join(name)
            except XsegError as e:
                if e.errno != errno.EAGAIN:
                    raise
                time.sleep(0.01)
        return cls.join(name)

    @staticmethod
    def destroy_name(name):
        """Remove a segment by name (processes that mapped it keep their mapping)."""
        if lib.xseg_destroy(name.encode()) < 0:
            raise last_error()

    @_either
    def destroy(self_or_cls, name=None):
        """seg.destroy() closes and removes this segment; Segment.destroy(name) removes
        one by name."""
        if isinstance(self_or_cls, Segment):
            self_or_cls.close()
            name = self_or_cls.name
        Segment.destroy_name(name)

    def _wrap(self, cdata):
        """The Request object of a request slot (one per slot, reused)."""
        idx = cdata.idx
        req = self._cache.get(idx)
        if req is None:
            req = self._cache[idx] = Request(self._h, cdata)
        return req

    def _handle(self):
        if self._h is None:
            raise XsegError(9, f"segment {self.name} is closed")
        return self._h

    def bind(self, portno=None, owner="", max_requests=0):
        """Bind a port (None: any free dynamic port).  max_requests limits how many
        requests the port may have allocated at once (0: no limit)."""
        owner = owner or f"pid{os.getpid()}"
        n = lib.xseg_bind(self._handle(), -1 if portno is None else portno,
                          owner.encode()[:31], max_requests)
        if n < 0:
            raise last_error()
        port = Port(self, n, owner)
        self._ports.add(port)
        return port

    def check(self):
        """Recover ports whose owner died; returns how many."""
        return lib.xseg_check(self._handle())

    def info(self):
        i = ffi.new("struct xseg_info *")
        lib.xseg_info(self._handle(), i)
        out = _fields(i, ["size", "nr_ports", "dynports", "nr_reqs", "page_shift",
                          "heap_size", "heap_free", "max_data", "pool_free", "creator_pid"])
        out["name"] = ffi.string(i.name).decode()
        out["version"] = f"{i.version >> 16}.{i.version & 0xFFFF}"
        return out

    def port_info(self, portno):
        p = ffi.new("struct xseg_port_info *")
        if lib.xseg_port_info(self._handle(), portno, p) < 0:
            raise last_error()
        out = _fields(p, ["portno", "dynamic", "gen", "owner_pid", "free_q", "req_q",
                          "reply_q", "alloc", "max_alloc", "signal_port", "submitted",
                          "accepted", "responded", "received", "failed_back"])
        out["state"] = ("free", "bound", "recovering")[p.bound]
        out["owner"] = ffi.string(p.owner).decode(errors="replace")
        out["owner_alive"] = bool(p.owner_alive)
        out["dynamic"] = bool(p.dynamic)
        return out

    def ports(self, all=False):
        """Port infos: the bound ones (and the ones being recovered), or all."""
        infos = (self.port_info(i) for i in range(self.info()["nr_ports"]))
        return [p for p in infos if all or p["state"] != "free"]

    def attach(self, user):
        """Register an object with a close() (e.g. an endpoint whose thread waits on
        our ports): close() closes it first, before the memory goes away."""
        self._users.add(user)

    def detach(self, user):
        self._users.discard(user)

    def close(self):
        """Close attached users, unbind our ports, unmap the segment."""
        if self._h is None:
            return
        for user in list(self._users):
            user.close()
        for port in list(self._ports):
            try:
                port.close()
            except XsegError:
                pass
        h, self._h = self._h, None
        lib.xseg_leave(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<xseg.Segment {self.name}>"
