"""Send and receive as calls that report instead of raising: what the CLI's
--json, the TCP receiver and the daemons use.

    result = receive_result(client, "vm1", rfile, state_dir=DIR)
    result = send_to(client, "vm1@s2", transport.get("tcp"), "nas1:7450", "vm1",
                     settings, from_snap="s1", rate=50 << 20)
Both return {"ok": True, ...stats} or {"ok": False, "error": MESSAGE, "code":
EXIT_CODE, "token": RESUME_TOKEN or None}.
"""
import logging

from ..errors import ArchipelagoError
from .receive import receive
from .send import send

log = logging.getLogger(__name__)


def failure(err, token=None):
    return {"ok": False, "error": str(err), "code": getattr(err, "exit_code", 1),
            "token": getattr(err, "token", None) or token}


def receive_result(client, volume, rfile, **kw):
    try:
        return {"ok": True, **receive(client, volume, rfile, **kw)}
    except ArchipelagoError as e:
        log.debug("receive failed", exc_info=True)
        return failure(e)


def send_to(client, spec, transport, dest, volume, settings, *, force=False, **kw):
    """Send `spec` through `transport` to `dest` (receiving into `volume` there); the
    receiver's result, with the sender's stats under "sent"."""
    try:
        channel = transport.connect(dest, volume, settings, force=force,
                                    limit=kw.get("rate"))
    except ArchipelagoError as e:
        return failure(e)
    sent, err = None, None
    try:
        sent = send(client, spec, channel.wfile, **kw)
    except (BrokenPipeError, ConnectionError) as e:
        err = e                      # the receiver went away or refused: ask it why
    except ArchipelagoError as e:
        channel.abort()
        return failure(e)
    except BaseException:
        channel.abort()
        raise
    result = channel.finish()
    if not result.get("ok") and err is not None and not result.get("error"):
        result["error"] = f"the receiver went away: {err}"
    result.setdefault("code", 0 if result.get("ok") else 1)
    result["sent"] = sent
    return result
