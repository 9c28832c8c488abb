"""A receive job: where a stream is staged, its checkpoints, its commit.

The target volume does not change until the whole stream has verified. Records
are staged (sink.py) as they arrive: an incremental stream in a staging volume
`VOL.recv-XXXXXXXX` cloned from the target's base snapshot (O(1)) -- or, up to
`spool_max` bytes (default 0: none), in a spool file next to the job state --, a
full stream in a new staging volume. The job's state (the stream header, where
it is staged, the last committed record) is a small JSON file in the node's
state directory,
`STATE/sync/recv-VOL.json`, replaced atomically at every checkpoint; the resume
token is made from it. The commit, once the trailer has verified:

  incremental: VOL adopts the staging clone's head (VolumeEngine.adopt: two
               header writes; with --force that drops what VOL's head changed
               since BASE, and the snapshots after BASE are removed), then
               VOL@TO is taken with the sender's guid. A spool is written into
               VOL instead (with --force after undoing VOL's changes since BASE,
               copied back from VOL@BASE), as is diff(VOL@BASE, stage) where the
               volume engine cannot adopt (an older mapperd);
  full:        rename the staging volume to VOL, snapshot VOL@TO.

Each step can run again after a crash (the state file says "committing"), so a
job ends committed or not at all; the staging volume is then removed.
"""
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import (
    ArchipelagoError,
    BackendError,
    Busy,
    Exists,
    InvalidArgument,
    NotFound,
    Unsupported,
)
from ..names import validate_name
from . import format as F
from . import token as T

log = logging.getLogger(__name__)

COPY_PIECE = 1 << 20
COPY_DEPTH = 4
COPY_GROUP = 1024           # pieces per group commit of their map updates
SPOOL_MAX = 0               # incremental streams up to this size are spooled (0: none)
MARKS = 64                  # checkpoints a resume token may name


class BaseMismatch(ArchipelagoError):
    """The stream does not apply to the target as it is (use --force to roll back)."""


def stage_name(volume, to_guid):
    tag = hashlib.blake2b(f"{volume}\0{to_guid}".encode(), digest_size=6).hexdigest()
    return f"{volume[:64]}.recv-{tag}"


def state_path(state_dir, volume):
    return os.path.join(state_dir, f"recv-{volume}.json")


def spool_path(state_dir, volume):
    return os.path.join(state_dir, f"recv-{volume}.spool")


@contextlib.contextmanager
def locked(state_dir, volume):
    """One receive (or abort) per target volume at a time on this node: an flock on
    STATE/recv-VOL.lock, gone with the process that held it (kill -9 included)."""
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(state_dir, f"recv-{volume}.lock"),
                     os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise BackendError(f"receive state {state_dir}: {e.strerror or e}",
                           errno=e.errno) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another receive into {volume} is running on this node") from None
        yield
    finally:
        os.close(fd)


def load_state(state_dir, volume):
    try:
        with open(state_path(state_dir, volume)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"receive state of {volume} is unreadable: {e}") from None


def token_of(state):
    h = state["header"]
    return T.encode({"volume": h["volume"], "from": h["from"] and h["from"]["guid"],
                     "from_name": h["from"] and h["from"]["name"], "to": h["to"]["guid"],
                     "to_name": h["to"]["name"], "seq": state["seq"],
                     "offset": state["offset"], "counts": state["counts"],
                     "format": h["format"]})


def _snapshots(client, volume):
    """[(name, guid, size)] of `volume`'s snapshots, oldest first."""
    out = []
    for snap in client.info(volume, usage=False).get("snapshots") or []:
        i = client.info(f"{volume}@{snap}", usage=False)
        out.append((snap, i.get("guid"), i["size"]))
    return out


def _exists(client, name):
    try:
        client.info(name, usage=False)
        return True
    except NotFound:
        return False


def _union(a, b):
    out = []
    for off, n in sorted(list(a) + list(b)):
        if out and off <= out[-1][0] + out[-1][1]:
            end = max(out[-1][0] + out[-1][1], off + n)
            out[-1] = (out[-1][0], end - out[-1][0])
        else:
            out.append((off, n))
    return out


def copy_ranges(client, src, dst, ranges):
    """Copy byte ranges from volume/snapshot `src` into volume `dst` (a few in flight).
    Only for the commit (which runs again after a crash): the map updates of every
    COPY_GROUP pieces are one group commit that skips the copy-up of whole chunks."""
    sv, dv = client.volume(src, readonly=True), client.volume(dst)
    pool = ThreadPoolExecutor(COPY_DEPTH)

    def one(off, n):
        buf = bytearray(n)
        sv.readinto(buf, off)
        dv.pwrite(buf, off)

    pieces = [(o, min(COPY_PIECE, off + n - o)) for off, n in ranges
              for o in range(off, off + n, COPY_PIECE)]
    try:
        futs = []
        for i, (off, n) in enumerate(pieces):
            if i % COPY_GROUP == 0 and hasattr(dv, "prepare"):
                dv.prepare(pieces[i:i + COPY_GROUP], whole=True)
            futs.append(pool.submit(one, off, n))
            if len(futs) >= 2 * COPY_DEPTH:
                futs.pop(0).result()
        for f in futs:
            f.result()
        dv.flush()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        sv.close()
        dv.close()


class Job:
    """One receive into `volume`: open() checks the stream against the target and
    prepares the staging volume; checkpoint() and commit() move it on."""

    def __init__(self, client, volume, state_dir, state):
        self.client, self.volume, self.state_dir, self.state = (client, volume,
                                                                 state_dir, state)
        self.times = {}         # seconds per commit step (the receive result reports it)
        # The whole spool written by this process, every record verified on arrival
        # (a fresh sink, not a resume): the commit need not hash it again.
        self.spooled_here = False

    # -- state -----------------------------------------------------------------------
    @property
    def header(self):
        return self.state["header"]

    @property
    def stage(self):
        return self.state["stage"]

    @property
    def full(self):
        return self.header["from"] is None

    def save(self):
        path = state_path(self.state_dir, self.volume)
        tmp = path + ".tmp"
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(self.state, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            raise BackendError(f"receive state {path}: {e.strerror or e}",
                               errno=e.errno) from None

    @property
    def spooled(self):
        return self.state.get("mode") == "spool"

    @property
    def spool(self):
        return spool_path(self.state_dir, self.volume)

    def forget(self):
        for path in (self.spool, state_path(self.state_dir, self.volume)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def checkpoint(self, seq, offset, counts, spool_size=None):
        """Records before `seq` (everything below `offset`) are durable in the stage."""
        self.state.update(seq=seq, offset=offset, counts=counts.to_json())
        if self.spooled:
            if spool_size is not None:
                self.state["spool_size"] = spool_size
            marks = self.state.setdefault("marks", {})
            marks[str(seq)] = self.state.get("spool_size", 0)
            for old in sorted(marks, key=int)[:-MARKS]:
                del marks[old]
        self.save()

    def sink(self):
        """Where the records of this job go (sink.py)."""
        from .sink import SpoolSink, VolumeSink
        if self.spooled:
            size = self.state.get("spool_size", 0)
            self.spooled_here = size == 0
            return SpoolSink(self.spool, size, self.header["format"])
        return VolumeSink(self.client.volume(self.stage), fresh=self.full)

    def token(self):
        return token_of(self.state)

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, client, volume, header, state_dir, force=False, spool_max=None):
        validate_name(volume)
        _check_header(header)
        old = load_state(state_dir, volume)
        if old is not None and old.get("phase") == "committing":
            log.info("finishing the interrupted commit of %s@%s first", volume,
                     old["header"]["to"]["name"])
            cls(client, volume, state_dir, old).commit()
            old = None
        resume = header.get("resume")
        if resume:
            return cls._resume(client, volume, header, state_dir, old)
        if old is not None:
            log.warning("discarding the interrupted receive of %s@%s into %s",
                        old["header"]["volume"], old["header"]["to"]["name"], volume)
            cls(client, volume, state_dir, old).abort()
        base = _check_target(client, volume, header, force)
        limit = SPOOL_MAX if spool_max is None else spool_max
        spool = base is not None and header["total"] <= limit
        job = cls(client, volume, state_dir, {
            "v": 1, "volume": volume, "header": header, "phase": "receiving",
            "stage": stage_name(volume, header["to"]["guid"]), "base": base,
            "force": bool(force), "seq": 1, "offset": 0, "mode": "spool" if spool else
            "volume", "spool_size": 0,
            "counts": F.Counts(version=header["format"]).to_json()})
        job.save()
        if not spool:
            job._make_stage()
        return job

    @classmethod
    def _resume(cls, client, volume, header, state_dir, old):
        r = header["resume"]
        if old is None:
            raise NotFound(f"no interrupted receive into {volume} to resume; send the "
                           "whole stream again")
        oh = old["header"]
        if (oh["to"]["guid"], oh["from"] and oh["from"]["guid"]) != \
                (header["to"]["guid"], header["from"] and header["from"]["guid"]):
            raise InvalidArgument(f"the resumed stream ({header['to']['name']}) is not the "
                                  f"one interrupted into {volume} ({oh['to']['name']})")
        if oh["format"] != header["format"]:
            raise InvalidArgument(f"the interrupted receive into {volume} is a format "
                                  f"{oh['format']} stream, the resumed one format "
                                  f"{header['format']}; resume with the token from `vlmc "
                                  f"receive {volume} --token`, or send the whole stream")
        if int(r["offset"]) > old["offset"] or int(r["seq"]) > old["seq"]:
            raise InvalidArgument(f"the resume token is ahead of what {volume} received "
                                  f"(offset {r['offset']} > {old['offset']}); use the token "
                                  f"from `vlmc receive {volume} --token`")
        job = cls(client, volume, state_dir, old)
        if job.spooled:
            size = old.get("marks", {}).get(str(int(r["seq"])))
            if size is None or not os.path.exists(job.spool) or \
                    os.path.getsize(job.spool) < size:
                raise InvalidArgument(f"the resume token names a point {volume} no longer "
                                      f"has; use the token from `vlmc receive {volume} "
                                      "--token`")
            old["spool_size"] = size
        elif not _exists(client, old["stage"]):
            raise NotFound(f"the staging volume {old['stage']} is gone; send the whole "
                           "stream again")
        # An older token is fine: what follows it is sent again and overwrites the
        # same bytes; the chain and counts continue from the token's.
        old.update(seq=int(r["seq"]), offset=int(r["offset"]), counts=r["counts"])
        job.save()
        return job

    def _make_stage(self):
        c, h = self.client, self.header
        if _exists(c, self.stage):
            c.remove(self.stage)
        if self.full:
            c.create(self.stage, h["volume_size"], object_size=h["object_size"])
            return
        base = f"{self.volume}@{self.state['base']['name']}"
        bsize = self.state["base"]["size"]
        c.clone(base, self.stage, max(bsize, h["volume_size"]))
        if h["volume_size"] < bsize:
            c.resize(self.stage, h["volume_size"])

    def _adopt(self):
        """Make the staging clone's head VOL's (VolumeEngine.adopt: O(1), whatever the
        head of VOL held is dropped); False where the volume engine cannot (an older
        mapperd): the commit copies the changed ranges instead."""
        adopt = getattr(self.client, "adopt", None)
        if adopt is None:
            return False
        t0 = time.monotonic()
        try:
            adopt(self.volume, self.stage)
        except Unsupported as e:
            log.info("%s: %s; copying the staged ranges instead", self.volume, e)
            return False
        self.times["adopt"] = time.monotonic() - t0
        return True

    # -- ending -----------------------------------------------------------------------
    def abort(self):
        """Drop the staging volume and the state: the target never changed."""
        if not self.spooled:
            with contextlib.suppress(NotFound):
                self.client.remove(self.stage)
        self.forget()

    def commit(self):
        self.state["phase"] = "committing"
        self.save()
        c, h, vol = self.client, self.header, self.volume
        to = h["to"]
        if any(g == to["guid"] for _, g, _ in _existing_snapshots(c, vol)):
            log.info("%s@%s is already committed", vol, to["name"])
        elif self.full:
            if _exists(c, self.stage):
                c.rename(self.stage, vol)
            c.snapshot(vol, to["name"], guid=to["guid"])
        else:
            self._commit_incremental()
        if not self.spooled:
            with contextlib.suppress(NotFound):
                c.remove(self.stage)
        self.forget()
        log.info("received %s@%s into %s@%s", h["volume"], to["name"], vol, to["name"])

    def _commit_incremental(self):
        t0 = time.monotonic()
        c, h, vol = self.client, self.header, self.volume
        base = self.state["base"]
        bspec = f"{vol}@{base['name']}"
        snaps = _snapshots(c, vol)
        names = [s for s, _, _ in snaps]
        if base["name"] not in names:
            raise BaseMismatch(f"{bspec} was removed during the receive")
        newer = names[names.index(base["name"]) + 1:]
        head = c.diff(bspec, vol)
        if not (self.state["force"] or self.state.get("applying")) and (newer or head):
            raise BaseMismatch(f"{vol} changed during the receive (since {bspec}); "
                               "receive again with --force to roll it back")
        self.state["applying"] = True       # from here on VOL's changes are ours
        self.save()
        self.times["check"] = time.monotonic() - t0
        if not self.spooled and not _exists(c, self.stage):
            raise NotFound(f"the staging volume {self.stage} is gone; send the whole "
                           "stream again")
        if not self.spooled and self._adopt():
            pass                            # VOL's head is the stage's now
        else:
            size = h["volume_size"]
            if c.info(vol, usage=False)["size"] != size:
                c.resize(vol, size)

            def clip(ranges):
                return [(o, min(n, size - o)) for o, n in ranges if o < size]

            if self.spooled:
                from .sink import apply_spool
                if head:                    # --force, or a commit run again
                    copy_ranges(c, bspec, vol, clip(head))
                apply_spool(self.spool, self.state["spool_size"], c.volume(vol),
                            self.times, verified=self.spooled_here)
            else:
                copy_ranges(c, self.stage, vol,
                            clip(_union(head, c.diff(bspec, self.stage))))
        for snap in reversed(newer):
            log.warning("--force: removing %s@%s (newer than the stream's base)", vol, snap)
            c.remove(f"{vol}@{snap}")
        t0 = time.monotonic()
        c.snapshot(vol, h["to"]["name"], guid=h["to"]["guid"])
        self.times["snapshot"] = time.monotonic() - t0


def _existing_snapshots(client, volume):
    try:
        return _snapshots(client, volume)
    except NotFound:
        return []


def _check_header(h):
    try:
        validate_name(h["volume"])
        validate_name(h["to"]["name"], "snapshot")
        if h["from"] is not None:
            validate_name(h["from"]["name"], "snapshot")
        int(h["volume_size"]), int(h["object_size"]), int(h["total"])
    except (KeyError, TypeError, ValueError, ArchipelagoError) as e:
        raise F.StreamCorrupt(f"bad stream header: {e}") from None


def _check_target(client, volume, header, force):
    """The base snapshot record {name, guid, size} for an incremental stream into
    `volume` (None for a full one); BaseMismatch/Exists if it does not apply."""
    to, frm = header["to"], header["from"]
    if frm is None:
        if _exists(client, volume):
            raise Exists(f"volume {volume} exists; a full stream creates its volume (send "
                         "incrementally with --from, or remove it first)")
        return None
    try:
        snaps = _snapshots(client, volume)
    except NotFound:
        raise NotFound(f"volume {volume} does not exist; an incremental stream needs it "
                       f"(with snapshot {frm['name']}); send a full stream first") from None
    for name, guid, _ in snaps:
        if guid == to["guid"]:
            raise Exists(f"{volume}@{name} already is {header['volume']}@{to['name']}")
        if name == to["name"]:
            raise Exists(f"snapshot {volume}@{name} exists (and is another snapshot)")
    match = [s for s in snaps if s[1] == frm["guid"]]
    if not match:
        newest = f"{volume}@{snaps[-1][0]}" if snaps else f"{volume} (no snapshots)"
        raise BaseMismatch(f"the stream's base {header['volume']}@{frm['name']} is not a "
                           f"snapshot of {volume}; its newest is {newest}")
    name, guid, size = match[0]
    if snaps[-1][1] != guid and not force:
        raise BaseMismatch(f"the stream's base {volume}@{name} is not the newest snapshot "
                           f"of {volume} ({snaps[-1][0]}); --force rolls {volume} back")
    if not force and client.diff(f"{volume}@{name}", volume):
        raise BaseMismatch(f"{volume} was modified since {volume}@{name}; --force rolls "
                           "it back")
    return {"name": name, "guid": guid, "size": size}
