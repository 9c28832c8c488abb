"""Exceptions: OSError subclasses carrying the errno and message of the failure.

Each class also derives from the matching built-in OSError subclass where there
is one, so `except FileExistsError` works as well as `except SegmentExists`.
"""
import errno as E

from ._xseg import ffi, lib


class XsegError(OSError):
    """Base of every error the binding raises."""


class BadArgument(XsegError, ValueError):
    """EINVAL: a bad spec string, port number, name, or a request in the wrong hands."""


class SegmentExists(XsegError, FileExistsError):
    """EEXIST: a segment of that name already exists."""


class NoSuchSegment(XsegError, FileNotFoundError):
    """ENOENT: no segment of that name."""


class VersionMismatch(XsegError):
    """EPROTO: the segment was made by another version (or is not a segment)."""


class PortInUse(XsegError):
    """EADDRINUSE: a live process has that port bound."""


class NoFreePort(XsegError):
    """EADDRNOTAVAIL: every dynamic port is taken."""


class PortNotBound(XsegError, ConnectionRefusedError):
    """ECONNREFUSED: nobody is bound at the destination port."""


class PortUnbound(XsegError):
    """EBADF: this port is not bound (any more)."""


class NotOwner(XsegError, PermissionError):
    """EPERM: the port belongs to another process."""


class RequestTooLarge(XsegError):
    """EMSGSIZE: more data than the segment allows for one request."""


class NoBuffers(XsegError):
    """ENOBUFS: no free request or heap space now; retry after puts."""


class PeerDied(XsegError, ConnectionResetError):
    """ECONNRESET: the peer serving (or forwarding) the request died."""


class RequestFailed(XsegError):
    """A reply came back failed; errno is the peer's reason."""


_BY_ERRNO = {
    E.EINVAL: BadArgument, E.EEXIST: SegmentExists, E.ENOENT: NoSuchSegment,
    E.EPROTO: VersionMismatch, E.EADDRINUSE: PortInUse, E.EADDRNOTAVAIL: NoFreePort,
    E.ECONNREFUSED: PortNotBound, E.EBADF: PortUnbound, E.EPERM: NotOwner,
    E.EMSGSIZE: RequestTooLarge, E.ENOBUFS: NoBuffers, E.ECONNRESET: PeerDied,
    E.ENAMETOOLONG: BadArgument, E.EMLINK: BadArgument,
}


def error(err, message):
    """The exception for an errno and message."""
    return _BY_ERRNO.get(err, XsegError)(err, message)


def last_error():
    """The exception for the calling thread's last libxseg failure."""
    return error(lib.xseg_errno(), ffi.string(lib.xseg_errmsg()).decode(errors="replace"))
