"""A small NBD client: the handshake the kernel connector needs, and a test helper.

    with Client.connect_uri("nbd+unix:///vol?socket=/run/archipelago/nbd.sock") as c:
        c.go("vol")                     # c.size, c.flags
        c.write(0, b"x" * 512)
        assert c.read(0, 512) == b"x" * 512

Simple replies by default: that is what the kernel client speaks. With
`go(meta=["base:allocation"])` the client first negotiates structured replies
(NBD_OPT_STRUCTURED_REPLY) and the metadata contexts (NBD_OPT_SET_META_CONTEXT),
as the protocol requires before NBD_CMD_BLOCK_STATUS; then `block_status()`
answers the server's allocation map and `read()` takes structured replies (data
and hole chunks). A server that refuses either leaves `meta` empty: the caller
treats every byte as data. Errors come back as archipelago.errors types carrying
the NBD errno.
"""
import socket
import struct
from urllib.parse import parse_qs, urlparse

from ..errors import InvalidArgument, NotFound, Unavailable, from_errno
from . import proto
from .wire import recv_exact, set_nodelay


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.size = None
        self.flags = 0
        self.cookie = 0
        self.structured = False
        self.meta = {}              # context name -> id the server gave it

    @classmethod
    def connect_uri(cls, uri, timeout=10):
        """Connect to nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH."""
        u = urlparse(uri)
        try:
            if u.scheme == "nbd+unix":
                path = parse_qs(u.query).get("socket", [None])[0]
                if not path:
                    raise InvalidArgument(f"{uri}: no socket= in the URI")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(path)
            elif u.scheme == "nbd":
                sock = socket.create_connection((u.hostname, u.port or 10809), timeout)
                set_nodelay(sock)
            else:
                raise InvalidArgument(f"{uri}: not an nbd:// or nbd+unix:// URI")
        except OSError as e:
            raise Unavailable(f"{uri}: {e.strerror or e}") from None
        sock.settimeout(None)
        c = cls(sock)
        c.export = u.path.lstrip("/")
        return c

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        return recv_exact(self.sock, n)

    # -- handshake -------------------------------------------------------------------

    def greet(self):
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        if magic != proto.NBDMAGIC or opt != proto.IHAVEOPT:
            raise InvalidArgument("not an NBD newstyle server")
        self.send(struct.pack(">I", proto.FLAG_C_FIXED_NEWSTYLE
                              | (hflags & proto.FLAG_NO_ZEROES)))
        return hflags

    def option_reply(self):
        magic, opt, rtype, length = proto.OPTION_REPLY.unpack(
            self.recv(proto.OPTION_REPLY.size))
        if magic != proto.REPLY_MAGIC_OPT:
            raise InvalidArgument(f"bad option reply magic {magic:#x}")
        return opt, rtype, self.recv(length)

    def go(self, export=None, opt=proto.OPT_GO, meta=()):
        """Greet and select `export` with NBD_OPT_GO; sets size and flags. `meta`:
        metadata contexts to ask for (e.g. "base:allocation"); those the server
        grants are in self.meta afterwards."""
        export = self.export if export is None else export
        self.greet()
        if meta:
            self.negotiate_meta(export, meta)
        self.send(proto.option(opt, proto.go_data(export)))
        while True:
            _, rtype, data = self.option_reply()
            if rtype == proto.REP_INFO:
                (itype,) = struct.unpack_from(">H", data)
                if itype == proto.INFO_EXPORT:
                    _, self.size, self.flags = struct.unpack(">HQH", data)
            elif rtype == proto.REP_ACK:
                return self.size, self.flags
            else:
                msg = data.decode("utf-8", "replace") or f"reply {rtype:#x}"
                if rtype == proto.REP_ERR_UNKNOWN:
                    raise NotFound(f"export {export!r}: {msg}")
                raise from_errno(proto.EINVAL, f"export {export!r}: {msg}")

    def negotiate_meta(self, export, queries):
        """Structured replies, then the metadata contexts `queries` of `export`
        (before NBD_OPT_GO). A refusal is not an error: self.meta stays empty."""
        self.send(proto.option(proto.OPT_STRUCTURED_REPLY))
        _, rtype, _ = self.option_reply()
        if rtype != proto.REP_ACK:
            return
        self.structured = True
        self.send(proto.option(proto.OPT_SET_META_CONTEXT,
                               proto.meta_context_data(export, list(queries))))
        while True:
            _, rtype, data = self.option_reply()
            if rtype == proto.REP_META_CONTEXT and len(data) >= 4:
                (ctx_id,) = struct.unpack_from(">I", data)
                self.meta[data[4:].decode("utf-8", "replace")] = ctx_id
            elif rtype == proto.REP_ACK or rtype & proto.REP_ERR:
                return

    # -- transmission ------------------------------------------------------------------

    def request(self, cmd, offset=0, length=0, flags=0, data=b""):
        """Send one request; returns the NBD error of its reply (0 = ok). With
        structured replies negotiated a server may answer any command with chunks
        (taken here too); READ and BLOCK_STATUS are then read() and block_status()."""
        if self.structured and cmd not in (proto.CMD_READ, proto.CMD_BLOCK_STATUS):
            _, error = self._replies(cmd, offset, length, proto.CMD_NAMES.get(cmd, str(cmd)),
                                     flags=flags, data=data)
            return 0 if error is None else error.errno or proto.EIO
        self.cookie += 1
        self.send(proto.request(cmd, offset, length, self.cookie, flags) + bytes(data))
        magic, err, cookie = proto.SIMPLE_REPLY.unpack(self.recv(proto.SIMPLE_REPLY.size))
        if magic != proto.SIMPLE_REPLY_MAGIC or cookie != self.cookie:
            raise InvalidArgument(f"bad reply (magic {magic:#x}, cookie {cookie})")
        return err

    def _check(self, err, what):
        if err:
            raise from_errno(err, f"NBD {what}: error {err}")

    def read(self, offset, length):
        if self.structured:
            buf = bytearray(length)           # holes are zeros
            self._structured(proto.CMD_READ, offset, length, "read", buf=buf)
            return bytes(buf)
        err = self.request(proto.CMD_READ, offset, length)
        self._check(err, "read")
        return self.recv(length)

    def block_status(self, offset, length, context=proto.META_BASE_ALLOCATION):
        """[(length, flags)] of `context` from `offset` (proto.STATE_* for
        base:allocation). The server may describe less than `length` (at least one
        byte) or, in its last extent, more. Needs go(meta=[context])."""
        ctx_id = self.meta.get(context)
        if ctx_id is None:
            raise InvalidArgument(f"NBD block status: context {context!r} was not negotiated")
        got = self._structured(proto.CMD_BLOCK_STATUS, offset, length, "block status")
        extents = got.get(ctx_id)
        if not extents:
            raise InvalidArgument("NBD block status: the server described nothing")
        return extents

    def _structured(self, cmd, offset, length, what, buf=None):
        """_replies(), the server's error raised once its reply is complete."""
        status, error = self._replies(cmd, offset, length, what, buf)
        if error is not None:
            raise error
        return status

    def _replies(self, cmd, offset, length, what, buf=None, flags=0, data=b""):
        """Send one request and take its reply chunks (or a simple reply) until the
        last: READ data lands in `buf`. Returns ({context id: [(length, flags)]} of
        BLOCK_STATUS chunks, the server's error or None); a broken reply raises."""
        self.cookie += 1
        self.send(proto.request(cmd, offset, length, self.cookie, flags) + bytes(data))
        status, error = {}, None
        while True:
            (magic,) = struct.unpack(">I", self.recv(4))
            if magic == proto.SIMPLE_REPLY_MAGIC:
                err, cookie = struct.unpack(">IQ", self.recv(12))
                if cookie != self.cookie:
                    raise InvalidArgument(f"bad reply cookie {cookie}")
                if err:
                    return status, from_errno(err, f"NBD {what}: error {err}")
                if cmd == proto.CMD_READ:           # a server may still answer simply
                    buf[:] = self.recv(length)
                return status, None
            if magic != proto.STRUCTURED_REPLY_MAGIC:
                raise InvalidArgument(f"bad reply magic {magic:#x}")
            rflags, ctype, cookie, n = struct.unpack(">HHQI", self.recv(proto.CHUNK.size - 4))
            if cookie != self.cookie:
                raise InvalidArgument(f"bad reply cookie {cookie}")
            body = self.recv(n) if n else b""
            if ctype == proto.REPLY_TYPE_OFFSET_DATA and buf is not None:
                (at,) = struct.unpack_from(">Q", body)
                if not offset <= at <= at + n - 8 <= offset + length:
                    raise InvalidArgument(f"NBD {what}: data chunk outside the request")
                buf[at - offset:at - offset + n - 8] = body[8:]
            elif ctype == proto.REPLY_TYPE_OFFSET_HOLE and buf is not None:
                at, hole = struct.unpack(">QI", body)
                if not offset <= at <= at + hole <= offset + length:
                    raise InvalidArgument(f"NBD {what}: hole chunk outside the request")
                buf[at - offset:at - offset + hole] = bytes(hole)
            elif ctype == proto.REPLY_TYPE_BLOCK_STATUS:
                (ctx_id,) = struct.unpack_from(">I", body)
                status[ctx_id] = [struct.unpack_from(">II", body, i)
                                  for i in range(4, n - 7, 8)]
            elif ctype in (proto.REPLY_TYPE_ERROR, proto.REPLY_TYPE_ERROR_OFFSET):
                err, mlen = struct.unpack_from(">IH", body)
                msg = body[6:6 + mlen].decode("utf-8", "replace")
                error = error or from_errno(err, f"NBD {what}: {msg or f'error {err}'}")
            elif ctype != proto.REPLY_TYPE_NONE and ctype & 0x8000:
                error = error or from_errno(proto.EIO, f"NBD {what}: error chunk {ctype}")
            if rflags & proto.REPLY_FLAG_DONE:
                return status, error

    def write(self, offset, data, flags=0):
        self._check(self.request(proto.CMD_WRITE, offset, len(data), flags, data), "write")

    def flush(self):
        self._check(self.request(proto.CMD_FLUSH), "flush")

    def trim(self, offset, length):
        self._check(self.request(proto.CMD_TRIM, offset, length), "trim")

    def zero(self, offset, length, flags=0):
        self._check(self.request(proto.CMD_WRITE_ZEROES, offset, length, flags), "zero")

    def disconnect(self):
        self.send(proto.request(proto.CMD_DISC))
        self.close()
