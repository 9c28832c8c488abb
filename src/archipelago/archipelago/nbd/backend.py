"""The backend interface: what an NBD export is served from (API v1).

Modelled on nbdkit's plugin table: a backend implements the data operations
and answers capability probes; the server core (`transmission.py`) validates
every request once — bounds, flags, read-only, alignment — before calling it,
so a backend never sees an out-of-range offset, a zero length or a write to a
read-only export. Required: `size` and `pread`; everything else has a default
that either emulates the operation through the required ones or reports it as
unsupported (and the matching NBD flag is then not advertised).

Threading: one Backend instance is shared by every connection to its export
(the export registry opens it once and reference-counts it), and connections
run in threads, so every method must be safe to call concurrently. That sharing
is also what makes NBD_FLAG_CAN_MULTI_CONN honest: a `flush()` on any
connection persists the writes completed on all of them.

Errors: raise an `archipelago.errors.ArchipelagoError` (its `errno` goes to the
client, mapped to the NBD error values) or let an `OSError` out; anything else
is reported to the client as EIO and logged as a bug.
"""
import abc

from ..errors import ReadOnly, Unsupported
from . import proto

API_VERSION = 1
ZERO_CHUNK = 1 << 20


class Backend(abc.ABC):
    """One open export; see the module docstring for the contract."""

    #: human-readable one-liner for NBD_INFO_DESCRIPTION and `archipelago status`
    description = ""

    @abc.abstractmethod
    def size(self):
        """Export size in bytes (constant while open)."""

    @abc.abstractmethod
    def pread(self, buf, offset):
        """Fill the writable memoryview `buf` (len(buf) bytes) from `offset`."""

    def pwrite(self, buf, offset):
        """Write the bytes-like `buf` at `offset` (need not be durable until flush)."""
        raise ReadOnly("backend is read-only")

    # Optional: pwrite_fua(buf, offset) -- a write that is durable when it returns
    # (NBD's FUA). Without it, a FUA write is pwrite followed by flush().

    def flush(self):
        """Make every completed write durable (all connections; see CAN_MULTI_CONN)."""
        return None

    def trim(self, offset, length):
        """Discard a range; afterwards its contents are unspecified (may be a no-op)."""
        return None

    def zero(self, offset, length, *, may_trim=True, fast=False):
        """Make a range read as zeros.

        may_trim: False when the client sent NO_HOLE (space must stay allocated).
        fast: the client sent FAST_ZERO; raise Unsupported unless this is
        quicker than writing zeros, and then leave the data untouched.
        This default writes zeros through pwrite, so it is never fast.
        """
        if fast:
            raise Unsupported("zeroing is not faster than writing")
        buf = bytes(min(length, ZERO_CHUNK))
        end = offset + length
        while offset < end:
            n = min(len(buf), end - offset)
            self.pwrite(memoryview(buf)[:n], offset)
            offset += n

    def extents(self, offset, length):
        """[(length, flags)] from `offset` covering at least 1 byte (proto.STATE_*).

        The first extents must not reach past offset+length; the last may.
        Default: one allocated, non-zero extent.
        """
        return [(length, 0)]

    def cache(self, offset, length):
        """Advisory: the client will read this range soon."""
        return None

    def close(self):
        """Release resources; called once, when the last connection is gone."""
        return None

    # -- capability probes: what the server may advertise --------------------------

    @property
    def read_only(self):
        return False

    def can_flush(self):
        return True

    def can_trim(self):
        return False

    def can_zero(self):
        """WRITE_ZEROES is always offered on writable exports (emulated if need be)."""
        return True

    def can_fast_zero(self):
        return False

    def can_extents(self):
        return False

    def can_cache(self):
        return False

    def can_multi_conn(self):
        """True only if flush() covers writes made through every connection."""
        return False

    def parallel(self):
        """True when a request mostly waits on a round trip (a network store, another
        process): the server then runs a connection's READs and WRITEs in worker
        threads, many at once, instead of inline one after the other (which is
        faster for a local file)."""
        return False

    def block_size(self):
        """(minimum, preferred, maximum) for NBD_INFO_BLOCK_SIZE."""
        return (proto.MIN_BLOCK, proto.PREFERRED_BLOCK, proto.MAX_BLOCK)


class Filter(Backend):
    """Forwards every call to `inner`; subclasses override what they change (nbdkit filters)."""

    def __init__(self, inner):
        self.inner = inner
        self.description = inner.description

    def size(self):
        return self.inner.size()

    def pread(self, buf, offset):
        self.inner.pread(buf, offset)

    def pwrite(self, buf, offset):
        self.inner.pwrite(buf, offset)

    def flush(self):
        self.inner.flush()

    def trim(self, offset, length):
        self.inner.trim(offset, length)

    def zero(self, offset, length, *, may_trim=True, fast=False):
        self.inner.zero(offset, length, may_trim=may_trim, fast=fast)

    def extents(self, offset, length):
        return self.inner.extents(offset, length)

    def cache(self, offset, length):
        self.inner.cache(offset, length)

    def close(self):
        self.inner.close()

    @property
    def read_only(self):
        return self.inner.read_only

    def can_flush(self):
        return self.inner.can_flush()

    def can_trim(self):
        return self.inner.can_trim()

    def can_zero(self):
        return self.inner.can_zero()

    def can_fast_zero(self):
        return self.inner.can_fast_zero()

    def can_extents(self):
        return self.inner.can_extents()

    def can_cache(self):
        return self.inner.can_cache()

    def can_multi_conn(self):
        return self.inner.can_multi_conn()

    def parallel(self):
        return self.inner.parallel()

    def block_size(self):
        return self.inner.block_size()


class ReadOnlyView(Filter):
    """A read-only filter over another backend (snapshots, read-only exports)."""

    def pwrite(self, buf, offset):
        raise ReadOnly("export is read-only")

    def trim(self, offset, length):
        raise ReadOnly("export is read-only")

    def zero(self, offset, length, *, may_trim=True, fast=False):
        raise ReadOnly("export is read-only")

    @property
    def read_only(self):
        return True

    def can_multi_conn(self):
        return True            # nothing to flush: every connection sees the same data
