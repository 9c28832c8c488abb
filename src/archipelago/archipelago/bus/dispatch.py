"""From a delivery to a handler and back: decode, validate, idempotency, session
scope, reply. Handlers never see bytes, pika or transactions.

A handler module defines FIELDS (name -> schema.Field) and handle(ctx, fields). It
returns the reply fields (a dict), or DEFERRED when the answer comes later (a
callback from another node completes it with ctx.reply_later()). It raises an
ArchipelagoError for any failure the requester should read.
"""
import json
import logging
from dataclasses import dataclass, field

from ..errors import ArchipelagoError, Unsupported
from . import schema
from .errors import BusError, MessageError, Unroutable

log = logging.getLogger(__name__)
DEFERRED = object()


@dataclass(frozen=True)
class Failure:
    """Returned (not raised) by a handler whose rollback work must be committed:
    the session commits, the requester gets an error reply for `error`."""

    error: Exception


@dataclass(frozen=True)
class Action:
    name: str
    fields: dict
    handle: object
    reply_action: str | None = None   # e.g. map on a compute node answers volume_mapped

    @classmethod
    def from_module(cls, name, module):
        return cls(name, module.FIELDS, module.handle, getattr(module, "REPLY_ACTION", None))


@dataclass
class Context:
    """What a handler gets: the session, the bus, the node's services, the message."""

    session: object
    bus: object
    node: object
    msg: dict
    reply_to: str | None = None
    correlation_id: str | None = None
    after_commit: list = field(default_factory=list)

    def reply_later(self, reply_to, correlation_id, reply):
        """Send `reply` once the session is committed (never for rolled-back work)."""
        self.after_commit.append((reply_to, correlation_id, reply))


class Dispatcher:
    """Calls the handler of each message's action on `node` (a daemon's services)."""

    def __init__(self, bus, node, db, request_model, actions, not_implemented=()):
        self.bus, self.node, self.db, self.Request = bus, node, db, request_model
        self.actions = {a.name: a for a in actions}
        self.not_implemented = set(not_implemented)

    def __call__(self, delivery):
        msg = {}
        try:
            msg = schema.decode(delivery.body)
            reply = self._dispatch(msg, delivery)
        except BusError as e:
            if isinstance(e, Unroutable):
                reply = schema.failure(msg, e, self._reply_action(msg))
            else:
                raise                      # redelivered after the reconnect
        except ArchipelagoError as e:
            level = logging.WARNING if isinstance(e, MessageError) else logging.INFO
            log.log(level, "%s %s from %s failed: %s", msg.get("action"),
                    msg.get("request_id"), delivery.reply_to, e)
            reply = schema.failure(msg, e, self._reply_action(msg))
        except Exception as e:
            log.exception("internal error handling %r", msg.get("action"))
            reply = schema.failure(msg, f"internal error in {self.node.name}: "
                                        f"{type(e).__name__}: {e}", self._reply_action(msg))
        if reply is not None:
            self.send(delivery.reply_to, delivery.correlation_id, reply)

    def _reply_action(self, msg):
        action = self.actions.get(msg.get("action"))
        return action.reply_action if action else None

    def _dispatch(self, msg, delivery):
        name = msg["action"]
        if name in self.not_implemented:
            raise Unsupported(f"action {name!r} is not implemented yet")
        action = self.actions.get(name)
        if action is None:
            raise MessageError(f"unknown action {name!r} (known: "
                               f"{', '.join(sorted(self.actions))})")
        fields = schema.validate(msg, action.fields)
        key = f"{name}:{msg['request_id']}"
        with self.db.scope() as session:
            done = session.get(self.Request, key)
            if done is not None:
                if done.reply is None:
                    log.info("%s is already in progress; duplicate ignored", key)
                    return None
                log.info("%s already ran; sending its reply again", key)
                return json.loads(done.reply)
            ctx = Context(session, self.bus, self.node, msg, delivery.reply_to,
                          delivery.correlation_id)
            result = action.handle(ctx, fields)
            if isinstance(result, Failure):
                reply = schema.failure(msg, result.error, action.reply_action)
                log.info("%s %s failed: %s", name, msg["request_id"], result.error)
            else:
                reply = None if result is DEFERRED else schema.success(
                    msg, action.reply_action, **(result or {}))
                session.add(self.Request(key=key, action=name,
                                         reply=None if reply is None else json.dumps(reply)))
        self._flush(ctx)
        return reply

    def run_job(self, fn):
        """Run fn(ctx) in its own session (periodic jobs, recovery at start)."""
        with self.db.scope() as session:
            ctx = Context(session, self.bus, self.node, {})
            fn(ctx)
        self._flush(ctx)

    def _flush(self, ctx):
        for reply_to, cid, reply in ctx.after_commit:
            self.send(reply_to, cid, reply)

    def send(self, reply_to, correlation_id, reply):
        if not reply_to:
            return
        try:
            self.bus.reply(reply_to, correlation_id, reply)
        except Unroutable:
            log.warning("reply to %s for %s dropped: the requester is gone", reply_to,
                        reply.get("request_id"))
        except BusError as e:
            log.warning("reply to %s for %s lost: %s", reply_to, reply.get("request_id"), e)
