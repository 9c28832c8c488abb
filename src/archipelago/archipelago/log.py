"""Logging setup and the project's level policy.

Level policy (every module follows it):
  ERROR    something failed that an operator must look at: a request failed for a
           reason other than bad input, a peer died, data may be at risk.
  WARNING  unexpected but handled: a retry, a reconnect, a broken lock, bad input
           from a client (with the client named), a slow operation.
  INFO     one line per state change an operator cares about: peer started or
           stopped, volume created/removed/snapshotted, mapping state transitions.
  DEBUG    per-request detail and every external command with its output.
Never log per-I/O at INFO. Loggers are per module: `logging.getLogger(__name__)`,
with lazy %-arguments.
"""
import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"


def setup(level=None, stream=None, logfile=None):
    """Configure the root logger once for a process (CLI, peer or daemon)."""
    level = level or os.environ.get("ARCHIPELAGO_LOG_LEVEL", "WARNING")
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(
        stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # pika is chatty at INFO about every connection step.
    logging.getLogger("pika").setLevel(max(root.level, logging.WARNING))
