# Installed as rocks/archipelago_bridge.py and run by the frontend's own Rocks
# python (2.7 on Rocks 7): keep it python 2 and 3 compatible.
# ruff: noqa: UP031
"""Bridge from the Rocks command tree to rocks-command-archipelago (python3).

Rocks loads rocks.commands.<verb>.host.<noun>.Command; ours runs the package's
entry point with the same words, positional args and key=value params, and
passes its output (a table, or JSON with output-format=json) through.
"""
import subprocess

ENTRY = "/usr/bin/rocks"   # install_tree.py writes the real path here


class BridgeError(Exception):
    pass


def call(words, args=(), params=None):
    """Run `ENTRY words args key=value...`; returns stdout text, raises BridgeError."""
    argv = [ENTRY] + list(words) + [str(a) for a in args]
    argv += ["%s=%s" % (k, v) for k, v in sorted((params or {}).items())]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if p.returncode != 0:
        raise BridgeError((err or out).strip() or "%s failed" % " ".join(argv[:4]))
    return out


def make_command(base, words, doc):
    """A rocks Command class (subclass of `base`) that forwards to ENTRY."""

    class Command(base):
        def run(self, params, args):
            try:
                out = call(words, args, params)
            except BridgeError as e:
                self.abort(str(e))
                return
            self.addText(out)

    Command.__doc__ = doc
    return Command
