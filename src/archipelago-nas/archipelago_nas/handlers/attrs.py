"""Validation of volume attributes (sync schedule and rates) and NAS attributes."""
import re

from archipelago.errors import InvalidArgument
from archipelago.units import parse_size

ATTR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
VALUE_MAX = 1024


def _seconds(text):
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"{text!r} is not a whole number of seconds") from None
    if value <= 0:
        raise InvalidArgument(f"{text!r}: must be greater than zero")
    return str(value)


def _time(text):
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{text!r} is not a UNIX time in seconds") from None
    return str(int(value))


def _rate(text):
    """100M, 100M/s, 1G/s -> bytes per second as a string."""
    return str(parse_size(str(text).removesuffix("/s"), "M", what="rate", sector=0))


VOLUME_ATTRS = {"frequency": _seconds, "nextsync": _time, "uploadspeed": _rate,
                "downloadspeed": _rate}


def volume_attr(name, value):
    """(name, normalised value or None to delete) for a volume attribute."""
    if name not in VOLUME_ATTRS:
        raise InvalidArgument(f"unknown volume attribute {name!r} (known: "
                              f"{', '.join(VOLUME_ATTRS)})")
    if value is None or str(value).lower() == "none":
        return name, None
    try:
        return name, VOLUME_ATTRS[name](str(value))
    except InvalidArgument as e:
        raise InvalidArgument(f"volume attribute {name}: {e}") from None


def nas_attr(name, value=""):
    if not isinstance(name, str) or not ATTR_RE.fullmatch(name):
        raise InvalidArgument(f"invalid attribute name {name!r}: letters, digits, '_', '.', "
                              "'-', starting with a letter or '_'")
    if not isinstance(value, str) or len(value) > VALUE_MAX:
        raise InvalidArgument(f"attribute {name}: the value must be a string of at most "
                              f"{VALUE_MAX} characters")
    return name, value
