"""Transports of sync streams, one module each (the interface is in base.py):

    file  -o FILE|- / -i FILE|-          tcp   direct, authenticated (tcp.serve)
    ssh   ssh HOST vlmc receive ...      bbcp  bbcp -N io (when installed)
"""
from ...errors import InvalidArgument
from .base import Channel, Transport


def get(name):
    """The Transport called `name`."""
    if name == "file":
        from .file import FileTransport
        return FileTransport()
    if name == "tcp":
        from .tcp import TcpTransport
        return TcpTransport()
    if name == "ssh":
        from .ssh import SshTransport
        return SshTransport()
    if name == "bbcp":
        from .bbcp import BbcpTransport
        return BbcpTransport()
    raise InvalidArgument(f"unknown transport {name!r} (file, tcp, ssh, bbcp)")


NAMES = ("file", "tcp", "ssh", "bbcp")

__all__ = ["NAMES", "Channel", "Transport", "get"]
