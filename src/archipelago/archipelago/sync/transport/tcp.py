"""The direct TCP transport: a small authenticated receiver and its sender.

The receiver binds only the address it is given (`vlmc receive --listen`,
[sync] listen); there is no default bind. Both ends prove they know the shared
secret ([sync] auth_token_file) without sending it:

    receiver: "ARCHSYNC-TCP 1 <nonce_r>\\n"
    sender:   "AUTH <HMAC-SHA256(secret, "c|" nonce_r "|" volume)> <nonce_s> <volume>\\n"
    receiver: "OK <HMAC-SHA256(secret, "s|" nonce_s)>\\n"      (or "ERR <message>\\n")
    sender:   the stream ...                                    (then half-closes)
    receiver: one JSON line: the result ({"ok": true, ...} or {"ok": false,
              "error": ..., "token": ...}), possibly before the stream has ended
              when it refuses it; the sender stops writing when it sees one.

The data is not encrypted: use the ssh transport across untrusted networks.
"""
import hashlib
import hmac
import json
import logging
import os
import select
import socket
import time

from ...errors import ArchipelagoError, InvalidArgument, Timeout, Unavailable
from ..config import parse_hostport
from ..config import secret as load_secret
from .base import Channel, Transport

log = logging.getLogger(__name__)

GREETING = b"ARCHSYNC-TCP 1"
BUF = 256 << 10
RESULT_WAIT = 24 * 3600.0      # the receiver may be committing a large stream


class AuthError(ArchipelagoError):
    """The other end does not know the shared secret (or does not speak the protocol)."""


def _mac(secret, *parts):
    return hmac.new(secret, b"|".join(parts), hashlib.sha256).hexdigest()


def _readline(sock, limit=4096):
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AuthError("connection closed during the handshake")
        buf += chunk
        if len(buf) > limit:
            raise AuthError("handshake line too long")
    return buf[:-1].decode(errors="replace")


# -- the receiving end -------------------------------------------------------------
def bind(listen):
    """A listening socket on `listen` (ADDR:PORT; port 0 picks one)."""
    host, port = parse_hostport(listen, what="listen address", any_port=True)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        return socket.create_server((host, port), family=family, backlog=8)
    except OSError as e:
        raise Unavailable(f"cannot listen on {listen}: {e.strerror or e}") from None


def _accept_auth(conn, secret, timeout):
    conn.settimeout(timeout)
    nonce = os.urandom(16).hex().encode()
    conn.sendall(GREETING + b" " + nonce + b"\n")
    words = _readline(conn).split()
    if len(words) != 4 or words[0] != "AUTH":
        raise AuthError("bad handshake")
    _, mac, client_nonce, volume = words
    if not hmac.compare_digest(mac, _mac(secret, b"c", nonce, volume.encode())):
        raise AuthError("bad credentials")
    conn.sendall(b"OK " + _mac(secret, b"s", client_nonce.encode()).encode() + b"\n")
    return volume


def _send_result(conn, result):
    try:
        conn.sendall(json.dumps(result, sort_keys=True).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        # Let the sender see the result before it sees a reset: read what it still
        # sends (it stops when it notices the result) for a little while.
        conn.settimeout(5.0)
        while conn.recv(BUF):
            pass
    except OSError:
        pass


def serve(srv, secret, handle, *, auth_timeout=30.0, idle_timeout=300.0, deadline=None,
          once=True):
    """Accept authenticated senders on listening socket `srv`; for each, call
    handle(volume, rfile) -> result dict and send the result back. Returns the last
    result (`once`: after the first authenticated sender)."""
    result = None
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Timeout("no sender connected in time")
        srv.settimeout(left)
        try:
            conn, peer = srv.accept()
        except TimeoutError:
            raise Timeout("no sender connected in time") from None
        with conn:
            try:
                volume = _accept_auth(conn, secret, auth_timeout)
            except (AuthError, OSError) as e:
                log.warning("sync: refused a connection from %s: %s", peer[0], e)
                try:
                    conn.sendall(b"ERR authentication failed\n")
                except OSError:
                    pass
                continue
            log.info("sync: receiving %s from %s", volume, peer[0])
            conn.settimeout(idle_timeout)
            rfile = conn.makefile("rb", buffering=BUF)
            try:
                result = handle(volume, rfile)
            finally:
                rfile.close()
            _send_result(conn, result)
        if once:
            return result


# -- the sending end ---------------------------------------------------------------
class _SockWriter:
    """A buffered writer that stops as soon as the receiver has answered early."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def write(self, data):
        self.buf += data
        if len(self.buf) >= BUF:
            self.flush()
        return len(data)

    def flush(self):
        if not self.buf:
            return
        r, _, _ = select.select([self.sock], [], [], 0)
        if r:
            raise ConnectionAbortedError("the receiver stopped the stream")
        self.sock.sendall(self.buf)
        self.buf.clear()

    def close(self):
        pass


class TcpChannel(Channel):
    """A stream to a tcp.serve receiver: over a new TCP connection to `dest`, or over
    `sock`, a socket already connected to one (the ssh transport's tunnel)."""

    def __init__(self, dest, volume, settings, secret, sock=None):
        host, port = parse_hostport(dest, settings.port, "destination")
        try:
            self.sock = sock or socket.create_connection((host, port),
                                                         timeout=settings.connect_timeout)
        except OSError as e:
            raise Unavailable(f"cannot connect to {host}:{port}: {e.strerror or e}") \
                from None
        self.sock.settimeout(settings.connect_timeout)
        try:
            greet = _readline(self.sock)
            if not greet.startswith(GREETING.decode() + " "):
                raise AuthError(f"{host}:{port} is not an archipelago sync receiver")
            nonce = greet.split()[-1].encode()
            mine = os.urandom(16).hex()
            mac = _mac(secret, b"c", nonce, volume.encode())
            self.sock.sendall(f"AUTH {mac} {mine} {volume}\n".encode())
            answer = _readline(self.sock).split()
            if answer[:1] != ["OK"] or len(answer) != 2 or not hmac.compare_digest(
                    answer[1], _mac(secret, b"s", mine.encode())):
                raise AuthError(f"{host}:{port} refused the credentials (or does not know "
                                "the shared secret)")
        except (OSError, AuthError) as e:
            self.sock.close()
            if isinstance(e, AuthError):
                raise
            raise Unavailable(f"{host}:{port}: handshake failed: {e}") from None
        self.sock.settimeout(settings.connect_timeout * 10)
        self.wfile = _SockWriter(self.sock)

    def finish(self):
        try:
            try:
                self.wfile.flush()
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass                 # the receiver answered early: read its result
            self.sock.settimeout(RESULT_WAIT)
            line = self.sock.makefile("rb").readline()
        except OSError as e:
            return {"ok": False, "error": f"lost the receiver: {e}", "token": None}
        finally:
            self.sock.close()
        try:
            res = json.loads(line)
        except ValueError:
            return {"ok": False, "token": None,
                    "error": "the receiver closed the connection without a result"}
        return res if isinstance(res, dict) else {"ok": False, "error": "bad result"}

    def abort(self):
        self.sock.close()


class TcpTransport(Transport):
    name = "tcp"

    def connect(self, dest, volume, settings, force=False, limit=None):
        if force:
            raise InvalidArgument("--force over TCP is the receiver's decision: start "
                                  "`vlmc receive --listen ... --force` there")
        return TcpChannel(dest, volume, settings, load_secret(settings))
