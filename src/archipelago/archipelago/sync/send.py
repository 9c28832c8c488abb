"""Sending: VOL@SNAP [--from SNAP] as a stream of the changed bytes.

The changed ranges come from the volume engine's diff (sub-object granularity:
a 64 KiB write is a 64 KiB record, not a 4 MiB object). Each range is read from
the snapshot through the node's peers, a few reads in flight, and written as D
records of at most 1 MiB; runs of zeros become Z records (no payload). A full
stream (no --from) covers the whole volume, mostly as Z records on a thin one.
`--resume TOKEN` continues an interrupted stream from the receiver's last
committed offset, with the chain and counts the token carries.

Where the node's data store is a FileStore this process may open
(`Client.direct_store`), the reads skip vlmcd and the blocker peer: the
mappings of the next PREFETCH pieces come from mapperd in one call
(`Volume.map_extents`) and the snapshot's object files are read here, straight
into the record buffers. A snapshot's objects never change (copy-on-write
writes go to new names) and are not collected while the snapshot exists, so
the stream ends by checking that the snapshot still has the identity it
started with (a snapshot removed meanwhile fails the send instead of sending
the zeros of a collected object).
"""
import logging
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import ArchipelagoError, InvalidArgument, NotFound
from ..names import split_snapshot, validate_name
from . import format as F
from . import token as T
from .progress import Progress
from .ratelimit import limiter

log = logging.getLogger(__name__)

PIECE = F.MAX_PAYLOAD       # bytes per read / per D record at most
ZERO_GRAIN = 64 << 10       # zero detection granularity inside a piece
DEPTH = 16                  # reads in flight
HASHERS = 2                 # threads computing format 1's checksums (format.Writer);
                            # format 2's SHA-256 (~40 us per 64 KiB) is cheaper inline
                            # than a hand-off to a thread (sender -25 % here)
PREFETCH = 1024             # reads whose mappings are asked for at once
MAP_WINDOW = 1 << 30        # bytes of map asked for at once (full streams)
_ZERO_GRAIN = bytes(ZERO_GRAIN)


def _is_zero(mv):
    """All zeros? (bytes compare at memcmp speed; comparing memoryviews is ~25x
    slower, a quarter of a second per 100 MiB sent). A non-zero first or last byte
    (most data) answers without the copy."""
    if mv[0] or mv[-1]:
        return False
    b = bytes(mv)
    return b == _ZERO_GRAIN if len(b) == ZERO_GRAIN else not b.strip(b"\0")


def snapshot_identity(client, vol, snap):
    info = client.info(f"{vol}@{snap}", usage=False)
    guid = info.get("guid")
    if not guid:
        raise InvalidArgument(f"{vol}@{snap} has no identity (guid); this node's volume "
                              "engine is too old for sync")
    return {"name": snap, "guid": guid, "size": info["size"],
            "created": info.get("created")}


def _find_by_guid(client, vol, guid):
    for snap in client.info(vol, usage=False).get("snapshots") or []:
        if client.info(f"{vol}@{snap}", usage=False).get("guid") == guid:
            return snap
    raise NotFound(f"volume {vol} has no snapshot with identity {guid} (the token's base)")


def _from_name(vol, from_snap):
    if from_snap is None:
        return None
    if "@" in from_snap:
        fvol, snap = split_snapshot(from_snap)
        if fvol != vol:
            raise InvalidArgument(f"--from {from_snap}: must be a snapshot of {vol}")
        return snap
    return validate_name(from_snap, "snapshot")


class Plan:
    """What a send will carry: the header, the [(offset, length, allocated)] segments
    still to send, the counts a resumed stream continues from."""

    def __init__(self, header, segments, counts):
        self.header, self.segments, self.counts = header, segments, counts

    @property
    def total(self):
        return self.header["total"]


def plan(client, spec, from_snap=None, resume=None, version=None):
    """The Plan for `spec` (VOL@SNAP), incremental from `from_snap`, or resuming `resume`
    (a token); `version`: the stream format (default format.VERSION; a resumed
    stream keeps the token's)."""
    vol, snap = split_snapshot(spec)
    if snap is None:
        raise InvalidArgument(f"send needs a snapshot (VOLUME@SNAP), not {spec}")
    from_name = _from_name(vol, from_snap)
    tok = T.decode(resume) if resume else None
    to = snapshot_identity(client, vol, snap)
    if tok is not None:
        if tok["to"] != to["guid"]:
            raise InvalidArgument(f"the resume token is for {tok['volume']}@{tok['to_name']}"
                                  f" ({tok['to']}), not {spec} ({to['guid']})")
        if from_name is None and tok["from"]:
            from_name = _find_by_guid(client, vol, tok["from"])
    base = snapshot_identity(client, vol, from_name) if from_name else None
    if tok is not None and (base["guid"] if base else None) != tok["from"]:
        raise InvalidArgument("the resume token's base does not match --from")
    info = client.info(spec, usage=False)     # (allocated/unique would walk the map)
    size = info["size"]
    if base is not None:
        segments = [(o, n, True) for o, n in client.diff(f"{vol}@{from_name}", spec)]
    else:
        segments = _allocated(client, spec, size)
    total = sum(n for _, n, _ in segments)
    # A resumed stream keeps its format (a token without one is from version 1).
    if tok is not None:
        tv = int(tok.get("format", 1))
        if version is not None and version != tv:
            raise InvalidArgument(f"the resume token is for a format {tv} stream, not "
                                  f"format {version}")
        version = tv
    version = F.check_version(F.VERSION if version is None else int(version))
    header = {"format": version, "volume": vol, "object_size": info["object_size"],
              "volume_size": size, "from": base, "to": to, "total": total,
              "sender": socket.gethostname(), "created": time.time(), "resume": None}
    counts = None
    if tok is not None:
        start = int(tok["offset"])
        segments = [(max(o, start), o + n - max(o, start), a) for o, n, a in segments
                    if o + n > start]
        counts = F.Counts.from_json(tok["counts"], version)
        header["resume"] = {"seq": int(tok["seq"]), "offset": start,
                            "counts": tok["counts"]}
    return Plan(header, segments, counts)


def _allocated(client, spec, size):
    """[(offset, length, allocated)] covering the volume, from mapperd's map_read
    (unwritten ranges need no reading: they are zeros). One call per MAP_WINDOW."""
    out = []
    for start in range(0, size, MAP_WINDOW):
        n = min(MAP_WINDOW, size - start)
        try:
            if hasattr(client, "map_read"):          # sync.local.EngineClient
                r = client.map_read(spec, start, n)
            else:                                    # a node's mapperd, through vlmcd
                r = client._call("map_read", spec, offset=start, length=n)
        except ArchipelagoError:
            return [(0, size, True)]          # an older mapperd: read everything
        pos = start
        for obj, _ooff, length in r["extents"]:
            alloc = obj is not None
            if out and out[-1][2] == alloc and out[-1][0] + out[-1][1] == pos:
                out[-1] = (out[-1][0], out[-1][1] + length, alloc)
            else:
                out.append((pos, length, alloc))
            pos += length
    return out


def _pieces(segments):
    """(offset, length, read?) pieces of at most PIECE bytes (holes whole)."""
    for off, n, alloc in segments:
        if not alloc:
            yield off, n, False
            continue
        end = off + n
        while off < end:
            k = min(PIECE - off % PIECE, end - off)
            yield off, k, True
            off += k


def _zero_run(w, off, n, pending):
    if pending and pending[0] + pending[1] == off:
        pending[1] += n
        return pending
    if pending:
        w.zero(*pending)
    return [off, n]


def _emit(w, off, buf, pending):
    """Write `buf` (volume bytes at `off`) as D and Z records; `pending` is a Z run
    [offset, length] not yet written (merged with adjacent zeros). Returns it."""
    n = len(buf)
    pos = 0
    while pos < n:
        k = min(ZERO_GRAIN - (off + pos) % ZERO_GRAIN, n - pos)
        is_zero = _is_zero(buf[pos:pos + k])
        run = pos + k
        while run < n:
            k2 = min(ZERO_GRAIN, n - run)
            if _is_zero(buf[run:run + k2]) != is_zero:
                break
            run += k2
        at = off + pos
        if is_zero:
            pending = _zero_run(w, at, run - pos, pending)
        else:
            if pending:
                w.zero(*pending)
                pending = None
            w.data(at, buf[pos:run])
        pos = run
    return pending


def _prefetch(vol, pieces):
    """One MAPR for the next pieces' reads (Volume.prefetch; only an optimisation:
    without it each read maps its own range)."""
    prefetch = getattr(vol, "prefetch", None)
    if prefetch is None:
        return
    try:
        prefetch([(off, n) for off, n, alloc in pieces if alloc])
    except ArchipelagoError as e:
        log.debug("map prefetch failed (%s); reads map their own ranges", e)


class _Direct:
    """Reads of a snapshot's objects in this process (see the module docstring)."""

    def __init__(self, vol, store):
        self.vol, self.store = vol, store
        self.extents = {}
        self.cached = getattr(store, "readinto_cached", None)

    def map(self, pieces):
        """The mappings of the reads among `pieces`, one mapperd call."""
        ranges = [(off, n) for off, n, alloc in pieces if alloc]
        self.extents.update(zip(ranges, self.vol.map_extents(ranges), strict=True))

    def read_cached(self, buf, off):
        """Read `buf` at `off` here and now if every byte of it is in the page cache
        (the usual case for recent writes): true if done, else the caller hands the
        read to its pool (readinto)."""
        if self.cached is None:
            return False
        key = (off, len(buf))
        if not _fill(buf, self.extents[key], self.cached):
            return False
        del self.extents[key]
        return True

    def readinto(self, buf, off):
        _fill(buf, self.extents.pop((off, len(buf))), self._read)

    def _read(self, obj, ooff, part):
        self.store.readinto(obj, ooff, part)
        return True


def _fill(buf, extents, read):
    """Fill `buf` from its mapped `extents` with read(object, offset, part) -> done?
    (zeros where unmapped); false as soon as a read says it could not."""
    pos = 0
    for obj, ooff, n in extents:
        part = buf[pos:pos + n]
        if obj is None:
            part[:] = _ZEROS[:n] if n <= len(_ZEROS) else bytes(n)
        elif not read(obj, ooff, part):
            return False
        pos += n
    if pos != len(buf):
        raise ArchipelagoError(f"mapperd mapped {pos} bytes of a {len(buf)}-byte read")
    return True


_ZEROS = bytes(PIECE)


class _Done:
    """A read already done (in place of its future)."""

    @staticmethod
    def result():
        return None


_DONE = _Done()


def _direct(client, vol):
    """A _Direct for `vol`, or None (no in-process store: read through the peers)."""
    store = getattr(client, "direct_store", None)
    store = store() if store is not None else None
    if store is None or not hasattr(vol, "map_extents"):
        return None
    return _Direct(vol, store)


def send(client, spec, out, from_snap=None, resume=None, rate=None, progress=None,
         version=None):
    """Write the stream for `spec` to binary file `out`; returns a stats dict.
    `version`: the stream format (default format.VERSION: the newest)."""
    p = plan(client, spec, from_snap, resume, version)
    version = p.header["format"]
    hashers = ThreadPoolExecutor(HASHERS) if version == 1 else None
    w = F.Writer(out, limiter(rate), p.counts, pool=hashers, window=2 * DEPTH,
                 version=version)
    started = time.monotonic()
    w.begin(p.header)
    bar = Progress(sum(n for _, n, _ in p.segments), f"send {spec}", progress)
    vol = client.volume(spec, readonly=True)
    pool = ThreadPoolExecutor(DEPTH)
    try:
        inflight = deque()
        pending = None
        free = [bytearray(PIECE) for _ in range(DEPTH + 1)]

        def retire():
            nonlocal pending
            fut, off, n, buf = inflight.popleft()
            if fut is None:
                pending = _zero_run(w, off, n, pending)
            else:
                fut.result()
                pending = _emit(w, off, memoryview(buf)[:n], pending)
                free.append(buf)
            bar.update(n)

        pieces = list(_pieces(p.segments))
        direct = _direct(client, vol)
        read = direct.readinto if direct is not None else vol.readinto
        for i, (off, n, alloc) in enumerate(pieces):
            if i % PREFETCH == 0:
                if direct is not None:
                    try:
                        direct.map(pieces[i:i + PREFETCH])
                    except ArchipelagoError as e:      # an older mapperd: the peers
                        log.info("in-process reads off (%s); reading through vlmcd", e)
                        direct, read = None, vol.readinto
                if direct is None:
                    _prefetch(vol, pieces[i:i + PREFETCH])
            if not alloc:
                inflight.append((None, off, n, None))
                continue
            while len(inflight) >= DEPTH or not free:
                retire()
            buf = free.pop()
            mv = memoryview(buf)[:n]
            if direct is not None and direct.read_cached(mv, off):
                inflight.append((_DONE, off, n, buf))
            else:
                inflight.append((pool.submit(read, mv, off), off, n, buf))
        while inflight:
            retire()
        if pending:
            w.zero(*pending)
        if direct is not None:
            vname, sname = split_snapshot(spec)
            if snapshot_identity(client, vname, sname)["guid"] != p.header["to"]["guid"]:
                raise NotFound(f"{spec} was removed while it was sent")
        trailer = w.end()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if hashers is not None:
            hashers.shutdown(wait=True, cancel_futures=True)
        vol.close()
        bar.close()
    secs = time.monotonic() - started
    log.info("sent %s: %d records, %d data + %d zero bytes, %d bytes on the wire in "
             "%.2fs", spec, trailer["records"], trailer["data_bytes"],
             trailer["zero_bytes"], w.bytes, secs)
    return {"spec": spec, "from": p.header["from"] and p.header["from"]["name"],
            "records": trailer["records"], "data_bytes": trailer["data_bytes"],
            "zero_bytes": trailer["zero_bytes"], "wire_bytes": w.bytes,
            "total": p.total, "seconds": secs, "resumed": bool(resume)}
