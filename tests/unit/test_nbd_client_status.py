"""nbd/client.py with structured replies: meta context negotiation, block status,
structured READ replies (data and hole chunks, errors), against our own server."""
import os

import pytest

from archipelago.errors import ArchipelagoError, InvalidArgument
from archipelago.nbd import proto
from archipelago.nbd.client import Client
from archipelago.nbd.testing import serve

MiB = 1 << 20
HOLE = proto.STATE_HOLE | proto.STATE_ZERO


def test_block_status_and_structured_reads():
    with serve(memory={"ram": 8 * MiB}) as srv, Client.connect_uri(srv.uri("ram")) as n:
        n.go(meta=[proto.META_BASE_ALLOCATION, "x-unknown:thing"])
        assert n.structured and list(n.meta) == [proto.META_BASE_ALLOCATION]
        assert n.block_status(0, 8 * MiB) == [(8 * MiB, HOLE)]
        data = os.urandom(70000)
        n.write(MiB + 3, data)
        ext = n.block_status(0, 8 * MiB)
        assert sum(length for length, _ in ext) == 8 * MiB
        pos = 0
        for length, flags in ext:          # allocation covers the write, holes elsewhere
            if not flags & proto.STATE_HOLE:
                assert pos <= MiB + 3 + 70000 and MiB <= pos + length
            pos += length
        assert n.read(MiB + 3, len(data)) == data
        assert n.read(0, MiB) == bytes(MiB)
        assert n.read(MiB, 70003)[3:] == data
        with pytest.raises(ArchipelagoError):
            n.read(7 * MiB, 2 * MiB)                    # an error reply, then going on
        assert n.read(MiB + 3, 10) == data[:10]
        assert n.request(proto.CMD_WRITE, 8 * MiB - 2, 4, data=b"abcd") == proto.ENOSPC
        n.flush()


def test_without_meta_block_status_is_refused_and_reads_are_simple():
    with serve(memory={"ram": MiB}) as srv, Client.connect_uri(srv.uri("ram")) as n:
        n.go()
        assert not n.structured and not n.meta
        with pytest.raises(InvalidArgument):
            n.block_status(0, MiB)
        n.write(0, b"abc")
        assert n.read(0, 3) == b"abc"
