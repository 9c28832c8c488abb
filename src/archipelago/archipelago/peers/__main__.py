"""Run one role in the foreground: `python -m archipelago.peers ROLE [-c CONF]`.

`archipelago start` runs this per role with output going to LOG_DIR/ROLE.log.
The pid file RUN_DIR/ROLE.pid is written once the role's ports are bound (the
supervisor's readiness signal) and removed on a clean exit (SIGTERM/SIGINT:
stop accepting, finish the requests in flight, unbind).

ROLE may also be the process of nbdd (`PC.processes`): the vlmcd role with
`[nbd] datapath = colocated` (nbdd binds vlmcd's ports and serves NBD), or the
`nbdd` process of a `peers` node. It writes RUN_DIR/ROLE.pid when both its
ports and its NBD listeners are bound, as any role.
"""
import argparse
import logging
import os
import sys

from .. import config as C
from .. import log as _log
from ..errors import ArchipelagoError
from . import config as PC

log = logging.getLogger("archipelago.peers")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m archipelago.peers",
                                description="Run one Archipelago peer role in the foreground.")
    p.add_argument("role", help="a role section named in [PEERS] ROLES")
    p.add_argument("-c", "--conf", help="configuration file")
    p.add_argument("--uid", type=int, help="drop to this uid first (set by `archipelago`)")
    p.add_argument("--gid", type=int, help="and this gid")
    return p.parse_args(argv)


def drop_privileges(uid, gid):
    if gid is not None:
        os.setgroups([])
        os.setgid(gid)
    if uid is not None:
        os.setuid(uid)


class PidFile:
    """RUN_DIR/ROLE.pid, written atomically when ready, removed if still ours."""

    def __init__(self, path):
        self.path = path

    def write(self):
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, self.path)

    def remove(self):
        try:
            if self.path.read_text().split()[0] == str(os.getpid()):
                self.path.unlink()
        except (OSError, IndexError):
            pass


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    drop_privileges(args.uid, args.gid)
    try:
        cfg = C.load(args.conf)
        xseg, roles = PC.check(cfg)
        role = next((r for r in PC.processes(cfg, roles) if r.name == args.role), None)
        if role is None:
            raise ArchipelagoError(f"role {args.role!r} is not in [PEERS] ROLES of "
                                   f"{cfg.source}")
        node = cfg.section(C.NODE)
        os.umask(cfg.section(PC.ARCHIPELAGO).umask)
        _log.setup(role.opts.log_level)
    except ArchipelagoError as e:
        print(f"{args.role}: error: {e}", file=sys.stderr)
        return e.exit_code
    pidfile = PidFile(node.run_dir / f"{role.name}.pid")
    try:
        if PC.NBDD in (role.host, role.type):
            from ..nbd import daemon
            daemon.serve(*daemon.build(args.conf), ready=pidfile.write)
        else:
            from .runtime import run_role
            run_role(cfg, xseg, role, node.name, ready=pidfile.write)
    except ArchipelagoError as e:
        log.error("%s (%s) failed: %s", role.name, role.type, e)
        return e.exit_code
    except OSError as e:            # nbdd: a listen address in use, ...
        log.error("%s (%s) failed: %s", role.name, role.type, e)
        return 1
    finally:
        pidfile.remove()
    log.info("%s stopped", role.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
