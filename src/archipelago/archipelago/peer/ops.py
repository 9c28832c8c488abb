"""The ops table: what each op must look like, checked once in the core.

A handler never sees a request its op's rule rejects: unknown ops (or ops the
peer has no handler for) fail with EOPNOTSUPP, bad sizes with EINVAL, missing
targets with EINVAL — like nbdkit's backend checks before a plugin's pread.
"""
import errno
from dataclasses import dataclass

from xseg import Op


@dataclass(frozen=True)
class Rule:
    target: bool = True      # needs a target name
    data: str = "none"       # "in": data carries size bytes; "out": room for size bytes
    sized: bool = False      # size must be > 0 (unless a flush: WRITE of 0 with FLUSH/FUA)


RULES = {
    Op.PING: Rule(target=False),
    Op.READ: Rule(data="out", sized=True),
    Op.WRITE: Rule(data="in", sized=True),
    Op.SYNC: Rule(), Op.TRUNCATE: Rule(), Op.DELETE: Rule(),
    Op.ACQUIRE: Rule(), Op.RELEASE: Rule(), Op.COPY: Rule(), Op.CLONE: Rule(),
    Op.COMMIT: Rule(), Op.INFO: Rule(), Op.MAPR: Rule(), Op.MAPW: Rule(),
    Op.OPEN: Rule(), Op.CLOSE: Rule(), Op.SNAPSHOT: Rule(), Op.HASH: Rule(),
    Op.CREATE: Rule(), Op.RENAME: Rule(), Op.FLUSH: Rule(target=False),
    Op.UPDATE: Rule(),
}

# handler method names: Op.READ -> "read", Op.TRUNCATE -> "truncate", ...
METHOD = {op: op.name.lower() for op in Op}

FLUSHING = 0x2 | 0x4   # Flag.FLUSH | Flag.FUA


class BadRequest(Exception):
    """A request the core refuses before any handler runs."""

    def __init__(self, err, message):
        super().__init__(message)
        self.errno = err


def check(req):
    """Raise BadRequest if req breaks its op's rule; returns the Rule."""
    rule = RULES.get(req.op)
    if rule is None:
        raise BadRequest(errno.EOPNOTSUPP, f"unknown op {req.op}")
    if rule.target and not req._r.targetlen:
        raise BadRequest(errno.EINVAL, f"{req.op_name}: no target")
    size = req.size
    if rule.sized and size == 0 and not (req.op == Op.WRITE and req.flags & FLUSHING):
        raise BadRequest(errno.EINVAL, f"{req.op_name} {req.target}: size 0")
    if rule.data != "none" and size > req.datalen:
        raise BadRequest(errno.EINVAL, f"{req.op_name} {req.target}: size {size} is over "
                                       f"the {req.datalen}-byte data buffer")
    return rule
