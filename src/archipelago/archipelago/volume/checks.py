"""Validation of volume sizes, object sizes and ranges (one message for every entry)."""
from ..errors import InvalidArgument
from . import format as fmt


def check_size(size):
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidArgument(f"volume size must be an integer number of bytes, not {size!r}")
    if size <= 0:
        raise InvalidArgument(f"volume size must be positive, not {size}")
    if size % 512:
        raise InvalidArgument(f"volume size {size} is not a multiple of 512 bytes")
    if size >= fmt.MAX_SIZE:
        raise InvalidArgument(f"volume size {size} is too large (limit 2^63 bytes)")
    return size


def check_object_size(object_size):
    if (isinstance(object_size, bool) or not isinstance(object_size, int)
            or object_size < fmt.MIN_OBJECT or object_size > fmt.MAX_OBJECT
            or object_size & (object_size - 1)):
        raise InvalidArgument(f"object size {object_size!r} must be a power of two from "
                              f"64 KiB to 32 MiB")
    return object_size


def check_range(offset, length, size, what):
    if (isinstance(offset, bool) or isinstance(length, bool) or not isinstance(offset, int)
            or not isinstance(length, int) or offset < 0 or length < 0):
        raise InvalidArgument(f"bad range offset={offset!r} length={length!r}")
    if offset + length > size:
        raise InvalidArgument(f"range {offset}+{length} is beyond the end of {what} "
                              f"({size} bytes)")
