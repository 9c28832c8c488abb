"""Protocol abuse over raw sockets: each case answered per protocol, the server stays up."""
import socket
import struct

import pytest

from archipelago.nbd import proto
from archipelago.nbd.client import Client
from archipelago.nbd.testing import serve
from archipelago.nbd.wire import Disconnected, recv_exact

MiB = 1 << 20
SIZE = 4 * MiB


@pytest.fixture
def srv(tmp_path):
    (tmp_path / "ro@snap").write_bytes(b"R" * MiB)
    with serve(memory={"disk": SIZE}, exports_dir=tmp_path) as s:
        yield s


def raw(srv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(srv.unix_path)
    return s


def client(srv, export="disk"):
    c = Client.connect_uri(srv.uri(export))
    c.sock.settimeout(10)
    c.go()
    return c


def assert_alive(srv):
    """A fresh client still gets a full handshake and correct I/O."""
    with client(srv) as c:
        c.write(4096, b"ok" * 256)
        assert c.read(4096, 512) == b"ok" * 256


def closed(sock):
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, Disconnected):
        return True


def greet(sock, flags=proto.FLAG_C_FIXED_NEWSTYLE | proto.FLAG_C_NO_ZEROES):
    recv_exact(sock, 18)
    sock.sendall(struct.pack(">I", flags))


def opt_reply(sock):
    magic, opt, rtype, length = proto.OPTION_REPLY.unpack(recv_exact(sock, 20))
    assert magic == proto.REPLY_MAGIC_OPT
    return opt, rtype, recv_exact(sock, length)


# -- handshake -------------------------------------------------------------------------

def test_bad_option_magic_closes(srv):
    with raw(srv) as s:
        greet(s)
        s.sendall(struct.pack(">QII", 0xDEADBEEF, proto.OPT_GO, 0))
        assert closed(s)
    assert_alive(srv)


def test_truncated_handshake(srv):
    for cut in (0, 2, 10):
        with raw(srv) as s:
            recv_exact(s, 18)
            s.sendall(struct.pack(">I", 1)[:cut] if cut < 4 else
                      struct.pack(">I", 1) + proto.option(proto.OPT_GO, b"x" * 20)[:cut])
    with raw(srv) as s:              # half an option, then gone
        greet(s)
        s.sendall(proto.option(proto.OPT_GO, proto.go_data("disk"))[:10])
    assert_alive(srv)


def test_unknown_client_flags_close(srv):
    with raw(srv) as s:
        greet(s, flags=0x80)
        assert closed(s)
    assert_alive(srv)


def test_unknown_and_malformed_options_get_error_replies(srv):
    with raw(srv) as s:
        greet(s)
        s.sendall(proto.option(77, b"junk"))
        assert opt_reply(s)[1] == proto.REP_ERR_UNSUP
        s.sendall(proto.option(proto.OPT_GO, b"\0\0\0\x09disk"))        # lengths lie
        assert opt_reply(s)[1] == proto.REP_ERR_INVALID
        s.sendall(proto.option(proto.OPT_LIST, b"x"))
        assert opt_reply(s)[1] == proto.REP_ERR_INVALID
        s.sendall(proto.option(proto.OPT_SET_META_CONTEXT,
                               proto.meta_context_data("disk", ["base:allocation"])))
        assert opt_reply(s)[1] == proto.REP_ERR_INVALID                  # no structured yet
        s.sendall(proto.option(proto.OPT_STARTTLS))
        assert opt_reply(s)[1] & proto.REP_ERR
        s.sendall(proto.option(proto.OPT_INFO, proto.go_data("nosuch")))
        assert opt_reply(s)[1] == proto.REP_ERR_UNKNOWN
        s.sendall(proto.option(proto.OPT_INFO, proto.go_data("a/../../etc/passwd")))
        assert opt_reply(s)[1] == proto.REP_ERR_UNKNOWN
        s.sendall(struct.pack(">QII", proto.IHAVEOPT, 99, 100 * 1024) + bytes(100 * 1024))
        assert opt_reply(s)[1] == proto.REP_ERR_TOO_BIG
        # the connection is still usable: ABORT is acknowledged
        s.sendall(proto.option(proto.OPT_ABORT))
        assert opt_reply(s)[1] == proto.REP_ACK
    assert_alive(srv)


def test_absurd_option_length_closes(srv):
    with raw(srv) as s:
        greet(s)
        s.sendall(struct.pack(">QII", proto.IHAVEOPT, proto.OPT_GO, 0xFFFFFFF0))
        assert closed(s)
    assert_alive(srv)


def test_export_name_unknown_closes(srv):
    with raw(srv) as s:
        greet(s)
        s.sendall(proto.option(proto.OPT_EXPORT_NAME, b"nosuch"))
        assert closed(s)
    with raw(srv) as s:              # and a good one works, without zero padding
        greet(s)
        s.sendall(proto.option(proto.OPT_EXPORT_NAME, b"disk"))
        size, flags = struct.unpack(">QH", recv_exact(s, 10))
        assert size == SIZE and flags & proto.TF_SEND_FLUSH
    assert_alive(srv)


# -- transmission -------------------------------------------------------------------------

def test_requests_past_the_end_and_oversized(srv):
    with client(srv) as c:
        assert c.request(proto.CMD_READ, SIZE - 10, 20) == proto.EINVAL
        assert c.request(proto.CMD_WRITE, SIZE - 10, 20, data=b"x" * 20) == proto.ENOSPC
        assert c.request(proto.CMD_WRITE_ZEROES, SIZE, 1) == proto.ENOSPC
        assert c.request(proto.CMD_TRIM, SIZE - 1, 2) == proto.EINVAL
        assert c.request(proto.CMD_CACHE, 2**63, 1) == proto.EINVAL
        assert c.request(proto.CMD_READ, 0, 64 * MiB) == proto.EINVAL
        big = 33 * MiB                 # over the maximum: payload read and dropped
        assert c.request(proto.CMD_WRITE, 0, big, data=bytes(big)) == proto.EINVAL
        assert c.read(0, 4) == bytes(4)            # still in sync, nothing written
        assert c.request(proto.CMD_READ, 2**64 - 1, 1) == proto.EINVAL   # offset overflow
    assert_alive(srv)


def test_unknown_commands_and_flags(srv):
    with client(srv) as c:
        assert c.request(99, 0, 0) == proto.EINVAL
        assert c.request(proto.CMD_RESIZE, 0, 0) == proto.EINVAL
        assert c.request(proto.CMD_READ, 0, 512, flags=0x4000) == proto.EINVAL
        assert c.request(proto.CMD_READ, 0, 512, flags=proto.CMD_FLAG_DF) == proto.EINVAL
        assert c.request(proto.CMD_WRITE, 0, 4, flags=proto.CMD_FLAG_NO_HOLE,
                         data=b"abcd") == proto.EINVAL
        assert c.request(proto.CMD_FLUSH, 10, 0) == proto.EINVAL
        assert c.request(proto.CMD_BLOCK_STATUS, 0, 512) == proto.EINVAL   # no context
        assert c.read(0, 4) == bytes(4)
        # valid flags are accepted: FUA everywhere, NO_HOLE/FAST_ZERO on zeroes
        c.write(0, b"abcd", flags=proto.CMD_FLAG_FUA)
        c.zero(0, 2, flags=proto.CMD_FLAG_NO_HOLE | proto.CMD_FLAG_FUA)
        c.zero(0, 4 * 65536, flags=proto.CMD_FLAG_FAST_ZERO)
        assert c.request(proto.CMD_CACHE, 0, 4096, flags=proto.CMD_FLAG_FUA) == 0
        assert c.read(0, 4) == bytes(4)
    assert_alive(srv)


def test_bad_request_magic_closes(srv):
    with client(srv) as c:
        c.send(struct.pack(">IHHQQI", 0x12345678, 0, 0, 1, 0, 512))
        assert closed(c.sock)
    assert_alive(srv)


def test_disconnect_mid_write_leaves_data_alone(srv):
    with client(srv) as c:
        c.write(MiB, b"A" * 4096)
        c.send(proto.request(proto.CMD_WRITE, MiB, 65536, cookie=7) + b"B" * 1000)
    with client(srv) as c:
        c.send(proto.request(proto.CMD_WRITE, MiB, 8 * MiB, cookie=8) + b"C" * 5000)
    with client(srv) as c:
        assert c.read(MiB, 4096) == b"A" * 4096
    assert_alive(srv)


def test_huge_write_length_closes(srv):
    with client(srv) as c:
        c.send(proto.request(proto.CMD_WRITE, 0, 0xFFFFFFFF, cookie=1))
        # the error is sent, then the connection closes: skipping 4 GiB is not on
        magic, err, cookie = proto.SIMPLE_REPLY.unpack(recv_exact(c.sock, 16))
        assert magic == proto.SIMPLE_REPLY_MAGIC
        assert (err, cookie) == (proto.EINVAL, 1)
        assert closed(c.sock)
    assert_alive(srv)


def test_read_only_export_refuses_writes(srv):
    with client(srv, "ro@snap") as c:
        assert c.flags & proto.TF_READ_ONLY
        assert c.request(proto.CMD_WRITE, 0, 4, data=b"xxxx") == proto.EPERM
        assert c.request(proto.CMD_WRITE_ZEROES, 0, 4) == proto.EPERM
        assert c.request(proto.CMD_TRIM, 0, 4) == proto.EPERM
        assert c.read(0, 4) == b"RRRR"


def test_structured_replies_block_status_and_errors(srv):
    with raw(srv) as s:
        greet(s)
        s.sendall(proto.option(proto.OPT_STRUCTURED_REPLY))
        assert opt_reply(s)[1] == proto.REP_ACK
        s.sendall(proto.option(proto.OPT_LIST_META_CONTEXT, proto.meta_context_data("disk", [])))
        assert opt_reply(s)[1] == proto.REP_META_CONTEXT
        assert opt_reply(s)[1] == proto.REP_ACK
        s.sendall(proto.option(proto.OPT_SET_META_CONTEXT, proto.meta_context_data(
            "disk", ["base:allocation", "x-other:thing"])))
        _, rtype, data = opt_reply(s)
        assert rtype == proto.REP_META_CONTEXT and data[4:] == b"base:allocation"
        ctx = struct.unpack(">I", data[:4])[0]
        assert opt_reply(s)[1] == proto.REP_ACK
        s.sendall(proto.option(proto.OPT_GO, proto.go_data("disk")))
        while opt_reply(s)[1] != proto.REP_ACK:
            pass
        s.sendall(proto.request(proto.CMD_WRITE, 65536, 65536, cookie=1) + b"x" * 65536)
        assert proto.SIMPLE_REPLY.unpack(recv_exact(s, 16))[1] == 0
        s.sendall(proto.request(proto.CMD_BLOCK_STATUS, 0, 4 * 65536, cookie=2))
        magic, flags, ctype, cookie, length = proto.CHUNK.unpack(recv_exact(s, 20))
        assert (magic, ctype, cookie) == (proto.STRUCTURED_REPLY_MAGIC,
                                          proto.REPLY_TYPE_BLOCK_STATUS, 2)
        body = recv_exact(s, length)
        assert struct.unpack_from(">I", body)[0] == ctx
        ext = [struct.unpack_from(">II", body, 4 + 8 * i) for i in range((length - 4) // 8)]
        assert ext[:2] == [(65536, proto.STATE_HOLE | proto.STATE_ZERO), (65536, 0)]
        s.sendall(proto.request(proto.CMD_READ, SIZE, 1, cookie=3))
        magic, flags, ctype, cookie, length = proto.CHUNK.unpack(recv_exact(s, 20))
        assert ctype == proto.REPLY_TYPE_ERROR and cookie == 3 and flags & proto.REPLY_FLAG_DONE
        assert struct.unpack_from(">I", recv_exact(s, length))[0] == proto.EINVAL
        s.sendall(proto.request(proto.CMD_READ, 65536, 8, cookie=4, flags=proto.CMD_FLAG_DF))
        magic, flags, ctype, cookie, length = proto.CHUNK.unpack(recv_exact(s, 20))
        assert ctype == proto.REPLY_TYPE_OFFSET_DATA and length == 16
        assert recv_exact(s, 16) == struct.pack(">Q", 65536) + b"x" * 8
        s.sendall(proto.request(proto.CMD_DISC, cookie=5))
        assert closed(s)
    assert_alive(srv)
