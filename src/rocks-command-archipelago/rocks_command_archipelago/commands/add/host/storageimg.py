"""rocks add host storageimg NAS POOL IMAGE source=FILE [wait=yes]

Import FILE (a raw or qcow2 disk image; a path on NAS) as IMAGE, a hashed,
read-only image in POOL: identical blocks of all images are stored once and zero
blocks take no space. The import runs on NAS as a job; this command shows its
progress on stderr and waits for it (wait=no returns at once; `rocks list host
storageimg NAS` shows the state). Provision a VM disk from it with
`rocks add host storagemap NAS POOL VOLUME HOST SIZE image=IMAGE` (an O(1) clone)."""
import os
import sys
import time

import click

from archipelago.errors import ArchipelagoError, InvalidArgument, NotFound

from ....command import Command as Base
from ....command import boolean, host, pool, volume
from ....output import Output, size

POLL = 0.5          # seconds between progress polls


def source_path(text):
    if not text or any(c in text for c in "\0\n\r"):
        raise InvalidArgument("source=FILE: a raw or qcow2 image file on the NAS")
    return os.path.abspath(text)


def _progress(r):
    pct = 100 * r["done"] // max(r["size"], 1)
    return f"importing {r['image']}: {r.get('step') or 'storing'} {pct}%"


class Command(Base):
    ARGS = [("nas", host), ("pool", pool), ("image", volume)]
    PARAMS = {"source": (None, source_path), "wait": (True, boolean)}

    def run(self, a, p):
        if not p["source"]:
            raise InvalidArgument("source=FILE is required (a raw or qcow2 image on the NAS)")
        r = self.call(a["nas"], "add_image", p, pool=a["pool"], image=a["image"],
                      source=p["source"])
        shown = None
        while p["wait"] and r["state"] == "importing":
            line = _progress(r)
            if line != shown:
                click.echo(line, err=True)
                shown = line
            time.sleep(POLL)
            found = self.call(a["nas"], "list_images", p, image=a["image"])["images"]
            if not found:
                raise NotFound(f"image {a['image']} disappeared from {a['nas']} while "
                               "importing (removed?)")
            r = found[0]
        if shown is not None and sys.stderr.isatty():
            click.echo(f"imported {a['image']}", err=True)
        if r["state"] == "error":
            raise ArchipelagoError(f"import of {a['image']} failed: {r['error']}")
        return Output(["nas", "image", "pool", "size", "stored", "added", "format", "state"],
                      [[a["nas"], r["image"], r["pool"], size(r["size"]), size(r["stored"]),
                        size(r["added"]), r["format"], r["state"]]])
