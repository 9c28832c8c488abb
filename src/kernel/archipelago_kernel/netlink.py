"""Kernel nbd over generic netlink (include/uapi/linux/nbd-netlink.h).

*** NOT EXERCISED ON THE DEVELOPMENT HOSTS: their kernels have no nbd module. ***
Only the message encoding is unit-tested; keep this module small and simple.

attach: connect to nbdd, do the handshake in userspace (NBD_OPT_GO), then hand
the socket to the kernel with NBD_CMD_CONNECT, tagged with the mapping id as
NBD_ATTR_BACKEND_IDENTIFIER and a dead-connection timeout. The kernel keeps
the device and queues I/O while the socket is dead; `reconnect()` (after an
nbdd restart) hands a fresh socket over with NBD_CMD_RECONFIGURE, and the
kernel refuses it if the identifier does not match, so a device can never be
re-attached to the wrong volume (rbd-nbd's --cookie).
"""
import os
import socket
import struct

from archipelago.errors import BackendError, Unavailable
from archipelago.nbd.client import Client

from .connector import Connector

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLA_F_NESTED = 1 << 15

NBD_CMD_CONNECT = 1
NBD_CMD_DISCONNECT = 2
NBD_CMD_RECONFIGURE = 3
NBD_ATTR_INDEX = 1
NBD_ATTR_SIZE_BYTES = 2
NBD_ATTR_BLOCK_SIZE_BYTES = 3
NBD_ATTR_TIMEOUT = 4
NBD_ATTR_SERVER_FLAGS = 5
NBD_ATTR_CLIENT_FLAGS = 6
NBD_ATTR_SOCKETS = 7
NBD_ATTR_DEAD_CONN_TIMEOUT = 8
NBD_ATTR_BACKEND_IDENTIFIER = 10
NBD_SOCK_ITEM = 1
NBD_SOCK_FD = 1
NBD_CFLAG_DESTROY_ON_DISCONNECT = 1

DEAD_CONN_TIMEOUT = 120      # seconds the kernel waits for nbdd to come back


def nla(atype, payload):
    """One netlink attribute, padded to 4 bytes."""
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + bytes(-len(raw) % 4)


def nla_u32(atype, v):
    return nla(atype, struct.pack("=I", v))


def nla_u64(atype, v):
    return nla(atype, struct.pack("=Q", v))


def nla_str(atype, s):
    return nla(atype, s.encode() + b"\0")


def genl_msg(family, cmd, attrs, seq=1, version=1):
    body = struct.pack("=BBH", cmd, version, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def parse_attrs(data):
    out, pos = {}, 0
    while pos + 4 <= len(data):
        length, atype = struct.unpack_from("=HH", data, pos)
        if length < 4:
            break
        out[atype & ~NLA_F_NESTED] = data[pos + 4:pos + length]
        pos += (length + 3) & ~3
    return out


def connect_attrs(index, size, server_flags, fds, ident, timeout=0):
    """The attribute list of NBD_CMD_CONNECT / NBD_CMD_RECONFIGURE."""
    socks = b"".join(nla(NBD_SOCK_ITEM | NLA_F_NESTED, nla_u32(NBD_SOCK_FD, fd)) for fd in fds)
    attrs = [nla_u64(NBD_ATTR_SIZE_BYTES, size), nla_u64(NBD_ATTR_BLOCK_SIZE_BYTES, 512),
             nla_u64(NBD_ATTR_SERVER_FLAGS, server_flags),
             nla_u64(NBD_ATTR_CLIENT_FLAGS, NBD_CFLAG_DESTROY_ON_DISCONNECT),
             nla_u64(NBD_ATTR_DEAD_CONN_TIMEOUT, DEAD_CONN_TIMEOUT),
             nla(NBD_ATTR_SOCKETS | NLA_F_NESTED, socks),
             nla_str(NBD_ATTR_BACKEND_IDENTIFIER, ident)]
    if timeout:
        attrs.append(nla_u64(NBD_ATTR_TIMEOUT, timeout))
    if index is not None:
        attrs.insert(0, nla_u32(NBD_ATTR_INDEX, index))
    return attrs


class _Genl:
    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        except OSError as e:
            raise Unavailable(f"generic netlink: {e.strerror}") from None
        self.seq = 0

    def call(self, family, cmd, attrs):
        self.seq += 1
        self.sock.send(genl_msg(family, cmd, attrs, self.seq))
        result = {}
        while True:
            data = self.sock.recv(65536)
            pos = 0
            while pos + 16 <= len(data):
                length, mtype, _, _, _ = struct.unpack_from("=IHHII", data, pos)
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, pos + 16)
                    if err:
                        raise BackendError(f"nbd netlink: {os.strerror(-err)}", errno=-err)
                    return result
                result.update(parse_attrs(data[pos + 20:pos + length]))
                pos += (length + 3) & ~3

    def family(self, name):
        attrs = self.call(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, [nla_str(CTRL_ATTR_FAMILY_NAME, name)])
        if CTRL_ATTR_FAMILY_ID not in attrs:
            raise Unavailable(f"no generic netlink family {name!r}")
        return struct.unpack("=H", attrs[CTRL_ATTR_FAMILY_ID][:2])[0]

    def close(self):
        self.sock.close()


class NetlinkNbdConnector(Connector):
    name = "nbd"

    @classmethod
    def available(cls):
        if not os.path.isdir("/sys/module/nbd"):
            return False, "the nbd kernel module is not loaded (modprobe nbd)"
        return True, ""

    def _handoff(self, cmd, mapping, index):
        client = Client.connect_uri(mapping.uri)
        try:
            size, flags = client.go()
            nl = _Genl()
            try:
                fam = nl.family("nbd")
                attrs = nl.call(fam, cmd, connect_attrs(index, size, flags,
                                                        [client.sock.fileno()], mapping.id))
            finally:
                nl.close()
        finally:
            client.close()               # the kernel holds its own reference
        return attrs

    def attach(self, mapping, work_dir):
        attrs = self._handoff(NBD_CMD_CONNECT, mapping, None)
        (index,) = struct.unpack("=I", attrs[NBD_ATTR_INDEX][:4])
        mapping.device = f"/dev/nbd{index}"
        mapping.extra["index"] = index
        return mapping

    def reconnect(self, mapping):
        """Give the kernel a new socket after an nbdd restart (same identifier)."""
        self._handoff(NBD_CMD_RECONFIGURE, mapping, mapping.extra["index"])

    def detach(self, mapping, force=False):
        index = mapping.extra.get("index")
        if index is None or not self.alive(mapping):
            return
        nl = _Genl()
        try:
            nl.call(nl.family("nbd"), NBD_CMD_DISCONNECT, [nla_u32(NBD_ATTR_INDEX, index)])
        finally:
            nl.close()

    def alive(self, mapping):
        index = mapping.extra.get("index")
        try:
            with open(f"/sys/block/nbd{index}/backend") as f:
                return f.read().strip() == mapping.id
        except OSError:
            return False
