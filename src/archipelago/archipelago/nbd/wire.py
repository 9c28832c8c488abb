"""Socket helpers shared by the server, the client and the tests."""
import socket


class Disconnected(Exception):
    """The peer closed the connection (possibly in the middle of a message)."""


def recv_exact(sock, n):
    """Exactly n bytes from sock (bytes); Disconnected on EOF."""
    buf = bytearray(n)
    recv_into_exact(sock, memoryview(buf))
    return bytes(buf)


def recv_into_exact(sock, view):
    """Fill the memoryview completely; Disconnected on EOF."""
    got, want = 0, len(view)
    while got < want:
        try:
            n = sock.recv_into(view[got:], want - got)
        except (ConnectionResetError, BrokenPipeError):
            raise Disconnected("connection reset") from None
        if n == 0:
            raise Disconnected(f"connection closed after {got} of {want} bytes")
        got += n


def sendmsg_all(sock, parts):
    """Send a list of byte buffers with as few syscalls as possible, without copies.

    `parts` is consumed (its items may be replaced by shorter views).
    """
    i, n = 0, len(parts)
    while i < n:
        try:
            sent = sock.sendmsg(parts[i:i + 512])
        except (ConnectionResetError, BrokenPipeError):
            raise Disconnected("connection reset") from None
        while sent:
            size = len(parts[i])
            if sent >= size:
                sent -= size
                i += 1
            else:
                parts[i] = memoryview(parts[i])[sent:]
                sent = 0
        while i < n and not len(parts[i]):
            i += 1


# Linux's SO_SNDBUFFORCE (asm-generic/socket.h); Python does not name it.
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)


def set_sndbuf(sock, size):
    """Ask for a send buffer of `size` bytes: past net.core.wmem_max (208 KiB on a
    stock kernel) where the process may (CAP_NET_ADMIN: nbdd as root), else capped
    at it."""
    for opt in (SO_SNDBUFFORCE, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
            return
        except OSError:
            continue


def set_nodelay(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
