"""The file/pipe transport: the stream goes to a file or stdout (`vlmc send -o`),
and `vlmc receive -i` reads it back later or at the other end of a pipe."""
import sys

from ...errors import InvalidArgument
from .base import Channel, Transport


class FileChannel(Channel):
    def __init__(self, path):
        self.path = path
        if path in (None, "-"):
            if sys.stdout.isatty():
                raise InvalidArgument("refusing to write a stream to a terminal; use "
                                      "-o FILE or a pipe")
            self.wfile, self.close = sys.stdout.buffer, False
        else:
            try:
                self.wfile, self.close = open(path, "wb"), True
            except OSError as e:
                raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None

    def finish(self):
        self.wfile.flush()
        if self.close:
            self.wfile.close()
        return {"ok": True, "path": self.path or "-", "token": None}

    def abort(self):
        if self.close:
            self.wfile.close()


class FileTransport(Transport):
    name = "file"

    def connect(self, dest, volume, settings, force=False, limit=None):
        return FileChannel(dest)


def open_input(path):
    """A binary file to read a stream from (- = stdin)."""
    if path in (None, "-"):
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None
