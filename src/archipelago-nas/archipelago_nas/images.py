"""Images on the NAS: the import job, image rows as dicts, clones for map image=.

An import runs as a job in its own thread (`Importer`), so the NAS keeps serving
while it reads a large file: the `add_image` handler records the image as
`importing` and answers at once; the job converts (qcow2), stores the blocks in the
pool's volume engine and moves the row to `ready` (or `error` with the reason),
updating `done` and logging progress every few seconds. `rocks add host storageimg`
polls `list_images` and shows that progress. A NAS restarted during an import marks
it `error` (recover); importing it again restarts it.
"""
import logging
import shutil
import threading
import time

from sqlalchemy import select

from archipelago.errors import Busy, InvalidArgument, NotFound
from archipelago.units import format_size

from . import imagefile
from .models import Image

log = logging.getLogger(__name__)

IMPORTING, READY, ERROR = "importing", "ready", "error"
PROGRESS_EVERY = 2.0          # seconds between progress updates (database, log)
IMPORT_TMP = "image-import"  # state_dir subdir for qcow2 -> raw conversions


def image_dict(row):
    return {"image": row.name, "pool": row.pool, "size": row.size, "format": row.format,
            "source": row.source, "state": row.state, "step": row.step, "done": row.done,
            "stored": row.stored, "added": row.added, "error": row.error,
            "created": row.created, "finished": row.finished}


def image_row(session, pool, name):
    row = session.get(Image, name)
    if row is None or (pool is not None and row.pool != pool):
        where = f" in pool {pool}" if pool else ""
        raise NotFound(f"image {name} is not known{where} on this NAS (rocks list host "
                       "storageimg lists them)")
    return row


def provision(nas, session, pool, name, image, size):
    """map image=: the volume `name` as an O(1) clone of `image` (or the clone made by
    an earlier map). Returns the VolumeService VolumeInfo."""
    row = image_row(session, pool, image)
    if row.state == IMPORTING:
        raise Busy(f"image {image} is still importing ({_percent(row)}); map it when ready")
    if row.state != READY:
        raise InvalidArgument(f"image {image} failed to import ({row.error}); remove it and "
                              "import it again")
    if size < row.size:
        raise InvalidArgument(f"size {format_size(size)} is smaller than image {image} "
                              f"({format_size(row.size)}); give at least {row.size} bytes")
    return nas.volumes.clone_image(pool, image, name, size)


def not_an_image(session, name):
    """map without image= must not hand out a read-only image as a disk."""
    if session.get(Image, name) is not None:
        raise InvalidArgument(f"{name} is an image (read-only); map a clone of it: "
                              f"rocks add host storagemap ... image={name}")


def _percent(row):
    return f"{100 * row.done // max(row.size, 1)}%"


def recover(ctx):
    """At start: imports that were running when the NAS stopped are failed, and their
    temporary raw copies (qcow2 conversions) are deleted."""
    shutil.rmtree(ctx.node.state_dir / IMPORT_TMP, ignore_errors=True)
    for row in ctx.session.scalars(select(Image).where(Image.state == IMPORTING)):
        row.state, row.step, row.finished = ERROR, None, time.time()
        row.error = "interrupted by a NAS restart; import it again"
        log.warning("image %s: import %s", row.name, row.error)


class Importer:
    """Runs imports in threads (inline=True: in the caller, for unit tests)."""

    def __init__(self, node, inline=False):
        self.node, self.inline = node, inline
        self.running = {}                      # image name -> Thread

    def submit(self, pool, name, src):
        if self.inline:
            self._run(pool, name, src)
            return
        t = threading.Thread(target=self._run, args=(pool, name, src), daemon=True,
                             name=f"import-{name}")
        self.running[name] = t
        t.start()

    def busy(self, name):
        t = self.running.get(name)
        return t is not None and t.is_alive()

    def _update(self, name, **values):
        with self.node.db.scope() as s:
            row = s.get(Image, name)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)

    def _run(self, pool, name, src):
        nas, t0 = self.node, time.monotonic()
        last = [t0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                log.info("import %s: %d%% (%s of %s)", name, 100 * done // max(total, 1),
                         format_size(done), format_size(total))
                self._update(name, done=done, step="storing")

        try:
            log.info("import %s into pool %s from %s (%s, %s)", name, pool, src.path,
                     src.format, format_size(src.size))
            if src.format != "raw":
                self._update(name, step="converting")
            with imagefile.raw_file(src, nas.state_dir / IMPORT_TMP) as path:
                self._update(name, step="storing")
                st = nas.volumes.import_image(pool, name, path, src.size, progress=progress)
            self._update(name, state=READY, step=None, done=src.size, size=st["size"],
                         stored=st["stored"], added=st["added"], finished=time.time())
            log.info("import %s done in %.1fs: %s stored, %s new", name,
                     time.monotonic() - t0, format_size(st["stored"]),
                     format_size(st["added"]))
        except Exception as e:            # the job's outcome goes to its row, not a crash
            log.warning("import %s failed: %s", name, e, exc_info=not hasattr(e, "exit_code"))
            self._update(name, state=ERROR, step=None, error=str(e), finished=time.time())
        finally:
            self.running.pop(name, None)
