"""Entry point shared by every action script: the action is the script's name."""
import os
import sys

from archipelago import log as alog
from archipelago.errors import ArchipelagoError

from . import PROVIDER, env
from .actions import ACTIONS
from .vlmc import DEFAULT_VLMC, Vlmc

# Ganeti cleans the environment (no PATH): "define or source" what you depend on.
# vlmc's helpers (nbdfuse, losetup, modprobe, ...) are found through PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

USAGE = (f"usage: <provider dir>/{{{','.join(ACTIONS)}}}\n"
         f"Ganeti ExtStorage provider '{PROVIDER}': takes no arguments, only Ganeti's\n"
         "environment (VOL_NAME, VOL_SIZE, VOL_NEW_SIZE, VOL_SNAPSHOT_NAME,\n"
         "VOL_OPEN_EXCLUSIVE, EXTP_*); see ganeti-extstorage-interface(7).\n")


def run(action, environ, vlmc, out=sys.stdout, err=sys.stderr):
    """Run one action; returns the exit code (0 ok, 1 failed, 2 usage)."""
    try:
        req = env.parse(action, environ)
        text = ACTIONS[action](req, vlmc)
    except ArchipelagoError as e:
        err.write(f"{PROVIDER} {action}: {e}\n")
        return 1
    out.write(text)
    return 0


def main(argv=None, environ=None, vlmc_path=DEFAULT_VLMC):
    """Script entry: argv[0]'s basename names the action."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    action = os.path.basename(argv[0])
    # Only verify takes arguments (the checks to run; it checks everything anyway).
    if len(argv) > 1 and (action != "verify" or argv[1] in ("-h", "--help")):
        asked = argv[1] in ("-h", "--help")
        (sys.stdout if asked else sys.stderr).write(USAGE)
        return 0 if asked else 2
    if action not in ACTIONS:
        sys.stderr.write(f"{PROVIDER}: unknown action {action!r}\n{USAGE}")
        return 2
    if environ is os.environ:
        os.environ.setdefault("PATH", DEFAULT_PATH)
    alog.setup(level=environ.get("ARCHIPELAGO_LOG_LEVEL", "ERROR"))
    return run(action, environ, Vlmc(vlmc_path))
