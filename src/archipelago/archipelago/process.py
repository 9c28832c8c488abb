"""The one runner for external commands (losetup, nbdfuse, mkfs, rbd, zfs, ...).

Every external command in the project goes through `run()` (wait for it) or
`spawn()` (a long-running helper such as nbdfuse). Both:

- log the command line at DEBUG, with secrets masked;
- on failure log the command's stdout/stderr at WARNING and raise an
  `archipelago.errors` type: `CommandFailed` (a BackendError carrying rc,
  stdout, stderr), `Unavailable` when the program is not installed, `Timeout`
  when it did not finish in time. Library exceptions never escape.

Secrets: pass `secrets=("s3cret",)`, or put them in argv as `Secret("s3cret")`;
either way they appear as `***` in logs and error messages but the real value
reaches the program.

Tests swap the runner without patching subprocess:

    with process.use(fake_run):          # fake_run(argv, **kw) -> Result
        connector.attach(...)

`fake_run` receives the argv with secrets already unmasked and returns a
`Result`; it may raise like `run()` does.
"""
import contextlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

from .errors import BackendError, Timeout, Unavailable

log = logging.getLogger(__name__)

MASK = "***"


class Secret(str):
    """An argv element that must never be logged."""


class CommandFailed(BackendError):
    """An external command exited non-zero."""

    def __init__(self, message, *, rc=None, stdout="", stderr="", errno=None):
        super().__init__(message, errno=errno)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


@dataclass
class Result:
    """What a finished command left behind (text, decoded as UTF-8 with replacement)."""

    argv: list
    rc: int
    stdout: str = ""
    stderr: str = ""


def mask(text, secrets):
    """`text` with every secret replaced by ***."""
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text


def _secrets(argv, secrets):
    return tuple(secrets) + tuple(a for a in argv if isinstance(a, Secret))


def _display(argv, secrets):
    return mask(" ".join(_quote(str(a)) for a in argv), secrets)


def _quote(arg):
    return arg if arg and all(c.isalnum() or c in "-_./:=@+,%" for c in arg) else repr(arg)


def _real_run(argv, *, input=None, timeout=None, env=None, cwd=None):
    """Run argv to completion; raises OSError / subprocess.TimeoutExpired."""
    proc = subprocess.run([str(a) for a in argv], input=input, capture_output=True,
                          timeout=timeout, env=env, cwd=cwd, check=False)
    return Result(list(argv), proc.returncode,
                  proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"))


_runner = _real_run


@contextlib.contextmanager
def use(runner):
    """Temporarily replace the runner (tests): runner(argv, **kw) -> Result."""
    global _runner
    old, _runner = _runner, runner
    try:
        yield
    finally:
        _runner = old


def run(argv, *, check=True, input=None, timeout=60, env=None, cwd=None, secrets=()):
    """Run a command and wait for it; returns a Result.

    argv: list of str (or Secret); input: bytes for stdin; timeout: seconds
    (None = wait forever); check: raise CommandFailed on a non-zero exit.
    """
    secrets = _secrets(argv, secrets)
    shown = _display(argv, secrets)
    log.debug("run: %s", shown)
    if isinstance(input, str):
        input = input.encode()
    try:
        res = _runner(list(argv), input=input, timeout=timeout, env=env, cwd=cwd)
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]}: command not found (is it installed?)") from None
    except subprocess.TimeoutExpired:
        raise Timeout(f"{shown}: no answer after {timeout}s") from None
    except OSError as e:
        raise BackendError(f"{shown}: {e.strerror}", errno=e.errno) from None
    if res.rc != 0:
        out, err = mask(res.stdout, secrets).strip(), mask(res.stderr, secrets).strip()
        if check:
            log.warning("command failed (exit %s): %s\nstdout: %s\nstderr: %s",
                        res.rc, shown, out, err)
            last = (err or out).splitlines()[-1:] or [""]
            raise CommandFailed(f"{shown}: exit {res.rc}: {last[0]}", rc=res.rc,
                                stdout=res.stdout, stderr=res.stderr)
        log.debug("exit %s: %s: %s", res.rc, shown, err or out)
    return res


def spawn(argv, *, env=None, cwd=None, secrets=(), stdout=None, stderr=None,
          pass_fds=()):
    """Start a long-running helper in its own session; returns the Popen.

    The caller owns the process (wait/terminate it). Output goes to the given
    files (default /dev/null) so a chatty helper can never block on a pipe.
    """
    secrets = _secrets(argv, secrets)
    shown = _display(argv, secrets)
    log.debug("spawn: %s", shown)
    devnull = subprocess.DEVNULL
    try:
        return subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd,
                                stdin=devnull, stdout=stdout or devnull,
                                stderr=stderr or devnull, start_new_session=True,
                                pass_fds=pass_fds)
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]}: command not found (is it installed?)") from None
    except OSError as e:
        raise BackendError(f"{shown}: {e.strerror}", errno=e.errno) from None


def which(name):
    """Full path of a program, or None (PATH plus /sbin and /usr/sbin).

    With PATH unset (Ganeti runs its ExtStorage scripts in a clean environment)
    the system default path is searched, not only the sbin directories."""
    path = (os.environ.get("PATH") or os.defpath) + ":/usr/sbin:/sbin"
    return shutil.which(name, path=path)
