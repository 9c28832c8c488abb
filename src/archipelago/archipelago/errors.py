"""The project's error tree: one base class, a few kinds, each with its errno.

Every error raised on purpose is an ArchipelagoError; library exceptions (OSError
from a store, pika, rados, sqlalchemy) are wrapped at the module that calls the
library and never leak past it. Command lines print `str(err)` and exit with
`err.exit_code`, so messages must make sense to an operator on their own.
"""
import errno as _errno


class ArchipelagoError(Exception):
    """Base of every error this project raises on purpose."""

    errno = _errno.EIO
    exit_code = 1

    def __init__(self, message, *, errno=None):
        super().__init__(message)
        if errno is not None:
            self.errno = errno


class InvalidArgument(ArchipelagoError):
    """Bad input: a name, size, range or option value that can never work."""

    errno = _errno.EINVAL
    exit_code = 2


class ConfigError(InvalidArgument):
    """A configuration file or setting is missing or wrong."""


class NotFound(ArchipelagoError):
    """The named volume, snapshot, object, mapping or node does not exist."""

    errno = _errno.ENOENT


class Exists(ArchipelagoError):
    """The name is already taken."""

    errno = _errno.EEXIST


class Busy(ArchipelagoError):
    """Held by someone else: locked, open, mapped or mounted."""

    errno = _errno.EBUSY


class Fenced(Busy):
    """Our lease was lost or taken over; writing now could corrupt data."""

    errno = _errno.ESTALE


class ReadOnly(ArchipelagoError):
    """A write to a snapshot, a read-only export or a read-only mapping."""

    errno = _errno.EROFS


class NoSpace(ArchipelagoError):
    """The store is full."""

    errno = _errno.ENOSPC


class Unsupported(ArchipelagoError):
    """The backend or peer cannot do this operation."""

    errno = _errno.EOPNOTSUPP


class Timeout(ArchipelagoError):
    """No answer in time from a peer, daemon, broker or store."""

    errno = _errno.ETIMEDOUT


class Unavailable(ArchipelagoError):
    """A peer, daemon, node or service is down or unreachable."""

    errno = _errno.EHOSTUNREACH


class BackendError(ArchipelagoError):
    """A store or device failed an I/O; the message says which and why."""

    errno = _errno.EIO


_BY_ERRNO = {
    cls.errno: cls
    for cls in (InvalidArgument, NotFound, Exists, Busy, Fenced, ReadOnly, NoSpace,
                Unsupported, Timeout, Unavailable, BackendError)
}
_BY_ERRNO[_errno.ENOTSUP] = Unsupported
_BY_ERRNO[_errno.EAGAIN] = Busy
_BY_ERRNO[_errno.ENAMETOOLONG] = InvalidArgument
_BY_ERRNO[_errno.ERANGE] = InvalidArgument


def from_errno(err, message):
    """The ArchipelagoError subclass for an errno (e.g. from a failed xseg request)."""
    return _BY_ERRNO.get(err, ArchipelagoError)(message, errno=err)
