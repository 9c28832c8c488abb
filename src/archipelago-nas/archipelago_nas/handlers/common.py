"""Helpers the NAS handlers share: lookups, the frontend's deferred reply, rows as dicts."""
import json
import time

from archipelago.bus import schema
from archipelago.errors import NotFound

from ..models import Mapping, Request, Volume
from ..states import UNMAPPED


def volume_row(session, name):
    vol = session.get(Volume, name)
    if vol is None:
        raise NotFound(f"volume {name} is not known to this NAS")
    return vol


def mapping_row(session, name):
    m = session.get(Mapping, name)
    if m is None:
        m = Mapping(volume=name, state=UNMAPPED)
        session.add(m)
    return m


def mapping_dict(vol, m):
    return {"volume": vol.name, "pool": vol.pool, "size": vol.size,
            "state": m.state if m else UNMAPPED,
            "remotehost": m.remotehost if m else None,
            "remotepool": m.remotepool if m else None,
            "sync": bool(m.sync) if m else False,
            "device": m.device if m else None, "uri": m.uri if m else None,
            "since": m.since if m else vol.created,
            "pending": m.request_id if m and m.deadline else None}


def hold(m, ctx, deadline_s):
    """Remember who waits for this mapping's outcome, and until when."""
    m.request_id = ctx.msg["request_id"]
    m.reply_to, m.correlation_id = ctx.reply_to, ctx.correlation_id
    m.deadline = time.time() + deadline_s


def finish(ctx, m, action, result=None, error=None):
    """Answer the requester held by `m` (after commit) and record the reply for
    idempotency; then forget the requester."""
    req = {"action": action, "request_id": m.request_id}
    reply = schema.failure(req, error) if error else schema.success(req, **(result or {}))
    if m.request_id:
        key = f"{action}:{m.request_id}"
        row = ctx.session.get(Request, key)
        if error is None:
            if row is None:
                ctx.session.add(Request(key=key, action=action, reply=json.dumps(reply)))
            else:
                row.reply = json.dumps(reply)
        elif row is not None:
            ctx.session.delete(row)      # a failed request may be retried with its id
    ctx.reply_later(m.reply_to, m.correlation_id, reply)
    m.request_id = m.reply_to = m.correlation_id = m.deadline = None
