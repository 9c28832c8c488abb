"""One function per ExtStorage action: (Request, Vlmc) -> text for stdout.

Semantics follow ganeti-extstorage-interface(7): attach prints the device and
is idempotent, detach is idempotent, grow goes from VOL_SIZE to VOL_NEW_SIZE,
open takes the volume's lock (`vlmc open`) unless VOL_OPEN_EXCLUSIVE is False:
during a migration both nodes use the volume and the lock moves with the
control plane's handover, so a shared open only checks the volume exists;
close (`vlmc close`) drains writes and releases the lock.
"""
import logging

from archipelago.process import CommandFailed

from .vlmc import is_absent

log = logging.getLogger(__name__)


def create(req, vlmc):
    vlmc.create(req.name, req.size_mib, origin=req.params.get("origin"),
                object_size=req.params.get("object_size"))
    return ""


def attach(req, vlmc):
    device = vlmc.mapped_device(req.target) or vlmc.map(req.target)
    return device + "\n"


def detach(req, vlmc):
    if vlmc.mapped_device(req.target):
        vlmc.unmap(req.target)
    return ""


def remove(req, vlmc):
    try:
        vlmc.remove(req.target)
    except CommandFailed as e:
        if not is_absent(e):
            raise
        log.info("remove %s: already gone", req.name)
    return ""


def grow(req, vlmc):
    vlmc.resize(req.name, req.new_size_mib)
    return ""


def setinfo(req, vlmc):
    # Volumes carry no free-form metadata; Ganeti's own config keeps the
    # instance <-> volume mapping (VOL_METADATA = originstname+<instance>).
    log.info("setinfo %s: %s", req.name, req.metadata)
    return ""


def verify(req, vlmc):
    # The parameters were checked while parsing the environment.
    return ""


def snapshot(req, vlmc):
    vlmc.snapshot(req.name, req.snapshot)
    return ""


def open_(req, vlmc):
    if req.exclusive:
        vlmc.open(req.name)
    else:
        vlmc.info(req.name)
    return ""


def close(req, vlmc):
    vlmc.close(req.name)
    return ""


ACTIONS = {
    "create": create, "attach": attach, "detach": detach, "remove": remove,
    "grow": grow, "setinfo": setinfo, "verify": verify, "snapshot": snapshot,
    "open": open_, "close": close,
}
