"""The bbcp transport (as the original img-storage roll used it): bbcp moves the
bytes over its own parallel TCP streams, in program mode:

    bbcp [bbcp_command options] -N io 'cat FIFO' 'HOST:vlmc receive VOLUME -i - --json'

We write the stream into FIFO. Only offered when bbcp is installed (it is not a
Debian package); DEST is [user@]host.
"""
import contextlib
import errno
import os
import shlex
import shutil
import tempfile
import time

from ...errors import InvalidArgument, Timeout, Unavailable
from ...process import which
from .base import ProcessChannel, Transport, receive_argv


class BbcpChannel(ProcessChannel):
    def __init__(self, argv, fifo, tmpdir, timeout):
        self.tmpdir = tmpdir
        super().__init__(argv, stdin=False)
        deadline = time.monotonic() + timeout
        while True:               # open the FIFO once bbcp's source program reads it
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
            if self.proc.poll() is not None:
                self.wfile = None
                return                # finish() reports bbcp's error
            if time.monotonic() > deadline:
                self.abort()
                raise Timeout(f"bbcp did not start reading within {timeout:.0f}s")
            time.sleep(0.05)
        os.set_blocking(fd, True)
        self.wfile = os.fdopen(fd, "wb")

    def finish(self):
        try:
            return super().finish()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def abort(self):
        with contextlib.suppress(OSError):
            if self.wfile is not None:
                self.wfile.close()
        super().abort()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class BbcpTransport(Transport):
    name = "bbcp"

    def available(self, settings):
        return which(settings.bbcp_command[0]) is not None

    def connect(self, dest, volume, settings, force=False, limit=None):
        if not self.available(settings):
            raise Unavailable(f"{settings.bbcp_command[0]}: not installed; use the tcp or "
                              "ssh transport")
        if not dest or dest.startswith("-") or any(c.isspace() or c == ":" for c in dest):
            raise InvalidArgument(f"bad bbcp destination {dest!r} (expected [user@]host)")
        tmpdir = tempfile.mkdtemp(prefix="archsync-")
        fifo = os.path.join(tmpdir, "stream")
        os.mkfifo(fifo, 0o600)
        remote = shlex.join(receive_argv(settings, volume, force, limit))
        argv = [*settings.bbcp_command, "-N", "io", f"cat {shlex.quote(fifo)}",
                f"{dest}:{remote}"]
        return BbcpChannel(argv, fifo, tmpdir, settings.connect_timeout)
