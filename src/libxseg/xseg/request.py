"""Request: a view of one request in the segment (no copies).

A Request object stays valid while its port holds the request: from get() or
receive() until put(), or from accept() until respond().  There is one wrapper
per request slot, reused, so keeping one after put() shows whatever the slot
holds next (`serial` tells them apart).
"""
from ._xseg import ffi, lib
from .constants import MAX_TARGETLEN, State
from .errors import BadArgument, RequestFailed, last_error


class Request:
    __slots__ = ("_h", "_r", "port")

    def __init__(self, handle, cdata):
        self._h = handle
        self._r = cdata
        self.port = None   # the Port holding it, for `with` and put()

    # -- the request's fields (ints; compare op with xseg.Op) --
    op = property(lambda s: s._r.op, lambda s, v: setattr(s._r, "op", v))
    flags = property(lambda s: s._r.flags, lambda s, v: setattr(s._r, "flags", v))
    state = property(lambda s: s._r.state, lambda s, v: setattr(s._r, "state", v))
    errno = property(lambda s: s._r.err, lambda s, v: setattr(s._r, "err", v))
    offset = property(lambda s: s._r.offset, lambda s, v: setattr(s._r, "offset", v))
    size = property(lambda s: s._r.size, lambda s, v: setattr(s._r, "size", v))
    serviced = property(lambda s: s._r.serviced, lambda s, v: setattr(s._r, "serviced", v))
    priv = property(lambda s: s._r.priv, lambda s, v: setattr(s._r, "priv", v))
    index = property(lambda s: s._r.idx)
    serial = property(lambda s: s._r.serial)
    src = property(lambda s: s._r.src)
    dst = property(lambda s: s._r.dst)
    datalen = property(lambda s: s._r.datalen)

    @property
    def path(self):
        """Ports the request came through, oldest first (the reply retraces them)."""
        return [self._r.path[i].port for i in range(self._r.path_len)]

    @property
    def data(self):
        """The request's data buffer: a writable memoryview into the segment."""
        n = self._r.datalen
        if not n:
            return memoryview(bytearray())   # empty, but writable like the others
        return memoryview(ffi.buffer(lib.xseg_req_data(self._h, self._r), n))

    def resize(self, datalen):
        """Make the data buffer datalen bytes (contents kept only if it fits in place)."""
        if lib.xseg_resize_data(self._h, self._r, datalen) < 0:
            raise last_error()

    @property
    def target_bytes(self):
        return ffi.unpack(self._r.target, self._r.targetlen)

    @property
    def target(self):
        return self.target_bytes.decode("utf-8", "surrogateescape")

    @target.setter
    def target(self, name):
        raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else bytes(name)
        if len(raw) > MAX_TARGETLEN:
            raise BadArgument(22, f"target of {len(raw)} bytes is over the limit of "
                                  f"{MAX_TARGETLEN}")
        lib.xseg_set_target(self._r, raw, len(raw))

    # -- results --
    @property
    def served(self):
        return self._r.state == State.SERVED

    @property
    def failed(self):
        return self._r.state == State.FAILED

    def fail(self, err):
        """Mark the request failed with errno `err` (respond() then sends it back)."""
        self._r.state = State.FAILED
        self._r.err = err

    def raise_for_error(self):
        """Raise RequestFailed (with the peer's errno) if the reply is a failure."""
        if self._r.state == State.FAILED:
            import os
            raise RequestFailed(self._r.err, f"request {self.op_name} {self.target!r} "
                                             f"failed: {os.strerror(self._r.err)}")
        return self

    @property
    def op_name(self):
        return ffi.string(lib.xseg_op_name(self._r.op)).decode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Put the request back if its port still holds it."""
        if self.port is not None and self._r.holder == self.port.portno and \
                self._r.where == lib.XW_HELD and self._r.path_len == 0:
            self.port.put(self)

    def __repr__(self):
        return (f"<xseg.Request #{self._r.idx} {self.op_name} {self.target!r} "
                f"off={self._r.offset} size={self._r.size} state={self._r.state}>")
