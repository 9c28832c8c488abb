"""Sizes and rates as operators write them: 10G, 512K, 1.5T, 100M/s.

A bare number means MiB by default (as the original vlmc did); callers that
want bytes pass default_unit="".
"""
import re

from .errors import InvalidArgument

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(I?B)?\s*", re.I)
MAX_SIZE = (1 << 63) - 1


def parse_size(text, default_unit="M", *, what="size", sector=512):
    """Parse a size into bytes; it must be positive and a multiple of `sector`."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _SIZE_RE.fullmatch(str(text))
        if not m:
            raise InvalidArgument(f"invalid {what} {text!r}: expected a number with an "
                                  "optional K, M, G, T or P suffix")
        # "1000B" is bytes; only a bare number takes the default unit.
        unit = m.group(2).upper() or ("B" if m.group(3) else default_unit.upper())
        value = float(m.group(1)) * _UNITS[unit]
        if value != int(value):
            raise InvalidArgument(f"invalid {what} {text!r}: not a whole number of bytes")
        value = int(value)
    if value <= 0:
        raise InvalidArgument(f"invalid {what} {text!r}: must be greater than zero")
    if value > MAX_SIZE:
        raise InvalidArgument(f"invalid {what} {text!r}: larger than 2^63-1 bytes")
    if sector and value % sector:
        raise InvalidArgument(f"invalid {what} {text!r}: must be a multiple of {sector} bytes")
    return value


def format_size(n):
    """Bytes as a short human string: 4.0M, 100G, 512."""
    for unit in ("P", "T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            v = n / _UNITS[unit]
            return f"{v:.0f}{unit}" if v == int(v) else f"{v:.1f}{unit}"
    return str(n)
