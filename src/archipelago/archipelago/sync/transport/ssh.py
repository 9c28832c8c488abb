"""The ssh transport, two ways.

`vlmc send --to HOST -t ssh`: `ssh HOST vlmc receive VOLUME -i - --json`, the
stream on its stdin, the result as JSON on its stdout ([sync] ssh_command and
remote_vlmc; DEST is [user@]host).

The daemons (img_sync) use `tunnel()`: the far side's own TCP receiver (the NAS
receives into its in-process engine, not through `vlmc`) reached through
`ssh -W HOST:PORT HOST`, whose stdin and stdout are one end of a socketpair; the
tcp protocol (HMAC handshake, stream, result line) runs over the other end
unchanged. ssh adds encryption and its own authentication (keys, known hosts,
from ssh_command); the shared secret is still checked.
"""
import logging
import shlex
import socket
import subprocess
import tempfile

from ...errors import ArchipelagoError, InvalidArgument, Unavailable
from ...process import which
from ..config import parse_hostport
from ..config import secret as load_secret
from .base import ProcessChannel, Transport, receive_argv
from .tcp import TcpChannel

log = logging.getLogger(__name__)
REAP_WAIT = 10.0        # seconds ssh may take to exit once the stream is over


def _check_dest(dest):
    if not dest or dest.startswith("-") or any(c.isspace() for c in dest):
        raise InvalidArgument(f"bad ssh destination {dest!r} (expected [user@]host)")


class SshTransport(Transport):
    name = "ssh"

    def connect(self, dest, volume, settings, force=False, limit=None):
        _check_dest(dest)
        remote = shlex.join(receive_argv(settings, volume, force, limit))
        return ProcessChannel([*settings.ssh_command, dest, remote])

    def tunnel(self, dest, volume, settings, via=None):
        """A tcp channel to the receiver at `dest` (HOST:PORT as the ssh server sees
        it), through ssh to `via` (default: HOST)."""
        host, port = parse_hostport(dest, settings.port, "destination")
        via = via or host
        _check_dest(via)
        return TunnelChannel(settings, via, host, port, volume, load_secret(settings))


class TunnelChannel(TcpChannel):
    def __init__(self, settings, via, host, port, volume, secret):
        prog = which(settings.ssh_command[0])
        if prog is None:
            raise Unavailable(f"{settings.ssh_command[0]}: command not found (is "
                              "openssh-client installed?)")
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [prog, *settings.ssh_command[1:], "-W", target, via]
        mine, theirs = socket.socketpair()
        self.err = tempfile.TemporaryFile()
        log.debug("spawn: %s", shlex.join(argv))
        try:
            self.proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=self.err,
                                         start_new_session=True)
        except OSError as e:
            mine.close()
            raise Unavailable(f"cannot run {argv[0]}: {e.strerror}") from None
        finally:
            theirs.close()
        self.where = f"ssh {via} -W {target}"
        try:
            super().__init__(f"{host}:{port}", volume, settings, secret, sock=mine)
        except ArchipelagoError as e:
            self._reap(kill=True)
            raise Unavailable(f"{self.where}: {self._ssh_error() or e}") from None

    def finish(self):
        res = super().finish()
        self._reap()
        if not res.get("ok") and "without a result" in str(res.get("error")):
            why = self._ssh_error()
            if why:
                res["error"] = f"{self.where}: {why}"
        return res

    def abort(self):
        super().abort()
        self._reap(kill=True)

    def _reap(self, kill=False):
        if kill and self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=REAP_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _ssh_error(self):
        self.err.seek(0)
        lines = [ln for ln in self.err.read().decode(errors="replace").splitlines()
                 if ln.strip()]
        return lines[-1] if lines else None
