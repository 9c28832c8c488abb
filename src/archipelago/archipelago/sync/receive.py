"""Receiving: verify every record, stage it, commit only after the trailer verifies.

Records are checked as they arrive (checksum, sequence, ascending offsets inside
the volume) and handed to the job's sink (stage.py, sink.py): written into the
staging clone in groups, off this thread, while the stream goes on arriving.
Every CHECKPOINT_BYTES or CHECKPOINT_SECS the writes are drained and flushed
(in the sink's pipeline: the stream goes on) and the job state records the next
seq/offset, the counts and the chain: that is the "last committed point" a
resume token names. When the stream breaks
(EOF, a reset connection, a corrupt record) the job checkpoints what it has and
raises Interrupted carrying the token; the target volume is untouched. A trailer
that disagrees with what arrived aborts the job (nothing to resume from).
"""
import logging
import time

from ..errors import ArchipelagoError
from . import format as F
from .progress import Progress
from .ratelimit import limiter
from .stage import Job, locked

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 64 << 20
CHECKPOINT_SECS = 5.0


class Interrupted(F.StreamError):
    """The stream stopped before its end; `token` resumes it (`vlmc send --resume`)."""

    def __init__(self, message, token):
        super().__init__(f"{message}; resume with: vlmc send --resume {token}")
        self.token = token
        self.reason = message


class _Applier:
    """Hands verified records to the job's sink; tracks the durable point."""

    def __init__(self, job, sink, counts, seq, offset, every=None):
        self.job, self.sink = job, sink
        self.every_secs, self.every_bytes = every or (CHECKPOINT_SECS, CHECKPOINT_BYTES)
        self.counts = counts               # through the last record handed to apply()
        self.seq, self.offset = seq, offset
        self.since = 0
        self.last = time.monotonic()
        self.size = job.header["volume_size"]
        self.times = {"put": 0.0, "checkpoint": 0.0}    # seconds (the result's split)

    def apply(self, rec):
        if rec.offset < self.offset or rec.offset + rec.length > self.size:
            raise F.StreamCorrupt(f"record {rec.seq}: range {rec.offset}+{rec.length} is "
                                  f"out of order or beyond the volume ({self.size} bytes)")
        t0 = time.monotonic()
        self.sink.put(rec)
        self.times["put"] += time.monotonic() - t0
        self.counts.add(rec.type, rec.length, rec.digest)
        self.seq, self.offset = rec.seq + 1, rec.offset + rec.length
        self.since += rec.length
        if self.since >= self.every_bytes or time.monotonic() - self.last > self.every_secs:
            self.checkpoint(wait=False)

    def checkpoint(self, wait=True):
        """Make what was applied durable and record it in the job state; without
        `wait`, where the sink can, in its pipeline (the stream goes on meanwhile)."""
        if not wait and hasattr(self.sink, "sync_then"):
            seq, offset, counts = self.seq, self.offset, self.counts.copy()
            self.sink.sync_then(lambda extra: self.job.checkpoint(seq, offset, counts,
                                                                  **extra))
            self.since, self.last = 0, time.monotonic()
            return
        t0 = time.monotonic()
        extra = self.sink.sync()
        self.job.checkpoint(self.seq, self.offset, self.counts, **extra)
        self.since, self.last = 0, time.monotonic()
        self.times["checkpoint"] += self.last - t0

    def close(self):
        self.sink.close()


def _begin(reader):
    reader.preamble()
    rec = reader.next()
    if rec.type != F.BEGIN:
        raise F.StreamCorrupt("the stream does not start with a begin record")
    header = rec.json()
    if header.get("format") != reader.version:
        raise F.StreamCorrupt(f"the stream's header says format {header.get('format')}, "
                              f"its preamble version {reader.version}")
    r = header.get("resume")
    if r is not None and (rec.seq != int(r.get("seq", -1)) - 1 or
                          rec.offset != int(r.get("offset", -1))):
        raise F.StreamCorrupt("the resumed stream's begin record is inconsistent")
    if r is None and rec.seq != 0:
        raise F.StreamCorrupt("the stream's begin record is not record 0")
    return rec, header


def receive(client, volume, inp, *, state_dir, force=False, rate=None, progress=None,
            checkpoint=None, spool_max=None):
    """Apply the stream read from binary file `inp` to `volume`; returns a stats dict.
    Raises Interrupted (with a resume token) if the stream stops early. `checkpoint`:
    (seconds, bytes) between checkpoints (default CHECKPOINT_SECS/BYTES); incremental
    streams up to `spool_max` bytes are spooled to a local file (default SPOOL_MAX: 0),
    the others written into a staging clone as they arrive."""
    started = time.monotonic()
    reader = F.Reader(inp, limiter(rate))
    brec, header = _begin(reader)
    with locked(state_dir, volume):
        return _receive(client, volume, reader, brec, header, started, state_dir, force,
                        progress, checkpoint, spool_max)


def _receive(client, volume, reader, brec, header, started, state_dir, force, progress,
             checkpoint, spool_max):
    job = Job.open(client, volume, header, state_dir, force, spool_max)
    counts = F.Counts.from_json(job.state["counts"], header["format"])
    if header.get("resume") is None:
        counts.add(F.BEGIN, 0, brec.digest)
        job.checkpoint(1, 0, counts)
    ap = _Applier(job, job.sink(), counts.copy(), job.state["seq"], job.state["offset"],
                  checkpoint)
    bar = Progress(header["total"] - job.state["offset"] if header.get("resume") else
                   header["total"], f"receive {volume}", progress)
    try:
        try:
            trailer = _apply_all(reader, ap, bar)
        except (F.StreamTruncated, F.StreamCorrupt) as e:
            _interrupt(ap, job, e)
        finally:
            bar.close()
        try:
            _verify(trailer, ap.counts, header)
        except F.StreamCorrupt:
            ap.close()
            job.abort()
            raise
        ap.checkpoint()
    finally:
        ap.close()
    staged = time.monotonic()
    job.commit()
    secs = time.monotonic() - started
    c = ap.counts
    log.info("received %s@%s into %s: %d records, %d bytes on the wire in %.2fs",
             header["volume"], header["to"]["name"], volume, c.records, reader.bytes, secs)
    return {"volume": volume, "snapshot": header["to"]["name"],
            "guid": header["to"]["guid"], "source": header["volume"],
            "from": header["from"] and header["from"]["name"], "records": c.records,
            "data_bytes": c.data_bytes, "zero_bytes": c.zero_bytes,
            "wire_bytes": reader.bytes, "seconds": secs,
            "stream_seconds": staged - started, "commit_seconds": secs - (staged - started),
            "commit_split": {k: round(v, 3) for k, v in job.times.items()},
            "stream_split": {k: round(v, 3) for k, v in ap.times.items()},
            "resumed": header.get("resume") is not None}


def _apply_all(reader, ap, bar):
    while True:
        rec = reader.next()
        if rec.type == F.END:
            return rec.json()
        if rec.type == F.BEGIN:
            raise F.StreamCorrupt(f"record {rec.seq}: a second begin record")
        ap.apply(rec)
        bar.update(rec.length)


def _interrupt(ap, job, err):
    """Make what arrived durable (as far as it was written) and raise Interrupted."""
    try:
        ap.checkpoint()
    except ArchipelagoError as e:
        log.warning("receive into %s: could not checkpoint after the interruption (%s); "
                    "resuming from the previous checkpoint", job.volume, e)
    log.info("receive into %s interrupted at offset %d: %s", job.volume,
                job.state["offset"], err)
    raise Interrupted(f"{err}; {job.volume} is unchanged", job.token()) from None


def _verify(trailer, counts, header):
    mine = counts.to_json()
    for key in ("records", "data_bytes", "zero_bytes", "chain"):
        if trailer.get(key) != mine[key]:
            raise F.StreamCorrupt(f"the stream's trailer does not match what arrived "
                                  f"({key}: {trailer.get(key)} != {mine[key]}); nothing "
                                  "was changed")
    if mine["data_bytes"] + mine["zero_bytes"] != header["total"]:
        raise F.StreamCorrupt(f"the stream carried {mine['data_bytes'] + mine['zero_bytes']}"
                              f" bytes of {header['total']}; nothing was changed")
