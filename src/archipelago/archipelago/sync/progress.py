"""A progress bar on a terminal (stderr), nothing otherwise (pipes, daemons, tests)."""
import sys

import click


class Progress:
    def __init__(self, total, label, enabled=None):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled and total:
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                         show_eta=True, show_percent=True)
            self.bar.__enter__()

    def update(self, n):
        if self.bar is not None and n:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
