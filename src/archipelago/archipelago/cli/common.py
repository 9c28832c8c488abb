"""What every click command of this package shares: config loading and error exits.

Every failure ends the same way: one line `PROG: error: MESSAGE` on stderr and
the error's exit code (1 = failed, 2 = bad input or usage, as click does for
usage errors), so scripts can rely on `$?` and operators on the message.
"""
import functools
import json
import logging
import sys

import click

from .. import log as _log
from ..errors import ArchipelagoError

log = logging.getLogger(__name__)


def fail(message, code=1):
    prog = click.get_current_context().find_root().info_name or "archipelago"
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn):
    """Turn ArchipelagoError (and a broken pipe on stdout) into a one-line exit."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArchipelagoError as e:
            log.debug("command failed", exc_info=True)
            fail(str(e), e.exit_code)
        except BrokenPipeError:
            sys.exit(1)
        except KeyboardInterrupt:
            fail("interrupted", 130)
    return wrapper


def setup_logging(verbose):
    _log.setup("DEBUG" if verbose > 1 else "INFO" if verbose else None)


def echo_json(obj):
    """Stable JSON for scripts: sorted keys, one document per command."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line too: `PROG: error: MSG`, exit 2."""

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(args, prog_name, **kwargs)
        except _NO_ARGS as e:           # bare `vlmc`: the help, as click shows it
            click.echo(e.format_message(), err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            name = prog_name or self.name or "archipelago"
            hint = f" (try '{name} --help')" if isinstance(e, click.UsageError) else ""
            click.echo(f"{name}: error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo(f"{prog_name or self.name}: error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)
