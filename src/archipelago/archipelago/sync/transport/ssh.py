"""The ssh transport: `ssh HOST vlmc receive VOLUME -i - --json`, the stream on
its stdin, the result as JSON on its stdout. The ssh command line and the remote
vlmc come from [sync] ssh_command and remote_vlmc; DEST is [user@]host."""
import shlex

from ...errors import InvalidArgument
from .base import ProcessChannel, Transport, receive_argv


class SshTransport(Transport):
    name = "ssh"

    def connect(self, dest, volume, settings, force=False, limit=None):
        if not dest or dest.startswith("-") or any(c.isspace() for c in dest):
            raise InvalidArgument(f"bad ssh destination {dest!r} (expected [user@]host)")
        remote = shlex.join(receive_argv(settings, volume, force, limit))
        return ProcessChannel([*settings.ssh_command, dest, remote])
