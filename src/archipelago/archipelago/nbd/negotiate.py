"""The handshake: fixed newstyle option haggling up to the transmission phase.

`negotiate(sock, registry, client)` speaks the server side and returns a
`Negotiated` (the acquired export plus what was agreed) or None when the client
aborted or went away. Every malformed option gets the protocol's error reply;
the connection is dropped only where the stream cannot be trusted any more
(bad magic, unknown client flags, absurd option lengths, a failed
NBD_OPT_EXPORT_NAME, which has no error reply).
"""
import logging
import struct
from dataclasses import dataclass, field

from ..errors import ArchipelagoError, Busy, InvalidArgument, NotFound
from . import proto
from .wire import Disconnected, recv_exact

log = logging.getLogger(__name__)

DISCARD_LIMIT = 16 << 20      # larger option payloads are not read, the client is dropped


class HardDisconnect(Exception):
    """The client broke a MUST; close without another word."""


@dataclass
class Negotiated:
    export: object                    # registry.Export, acquired
    flags: int                        # transmission flags sent to the client
    structured: bool = False
    meta: dict = field(default_factory=dict)   # context id -> name for BLOCK_STATUS


def transmission_flags(backend, structured):
    """The 16-bit transmission flags for a backend, derived from its probes."""
    f = proto.TF_HAS_FLAGS | proto.TF_SEND_CACHE
    if backend.can_flush():
        f |= proto.TF_SEND_FLUSH
    if structured:
        f |= proto.TF_SEND_DF
    if backend.read_only:
        f |= proto.TF_READ_ONLY
    else:
        if backend.can_flush():
            f |= proto.TF_SEND_FUA
        if backend.can_trim():
            f |= proto.TF_SEND_TRIM
        if backend.can_zero():
            f |= proto.TF_SEND_WRITE_ZEROES | proto.TF_SEND_FAST_ZERO
    if backend.can_multi_conn():
        f |= proto.TF_CAN_MULTI_CONN
    return f


class _Haggle:
    def __init__(self, sock, registry, client, shutting_down):
        self.sock = sock
        self.registry = registry
        self.client = client
        self.shutting_down = shutting_down
        self.structured = False
        self.no_zeroes = False
        self.meta = {}
        self.meta_export = None

    def send(self, data):
        self.sock.sendall(data)

    def reply(self, opt, rtype, data=b""):
        self.send(proto.option_reply(opt, rtype, data))

    def error(self, opt, rtype, message):
        log.debug("client %s: option %d: %s", self.client, opt, message)
        self.reply(opt, rtype, message.encode()[:proto.MAX_STRING])

    def run(self):
        self.send(proto.greeting())
        (cflags,) = struct.unpack(">I", recv_exact(self.sock, 4))
        if cflags & ~proto.KNOWN_CLIENT_FLAGS:
            raise HardDisconnect(f"unknown client flags {cflags:#x}")
        self.no_zeroes = bool(cflags & proto.FLAG_C_NO_ZEROES)
        while True:
            magic, opt, length = proto.OPTION.unpack(recv_exact(self.sock, proto.OPTION.size))
            if magic != proto.IHAVEOPT:
                raise HardDisconnect(f"bad option magic {magic:#x}")
            if length > proto.MAX_OPTION_DATA:
                if length > DISCARD_LIMIT:
                    raise HardDisconnect(f"option {opt} with {length} bytes of data")
                _discard(self.sock, length)
                self.error(opt, proto.REP_ERR_TOO_BIG, "option data too long")
                continue
            data = recv_exact(self.sock, length)
            if self.shutting_down() and opt != proto.OPT_ABORT:
                self.error(opt, proto.REP_ERR_SHUTDOWN, "server is shutting down")
                continue
            done = self.option(opt, data)
            if done is not None:
                return done or None

    def option(self, opt, data):
        """Handle one option; returns Negotiated to start transmission, False to end."""
        if opt == proto.OPT_EXPORT_NAME:
            return self.export_name(data)
        if opt == proto.OPT_ABORT:
            self.reply(opt, proto.REP_ACK)
            return False
        if opt == proto.OPT_LIST:
            if data:
                self.error(opt, proto.REP_ERR_INVALID, "NBD_OPT_LIST takes no data")
                return None
            for name in self.registry.names():
                self.reply(opt, proto.REP_SERVER, proto.rep_server(name))
            self.reply(opt, proto.REP_ACK)
            return None
        if opt in (proto.OPT_INFO, proto.OPT_GO):
            return self.info_go(opt, data)
        if opt == proto.OPT_STRUCTURED_REPLY:
            if data:
                self.error(opt, proto.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data")
            elif self.structured:
                self.error(opt, proto.REP_ERR_INVALID, "structured replies already on")
            else:
                self.structured = True
                self.reply(opt, proto.REP_ACK)
            return None
        if opt in (proto.OPT_LIST_META_CONTEXT, proto.OPT_SET_META_CONTEXT):
            self.meta_context(opt, data)
            return None
        if opt == proto.OPT_STARTTLS:
            self.error(opt, proto.REP_ERR_POLICY, "TLS is not offered by this server")
            return None
        self.error(opt, proto.REP_ERR_UNSUP, f"option {opt} is not supported")
        return None

    def acquire(self, name):
        return self.registry.acquire(name, self.client)

    def export_name(self, data):
        try:
            name = _text(data)
            exp = self.acquire(name)
        except (ArchipelagoError, ValueError) as e:
            raise HardDisconnect(f"NBD_OPT_EXPORT_NAME: {e}") from None
        try:
            flags = transmission_flags(exp.backend, self.structured)
            self.send(proto.export_name_reply(exp.backend.size(), flags, self.no_zeroes))
        except BaseException:
            self.registry.release(exp, self.client)
            raise
        meta = self.meta if self.meta_export == name else {}
        return Negotiated(exp, flags, self.structured, meta)

    def info_go(self, opt, data):
        try:
            (nlen,) = struct.unpack_from(">I", data, 0)
            name = _text(data[4:4 + nlen])
            (nreq,) = struct.unpack_from(">H", data, 4 + nlen)
            if len(data) != 4 + nlen + 2 + 2 * nreq:
                raise ValueError("length does not match its fields")
            infos = struct.unpack_from(f">{nreq}H", data, 6 + nlen)
        except (struct.error, ValueError) as e:
            self.error(opt, proto.REP_ERR_INVALID, f"malformed request: {e}")
            return None
        try:
            exp = self.acquire(name)
        except (NotFound, InvalidArgument) as e:
            self.error(opt, proto.REP_ERR_UNKNOWN, str(e))
            return None
        except Busy as e:
            self.error(opt, proto.REP_ERR_POLICY, str(e))
            return None
        except ArchipelagoError as e:
            self.error(opt, proto.REP_ERR_UNKNOWN, str(e))
            return None
        keep = False
        try:
            b = exp.backend
            flags = transmission_flags(b, self.structured)
            self.reply(opt, proto.REP_INFO, proto.info_export(b.size(), flags))
            self.reply(opt, proto.REP_INFO, proto.info_block_size(*b.block_size()))
            if proto.INFO_NAME in infos:
                self.reply(opt, proto.REP_INFO, proto.info_name(name))
            if proto.INFO_DESCRIPTION in infos and b.description:
                self.reply(opt, proto.REP_INFO, proto.info_description(b.description))
            self.reply(opt, proto.REP_ACK)
            if opt == proto.OPT_GO:
                keep = True
                meta = self.meta if self.meta_export == name else {}
                return Negotiated(exp, flags, self.structured, meta)
            return None
        finally:
            if not keep:
                self.registry.release(exp, self.client)

    def meta_context(self, opt, data):
        if not self.structured:
            self.error(opt, proto.REP_ERR_INVALID, "negotiate structured replies first")
            return
        try:
            (nlen,) = struct.unpack_from(">I", data, 0)
            name = _text(data[4:4 + nlen])
            pos = 4 + nlen
            (nq,) = struct.unpack_from(">I", data, pos)
            pos += 4
            queries = []
            for _ in range(nq):
                (qlen,) = struct.unpack_from(">I", data, pos)
                if qlen > proto.MAX_STRING or pos + 4 + qlen > len(data):
                    raise ValueError("query too long")
                queries.append(_text(data[pos + 4:pos + 4 + qlen]))
                pos += 4 + qlen
            if pos != len(data):
                raise ValueError("trailing bytes")
        except (struct.error, ValueError) as e:
            self.error(opt, proto.REP_ERR_INVALID, f"malformed request: {e}")
            return
        try:
            exp = self.acquire(name)
        except ArchipelagoError as e:
            self.error(opt, proto.REP_ERR_UNKNOWN, str(e))
            return
        self.registry.release(exp, self.client)
        # base:allocation is offered for every export: a backend without extent
        # information truthfully reports everything as allocated data.
        selected = {}
        for q in queries or [proto.META_BASE_ALLOCATION]:
            if q == proto.META_BASE_ALLOCATION or (opt == proto.OPT_LIST_META_CONTEXT
                                                   and q == "base:"):
                selected[proto.META_ID_BASE_ALLOCATION] = proto.META_BASE_ALLOCATION
        if opt == proto.OPT_SET_META_CONTEXT:
            self.meta, self.meta_export = dict(selected), name
        for ctx_id, ctx in selected.items():
            rid = ctx_id if opt == proto.OPT_SET_META_CONTEXT else 0
            self.reply(opt, proto.REP_META_CONTEXT, proto.rep_meta_context(rid, ctx))
        self.reply(opt, proto.REP_ACK)


def _text(raw):
    if len(raw) > proto.MAX_STRING:
        raise ValueError("string longer than 4096 bytes")
    text = bytes(raw).decode("utf-8")
    if "\0" in text:
        raise ValueError("string contains NUL")
    return text


def _discard(sock, n):
    while n:
        n -= len(recv_exact(sock, min(n, 1 << 20)))


def negotiate(sock, registry, client, shutting_down=lambda: False):
    """Run the handshake; the Negotiated session, or None if the client left.

    Raises HardDisconnect or Disconnected when the connection must be dropped.
    """
    return _Haggle(sock, registry, client, shutting_down).run()


__all__ = ["Disconnected", "HardDisconnect", "Negotiated", "negotiate",
           "transmission_flags"]
