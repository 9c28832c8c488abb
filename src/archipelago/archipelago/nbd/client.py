"""A small NBD client: the handshake the kernel connector needs, and a test helper.

    with Client.connect_uri("nbd+unix:///vol?socket=/run/archipelago/nbd.sock") as c:
        c.go("vol")                     # c.size, c.flags
        c.write(0, b"x" * 512)
        assert c.read(0, 512) == b"x" * 512

Simple replies only (no structured replies): that is what the kernel client
speaks. Errors come back as archipelago.errors types carrying the NBD errno.
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

    def go(self, export=None, opt=proto.OPT_GO):
        """Greet and select `export` with NBD_OPT_GO; sets size and flags."""
        export = self.export if export is None else export
        self.greet()
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

    # -- transmission ------------------------------------------------------------------

    def request(self, cmd, offset=0, length=0, flags=0, data=b""):
        """Send one request; returns the NBD error of its simple reply (0 = ok)."""
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
        err = self.request(proto.CMD_READ, offset, length)
        self._check(err, "read")
        return self.recv(length)

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
