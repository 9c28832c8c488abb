"""Ops, flags and states, with the numbers of the C library (and of the original)."""
import enum

from ._xseg import lib

VERSION = (lib.XSEG_VERSION >> 16, lib.XSEG_VERSION & 0xFFFF)
MAX_TARGETLEN = lib.XSEG_MAX_TARGETLEN
MAX_PATH = lib.XSEG_MAX_PATH
DEFAULT_SPEC = "posix:archipelago:64:128:256:12:4096"


class Op(enum.IntEnum):
    PING = 0
    READ = 1
    WRITE = 2
    SYNC = 3
    TRUNCATE = 4
    DELETE = 5
    ACQUIRE = 6
    RELEASE = 7
    COPY = 8
    CLONE = 9
    COMMIT = 10
    INFO = 11
    MAPR = 12
    MAPW = 13
    OPEN = 14
    CLOSE = 15
    SNAPSHOT = 16
    HASH = 17
    CREATE = 18
    RENAME = 19
    FLUSH = 20
    UPDATE = 21


class Flag(enum.IntFlag):
    NONE = 0
    NOSYNC = lib.XF_NOSYNC
    FLUSH = lib.XF_FLUSH
    FUA = lib.XF_FUA
    FORCE = lib.XF_FORCE


class State(enum.IntEnum):
    PENDING = 0
    SERVED = lib.XS_SERVED
    FAILED = lib.XS_FAILED
