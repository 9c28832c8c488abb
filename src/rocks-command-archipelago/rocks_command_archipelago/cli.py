"""`rocks VERB OBJECT... ARGS [key=value...]`: the Rocks commands of this roll on a
machine without Rocks, e.g.

    rocks add host storagemap nas-0-0 pool vol1 compute-0-0 10G
    rocks list host storagemap nas-0-0 output-format=json

Every failure prints one line on stderr ("error - ...") and exits non-zero.
"""
import importlib
import sys

import click

from archipelago import log as log_mod
from archipelago.errors import ArchipelagoError

from . import commands
from .client import Client


def _help():
    lines = ["usage: rocks [-c CONFIG] COMMAND ARGS [key=value...]", "", "commands:"]
    for _words, path in sorted(commands.COMMANDS.items()):
        doc = (importlib.import_module(f"{commands.__name__}.{path}").__doc__ or "").strip()
        lines.append("  " + doc.splitlines()[0].removeprefix("rocks "))
    lines.append("\ncommon parameters: output-format=table|json timeout=SECONDS")
    return "\n".join(lines)


@click.command(context_settings={"ignore_unknown_options": True,
                                 "help_option_names": ["--help"]}, add_help_option=False)
@click.option("-c", "--config", "conf", default=None, help="configuration file")
@click.argument("words", nargs=-1, type=click.UNPROCESSED)
def cli(conf, words):
    log_mod.setup()
    if not words or words[0] in ("help", "--help", "-h"):
        click.echo(_help())
        return
    key, cls, argv = commands.find(list(words))
    if cls is None:
        click.echo(f"error - unknown command {' '.join(words[:3])!r}; `rocks help` lists "
                   "them", err=True)
        sys.exit(2)
    if argv[:1] == ["help"]:
        click.echo((sys.modules[cls.__module__].__doc__ or "").strip())
        return
    client = None
    try:
        client = Client(conf)
        out = cls(client, key).execute(argv)
    except ArchipelagoError as e:
        click.echo(f"error - {e}", err=True)
        sys.exit(e.exit_code)
    finally:
        if client is not None:
            client.close()
    if out:
        click.echo(out)


def main():
    cli(prog_name="rocks")
