"""The transport interface: how a stream's bytes reach the receiving node.

A sender asks a Transport for a Channel to a destination, writes the stream to
`channel.wfile`, then calls `channel.finish()`, which returns the receiver's
result as a dict: {"ok": True, ...stats} or {"ok": False, "error": MESSAGE,
"token": RESUME_TOKEN or None}. The receiving side depends on the transport: a
TCP server (`tcp.serve`), or `vlmc receive VOLUME -i - --json` run by ssh/bbcp,
or a file read later.
"""
import json
import logging
import shlex
import subprocess
import tempfile

from ...errors import Unavailable
from ...process import which

log = logging.getLogger(__name__)


class Channel:
    wfile = None

    def finish(self):
        raise NotImplementedError

    def abort(self):
        """Give up on the stream (the receiver sees it truncated)."""


class Transport:
    name = ""

    def available(self, settings):
        return True

    def connect(self, dest, volume, settings, force=False, limit=None):
        """A Channel to `dest` that receives into `volume` there."""
        raise NotImplementedError


def receive_argv(settings, volume, force=False, limit=None):
    """The far side's command line for ssh and bbcp."""
    argv = [*settings.remote_vlmc, "receive", volume, "-i", "-", "--json"]
    if force:
        argv.append("--force")
    if limit:
        argv += ["--limit", f"{limit}B"]
    return argv


def parse_result(stdout, stderr, rc):
    """The JSON result a remote `vlmc receive --json` printed, or one made from its
    exit status and stderr."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                res = json.loads(line)
            except ValueError:
                break
            if isinstance(res, dict) and "ok" in res:
                return res
            break
    last = [ln for ln in (stderr or "").splitlines() if ln.strip()][-1:]
    msg = last[0] if last else f"the receiver exited with status {rc}"
    return {"ok": rc == 0, "error": None if rc == 0 else msg, "token": None}


class ProcessChannel(Channel):
    """A channel into a local helper process's stdin (ssh, bbcp). Its output goes to
    temporary files, so a chatty helper never blocks on a full pipe."""

    def __init__(self, argv, stdin=True):
        prog = which(argv[0])
        if prog is None:
            raise Unavailable(f"{argv[0]}: command not found (is it installed?)")
        log.debug("spawn: %s", shlex.join(argv))
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        # process.spawn gives its helpers no stdin; here stdin is the stream.
        self.proc = subprocess.Popen(
            [prog, *argv[1:]], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=self.out, stderr=self.err, start_new_session=True)
        self.wfile = self.proc.stdin

    def finish(self):
        try:
            if self.wfile is not None:
                self.wfile.close()
        except OSError:
            pass
        rc = self.proc.wait()
        return parse_result(self._text(self.out), self._text(self.err), rc)

    @staticmethod
    def _text(f):
        f.seek(0)
        text = f.read().decode(errors="replace")
        f.close()
        return text

    def abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
