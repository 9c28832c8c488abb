"""Hypothesis fuzz of the request stream against a model of the disk.

Random streams of requests — valid and invalid commands, flags, offsets,
lengths, truncated payloads, bad magic, DISC — go to an in-process server over
a Unix socket in one burst. Every reply must be well-formed and in order, every
request the spec says to refuse must get an error, every accepted write must
land exactly as in a bytearray model, every accepted read must match it, and
the server must keep serving new connections afterwards.
"""
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archipelago.nbd import proto
from archipelago.nbd.client import Client
from archipelago.nbd.testing import serve
from archipelago.nbd.wire import Disconnected, recv_exact

SIZE = 256 * 1024
CMDS = [proto.CMD_READ, proto.CMD_WRITE, proto.CMD_FLUSH, proto.CMD_TRIM, proto.CMD_CACHE,
        proto.CMD_WRITE_ZEROES, proto.CMD_BLOCK_STATUS, proto.CMD_DISC, 8, 9, 200]
OK_FLAGS = {proto.CMD_READ: 1, proto.CMD_WRITE: 1, proto.CMD_FLUSH: 1, proto.CMD_TRIM: 1,
            proto.CMD_CACHE: 1, proto.CMD_WRITE_ZEROES: 1 | 2 | 16}


@pytest.fixture(scope="module")
def srv():
    with serve(memory={"disk": SIZE}) as s:
        yield s


def offsets():
    return st.one_of(st.integers(0, SIZE), st.integers(SIZE - 600, SIZE + 600).filter(
        lambda x: x >= 0), st.sampled_from([2**63, 2**64 - 1, 2**64 - 512]))


request = st.fixed_dictionaries({
    "cmd": st.sampled_from(CMDS),
    "flags": st.one_of(st.just(0), st.sampled_from([1, 2, 4, 8, 16, 3, 17, 0x8000])),
    "offset": offsets(),
    "length": st.one_of(st.integers(0, 3000), st.sampled_from([0, 1, 65536, 2**32 - 1])),
    "magic_ok": st.sampled_from([True] * 9 + [False]),
    "fill": st.integers(0, 255),
})


def valid(r):
    cmd, flags, off, n = r["cmd"], r["flags"], r["offset"], r["length"]
    if cmd not in OK_FLAGS or flags & ~OK_FLAGS[cmd]:
        return False
    if cmd == proto.CMD_FLUSH:
        return off == 0 and n == 0
    if cmd in (proto.CMD_READ, proto.CMD_WRITE) and n > 32 << 20:
        return False
    return off + n <= SIZE


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(request, min_size=1, max_size=25))
def test_request_stream(srv, reqs):
    with Client.connect_uri(srv.uri("disk")) as c:
        c.sock.settimeout(20)
        c.go()
        model = bytearray(c.read(0, SIZE))
        stream, expect = bytearray(), []
        for i, r in enumerate(reqs):
            magic = proto.REQUEST_MAGIC if r["magic_ok"] else 0x0BADBEEF
            stream += struct.pack(">IHHQQI", magic, r["flags"], r["cmd"], i + 1,
                                  r["offset"], r["length"])
            if not r["magic_ok"]:
                break                                     # server hangs up here
            if r["cmd"] == proto.CMD_DISC:
                break
            if r["cmd"] == proto.CMD_WRITE:
                if r["length"] > 1 << 20:                 # truncated payload: stream ends
                    stream += bytes([r["fill"]]) * 100
                    break
                stream += bytes([r["fill"]]) * r["length"]
            expect.append((i + 1, r))
        c.sock.sendall(stream)
        c.sock.shutdown(socket.SHUT_WR)
        for cookie, r in expect:
            try:
                magic, err, got = proto.SIMPLE_REPLY.unpack(recv_exact(c.sock, 16))
            except Disconnected:
                pytest.fail(f"no reply to request {cookie}: {r}")
            assert magic == proto.SIMPLE_REPLY_MAGIC and got == cookie
            if not valid(r):
                assert err != 0, r
                continue
            assert err == 0, r
            off, n = r["offset"], r["length"]
            if r["cmd"] == proto.CMD_READ:
                assert recv_exact(c.sock, n) == model[off:off + n]
            elif r["cmd"] == proto.CMD_WRITE:
                model[off:off + n] = bytes([r["fill"]]) * n
            elif r["cmd"] in (proto.CMD_WRITE_ZEROES, proto.CMD_TRIM):
                model[off:off + n] = bytes(n)
        rest = b""                                        # then a clean close, perhaps
        while chunk := c.sock.recv(4096):                 # after refusing a huge write
            rest += chunk
        if rest:
            magic, err, _ = proto.SIMPLE_REPLY.unpack(rest)
            assert magic == proto.SIMPLE_REPLY_MAGIC and err == proto.EINVAL
    with Client.connect_uri(srv.uri("disk")) as c:        # the server lives on
        c.go()
        assert c.read(0, SIZE) == model


option = st.fixed_dictionaries({
    "opt": st.sampled_from([proto.OPT_ABORT, proto.OPT_LIST, proto.OPT_PEEK_EXPORT,
                            proto.OPT_STARTTLS, proto.OPT_INFO, proto.OPT_STRUCTURED_REPLY,
                            proto.OPT_LIST_META_CONTEXT, proto.OPT_SET_META_CONTEXT,
                            proto.OPT_EXTENDED_HEADERS, 0, 12, 0x7FFFFFFF, 0xFFFFFFFF]),
    "data": st.one_of(st.binary(max_size=40),
                      st.sampled_from([proto.go_data("disk"), proto.go_data("nosuch"),
                                       proto.meta_context_data("disk", ["base:allocation"]),
                                       proto.meta_context_data("disk", []),
                                       proto.meta_context_data("x", ["base:"])])),
})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(option, min_size=1, max_size=12))
def test_option_haggling(srv, opts):
    """Every option gets well-formed replies ending in ACK or an error; then GO works."""
    with Client.connect_uri(srv.uri("disk")) as c:
        c.sock.settimeout(20)
        c.greet()
        for o in opts:
            c.send(proto.option(o["opt"], o["data"]))
            while True:
                got, rtype, _ = c.option_reply()
                assert got == o["opt"]
                if rtype == proto.REP_ACK or rtype & proto.REP_ERR:
                    break
                assert rtype in (proto.REP_SERVER, proto.REP_INFO, proto.REP_META_CONTEXT)
            if o["opt"] == proto.OPT_ABORT:
                assert rtype == proto.REP_ACK
                return
        c.send(proto.option(proto.OPT_GO, proto.go_data("disk")))
        while (reply := c.option_reply())[1] != proto.REP_ACK:
            assert reply[1] == proto.REP_INFO
        c.write(0, b"still here")           # writes and flushes get simple replies
        c.flush()                            # even when structured replies are on
