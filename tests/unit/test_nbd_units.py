"""Pure pieces of the NBD frontend: settings, backends, registry, negotiation flags,
the netlink encoding of the kernel connector."""
import errno
import os
import struct

import pytest

from archipelago import config
from archipelago.errors import ConfigError, InvalidArgument, NotFound, ReadOnly, Unsupported
from archipelago.nbd import proto
from archipelago.nbd.backend import Backend, ReadOnlyView
from archipelago.nbd.file import FileBackend
from archipelago.nbd.memory import PAGE, MemoryBackend
from archipelago.nbd.negotiate import transmission_flags
from archipelago.nbd.registry import ExportRegistry, FileProvider, MemoryProvider
from archipelago.nbd.settings import NBD, AllowList, parse_address
from archipelago_kernel import netlink

MiB = 1 << 20


# -- settings ------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind,host,port,path", [
    ("127.0.0.1:10809", "tcp", "127.0.0.1", 10809, ""),
    ("[::1]:0", "tcp", "::1", 0, ""),
    ("localhost", "tcp", "localhost", 10809, ""),
    (":1234", "tcp", "0.0.0.0", 1234, ""),
    ("unix:/run/a/nbd.sock", "unix", "", 0, "/run/a/nbd.sock"),
])
def test_parse_address(text, kind, host, port, path):
    a = parse_address(text)
    assert (a.kind, a.host, a.port, a.path) == (kind, host, port, path)


@pytest.mark.parametrize("text", ["unix:relative.sock", "host:99999", "host:x", "[::1]x"])
def test_parse_address_rejects(text):
    with pytest.raises(InvalidArgument):
        parse_address(text)


def test_uris():
    assert parse_address("unix:/s").uri("v@s") == "nbd+unix:///v@s?socket=/s"
    assert parse_address("[::1]:5").uri("v") == "nbd://[::1]:5/v"
    assert parse_address("0.0.0.0:5").uri("v") == "nbd://localhost:5/v"


def test_allow_list():
    a = AllowList(["10.0.0.0/8", "192.168.1.5", "unix"])
    assert a.allows("tcp", "10.1.2.3") and a.allows("tcp", "192.168.1.5")
    assert a.allows("tcp", "::ffff:10.0.0.1")
    assert not a.allows("tcp", "192.168.1.6") and not a.allows("tcp", "::1")
    assert a.allows("unix")
    assert not AllowList(["127.0.0.1"]).allows("unix")
    assert AllowList(["any"]).allows("tcp", "8.8.8.8")
    with pytest.raises(InvalidArgument):
        AllowList(["nonsense"])


def test_nbd_section_defaults_and_errors(run_dir):
    sec = config.from_text("").section(NBD)
    assert [str(a) for a in sec.listen] == ["127.0.0.1:10809", f"unix:{run_dir}/nbd.sock"]
    assert sec.allow.allows("tcp", "127.0.0.1") and not sec.allow.allows("tcp", "10.0.0.1")
    sec = config.from_text("[nbd]\nmemory = a:1G, b:512K\n").section(NBD)
    assert sec.memory == {"a": 1 << 30, "b": 512 << 10}
    for bad in ("listen = 1.2.3.4:x", "allow = ???", "memory = ../x:1G", "lisen = x"):
        with pytest.raises(ConfigError):
            config.from_text(f"[nbd]\n{bad}\n").section(NBD)


# -- backends --------------------------------------------------------------------------

def backend_contract(b):
    """What every writable backend must do (the server relies on it)."""
    size = b.size()
    buf = bytearray(8192)
    b.pwrite(b"x" * 5000, 1000)
    b.pread(memoryview(buf), 0)
    assert buf[:1000] == bytes(1000) and buf[1000:6000] == b"x" * 5000
    b.zero(2000, 100)
    b.pread(memoryview(buf), 0)
    assert buf[2000:2100] == bytes(100) and buf[2100:6000] == b"x" * 3900
    b.zero(0, size, may_trim=False)
    b.pread(memoryview(buf), size - 8192)
    assert buf == bytes(8192)
    b.flush()
    ext = b.extents(0, size)
    assert sum(n for n, _ in ext) >= size and all(n > 0 for n, _ in ext)


def test_memory_backend():
    b = MemoryBackend(4 * MiB)
    backend_contract(b)
    assert b.extents(0, 4 * MiB) == [(4 * MiB, 0)]         # NO_HOLE zeroing allocates
    b.trim(0, 4 * MiB)
    b.pwrite(b"y", 3 * PAGE + 7)
    assert b.extents(0, 4 * MiB)[:3] == [
        (3 * PAGE, proto.STATE_HOLE | proto.STATE_ZERO), (PAGE, 0),
        (4 * MiB - 4 * PAGE, proto.STATE_HOLE | proto.STATE_ZERO)]
    b.zero(0, 4 * MiB)
    assert b.extents(0, 4 * MiB) == [(4 * MiB, proto.STATE_HOLE | proto.STATE_ZERO)]
    b.close()


def test_file_backend(tmp_path):
    p = tmp_path / "f.raw"
    with open(p, "wb") as f:
        f.truncate(4 * MiB)
    b = FileBackend(p)
    backend_contract(b)
    b.pwrite(b"d" * 65536, MiB)
    ext = b.extents(0, 4 * MiB)
    assert (65536, 0) in ext and ext[0][1] == proto.STATE_HOLE | proto.STATE_ZERO
    b.trim(MiB, 65536)
    buf = bytearray(10)
    b.pread(memoryview(buf), MiB)
    assert buf == bytes(10)
    b.close()
    ro = FileBackend(p, read_only=True)
    assert ro.read_only and transmission_flags(ro, False) & proto.TF_READ_ONLY
    with pytest.raises(OSError):
        ro.pwrite(b"x", 0)
    ro.close()
    with pytest.raises(NotFound):
        FileBackend(tmp_path / "missing")


def test_default_zero_writes_and_is_never_fast():
    class Tiny(Backend):
        def __init__(self):
            self.data = bytearray(b"z" * 3000)

        def size(self):
            return len(self.data)

        def pread(self, buf, offset):
            buf[:] = self.data[offset:offset + len(buf)]

        def pwrite(self, buf, offset):
            self.data[offset:offset + len(buf)] = buf

    t = Tiny()
    with pytest.raises(Unsupported):
        t.zero(0, 10, fast=True)
    assert t.data == b"z" * 3000
    t.zero(10, 2000)
    assert t.data[10:2010] == bytes(2000) and t.data[2010:] == b"z" * 990
    f = transmission_flags(t, True)
    assert f & proto.TF_SEND_WRITE_ZEROES and f & proto.TF_SEND_DF
    assert not f & proto.TF_CAN_MULTI_CONN and not f & proto.TF_SEND_TRIM


def test_read_only_view():
    b = ReadOnlyView(MemoryBackend(MiB))
    assert b.read_only and b.can_multi_conn()
    for op in (lambda: b.pwrite(b"x", 0), lambda: b.trim(0, 1), lambda: b.zero(0, 1)):
        with pytest.raises(ReadOnly):
            op()


# -- registry ------------------------------------------------------------------------

def test_registry_shares_and_refcounts(tmp_path):
    (tmp_path / "vol").write_bytes(bytes(MiB))
    (tmp_path / "vol@s1").write_bytes(bytes(MiB))
    reg = ExportRegistry([MemoryProvider({"ram": MiB}), FileProvider(tmp_path)])
    a = reg.acquire("vol", "c1")
    b = reg.acquire("vol", "c2")
    assert a is b and a.refs == 2 and not a.read_only
    assert reg.status()[0]["connections"] == 2
    reg.release(a, "c1")
    reg.release(b, "c2")
    assert reg.status() == []
    s = reg.acquire("vol@s1")
    assert s.read_only
    reg.release(s)
    # RAM disks keep their data across connections
    r = reg.acquire("ram")
    r.backend.pwrite(b"keep", 0)
    reg.release(r)
    r = reg.acquire("ram")
    buf = bytearray(4)
    r.backend.pread(memoryview(buf), 0)
    assert buf == b"keep"
    reg.release(r)
    for bad in ("", "../vol", "vol/x", "a@b@c", "x" * 100):
        with pytest.raises(InvalidArgument):
            reg.acquire(bad)
    with pytest.raises(NotFound):
        reg.acquire("nosuch")
    with pytest.raises(NotFound):
        reg.acquire("ram@snap")
    assert set(reg.names()) == {"ram", "vol", "vol@s1"}


def test_wire_errno():
    assert proto.wire_errno(errno.EROFS) == proto.EPERM
    assert proto.wire_errno(errno.EDQUOT) == proto.ENOSPC
    assert proto.wire_errno(errno.ESTALE) == proto.EIO


# -- kernel nbd netlink encoding (the part testable without the nbd module) --------------

def test_netlink_connect_message():
    attrs = netlink.connect_attrs(None, 10 * MiB, 0x1234, [7], "abc")
    msg = netlink.genl_msg(33, netlink.NBD_CMD_CONNECT, attrs, seq=5)
    length, family, flags, seq, _ = struct.unpack_from("=IHHII", msg)
    assert (length, family, seq) == (len(msg), 33, 5)
    assert flags == netlink.NLM_F_REQUEST | netlink.NLM_F_ACK
    assert msg[16] == netlink.NBD_CMD_CONNECT
    parsed = netlink.parse_attrs(msg[20:])
    assert struct.unpack("=Q", parsed[netlink.NBD_ATTR_SIZE_BYTES])[0] == 10 * MiB
    assert struct.unpack("=Q", parsed[netlink.NBD_ATTR_SERVER_FLAGS])[0] == 0x1234
    assert parsed[netlink.NBD_ATTR_BACKEND_IDENTIFIER] == b"abc\0"
    item = netlink.parse_attrs(parsed[netlink.NBD_ATTR_SOCKETS])[netlink.NBD_SOCK_ITEM]
    assert struct.unpack("=I", netlink.parse_attrs(item)[netlink.NBD_SOCK_FD])[0] == 7
    assert len(msg) % 4 == 0
    with_index = netlink.connect_attrs(3, MiB, 0, [1], "x")
    assert netlink.parse_attrs(b"".join(with_index))[netlink.NBD_ATTR_INDEX] == b"\3\0\0\0"


def test_netlink_unavailable_here_is_reported():
    ok, why = netlink.NetlinkNbdConnector.available()
    assert ok == os.path.isdir("/sys/module/nbd")
    assert ok or "nbd" in why


def test_set_sndbuf_forces_past_wmem_max_as_root():
    """nbdd's unix-socket replies need a send buffer past a stock kernel's
    net.core.wmem_max (208 KiB): as root SO_SNDBUFFORCE gets it whatever the sysctl."""
    import socket

    from archipelago.nbd.wire import set_sndbuf
    with open("/proc/sys/net/core/wmem_max") as f:
        wmem_max = int(f.read())
    want = 2 * wmem_max                                       # past the sysctl's cap
    a, b = socket.socketpair()
    with a, b:
        set_sndbuf(a, want)
        got = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)   # the kernel doubles it
        assert got >= (2 * want if os.geteuid() == 0 else 2 * wmem_max)
