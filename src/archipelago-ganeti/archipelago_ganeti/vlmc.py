"""The `vlmc` commands the provider needs, run through archipelago.process.

Ganeti gives the scripts no PATH, so vlmc is called by absolute path (the
provider directory's scripts carry it; /usr/bin/vlmc in the RPM).
"""
import json

from archipelago import process
from archipelago.process import CommandFailed

DEFAULT_VLMC = "/usr/bin/vlmc"

# Phrases vlmc uses when a volume is absent (remove is made idempotent with them).
_ABSENT = ("not found", "no such", "does not exist", "doesn't exist", "unknown volume")


def is_absent(err):
    """True if a CommandFailed says the volume does not exist."""
    text = f"{err.stderr}\n{err.stdout}\n{err}".lower()
    return any(p in text for p in _ABSENT)


class Vlmc:
    """Thin wrapper: one method per vlmc subcommand used by the actions."""

    def __init__(self, path=DEFAULT_VLMC, run=None):
        self.path = path
        self._run = run or process.run

    def run(self, *args, check=True):
        return self._run([self.path, *args], check=check)

    def create(self, name, size_mib, origin=None, object_size=None):
        args = ["create", name, "--size", f"{size_mib}M"]
        if origin:
            args += ["--snap", origin]
        if object_size:
            args += ["--object-size", object_size]
        self.run(*args)

    def remove(self, name):
        self.run("remove", name)

    def resize(self, name, size_mib):
        self.run("resize", name, f"{size_mib}M")

    def snapshot(self, name, snap):
        self.run("snapshot", name, snap)

    def open(self, name):
        self.run("open", name)

    def close(self, name):
        self.run("close", name)

    def info(self, name):
        self.run("info", name)

    def map(self, name):
        """Map the volume; returns the device path vlmc printed."""
        out = self.run("map", name).stdout.strip().splitlines()
        if not out or not out[-1].strip().startswith("/dev/"):
            raise CommandFailed(f"vlmc map {name}: printed no device path", rc=0,
                                stdout="\n".join(out))
        return out[-1].strip()

    def unmap(self, name):
        self.run("unmap", name)

    def mapped_device(self, name):
        """The device `name` is mapped to on this host, or None."""
        text = self.run("showmapped", "--json").stdout.strip()
        return device_of(json.loads(text) if text else [], name)


def device_of(mapped, name):
    """Find `name` in `vlmc showmapped --json` output (a list of records or a dict)."""
    if isinstance(mapped, dict):
        if isinstance(mapped.get("mapped"), list):
            mapped = mapped["mapped"]
        else:
            entry = mapped.get(name)
            if isinstance(entry, dict):
                return entry.get("device") or entry.get("dev")
            return entry or None
    for rec in mapped:
        if not isinstance(rec, dict):
            continue
        vol = rec.get("volume") or rec.get("name") or rec.get("target")
        if vol == name and rec.get("alive", True) is not False:
            return rec.get("device") or rec.get("dev") or rec.get("path")
    return None
