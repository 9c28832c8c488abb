"""The NAS side of img_sync mappings.

    map:    snapshot the volume (the replica's base: sync-<ms>, its guid goes to the
            compute node, whose replica takes the same identity), export it, ask for
            a map with sync; volume_mapped -> syncing-to-host (the frontend is
            answered: the device is usable at once); the node's "fetched" notice
            -> mapped-local.
    sync:   every `frequency` s (volume attr, NAS attr, 300) tick() asks the node
            for a sync (mapped-local -> syncing-to-nas); its volume_synced reply ->
            mapped-local. A sync that does not answer by its deadline is retried.
            Syncs run while the copy is still going too (the node sends only what
            the VM wrote); the mapping then stays syncing-to-host, job.kind
            "periodic" with a request_id is the sync in flight.
    unmap:  syncing-to-nas; the node detaches, sends the final stream, removes its
            replica; volume_unmapped -> unmapped (the NAS copy is the master again).
            A node that is down: error, cleared by `rocks clean host storagemap`
            (the NAS keeps the last synced state).
"""
import logging
import time

from sqlalchemy import select

from archipelago.bus import schema
from archipelago.bus.dispatch import DEFERRED, Failure
from archipelago.bus.errors import Unroutable
from archipelago.errors import ArchipelagoError, Busy, NotFound, Timeout, Unavailable, Unsupported

from ..handlers.common import finish, hold
from ..models import Mapping, NasAttr, Volume, VolumeAttr
from ..states import ERROR, MAPPED_LOCAL, SYNCING_TO_HOST, SYNCING_TO_NAS, UNMAPPED, transition
from .models import SyncJob

log = logging.getLogger(__name__)
DEFAULT_FREQUENCY = 300
SYNC_TIMEOUT = 600          # seconds a periodic sync may take before it is retried
FINAL_RETRY = 60            # seconds between attempts of a final sync
FINAL_ATTEMPTS = 30


def job_row(s, volume):
    job = s.get(SyncJob, volume)
    if job is None:
        job = SyncJob(volume=volume, attempts=0, copied=0)
        s.add(job)
    return job


def attr(s, volume, name, default=None):
    row = s.get(VolumeAttr, (volume, name))
    if row is not None:
        return row.value
    row = s.get(NasAttr, name)
    return row.value if row is not None and row.value else default


def _int(text, default=None):
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        return default


def retry_after(s):
    """Seconds before a final sync that did not answer is asked for again (NAS
    attribute sync_retry, default FINAL_RETRY)."""
    row = s.get(NasAttr, "sync_retry")
    return max(1, _int(row.value if row is not None else None, FINAL_RETRY))


def frequency(s, volume):
    return _int(attr(s, volume, "frequency"), DEFAULT_FREQUENCY)


def rate(s, volume, name):
    return _int(attr(s, volume, name))


def clean_cancel(hint, name, nas):
    return f"{hint}; `rocks clean host storagemap {nas} {name}` makes the NAS copy (last " \
           "synced state) the master again"


# -- map ------------------------------------------------------------------------------
def check(ctx):
    nas = ctx.node
    recv = getattr(nas, "receiver", None)
    if recv is None or not hasattr(nas.volumes, "engine"):
        raise Unsupported("img_sync needs [nas] volumes = engine")
    if recv.dest is None:
        raise Unsupported(f"img_sync is disabled on {nas.name}: {recv.error}")
    return recv


def prepare_map(ctx, pool, name, host):
    """Extra fields of the map request for an img_sync mapping: base snapshot, where
    to send streams, the download rate."""
    nas = ctx.node
    recv = check(ctx)
    eng = nas.volumes.engine(pool)
    snap = f"sync-{int(time.time() * 1000)}"
    eng.snapshot(name, snap)
    guid = eng.info(f"{name}@{snap}", usage=False).guid
    prune(eng, name, keep=snap)
    s = ctx.session
    job = job_row(s, name)
    job.host, job.kind, job.request_id, job.deadline = host, None, None, None
    job.base, job.error, job.attempts, job.copied = snap, None, 0, 0
    job.fetched, job.total, job.started = 0, None, time.time()
    job.next_sync = time.time() + frequency(s, name)
    job.download_rate = rate(s, name, "downloadspeed") or 0
    return {"sync": True, "base": {"name": snap, "guid": guid}, "sync_dest": recv.dest,
            "downloadspeed": rate(s, name, "downloadspeed")}


def prune(eng, name, keep):
    """Remove the NAS's older sync-* snapshots of `name` (best effort)."""
    try:
        snaps = eng.info(name, usage=False).snapshots
    except NotFound:
        return
    for snap in snaps:
        if snap.startswith("sync-") and snap != keep:
            try:
                eng.remove(f"{name}@{snap}")
            except ArchipelagoError as e:
                log.info("keeping %s@%s: %s", name, snap, e)


def mapped(ctx, m, f):
    """volume_mapped for an img_sync mapping: the device is usable; copying goes on."""
    s = ctx.session
    job = job_row(s, m.volume)
    rep = f.get("replica") or {}
    job.fetched, job.total = rep.get("fetched"), rep.get("total")
    transition(s, m, SYNCING_TO_HOST, f"replica attached on {m.remotehost} as "
               f"{f['device']}; copying from the NAS")
    if job.copied or rep.get("done"):
        transition(s, m, MAPPED_LOCAL, "replica complete")


# -- notices and replies from the node -------------------------------------------------
def synced(ctx, f):
    """volume_synced: a notice (copy progress, copy finished) or the answer to sync."""
    s, name, msg = ctx.session, f["volume"], ctx.msg
    m, job = s.get(Mapping, name), s.get(SyncJob, name)
    # notices name their host; answers are matched by request_id below (an error
    # answer carries no host: it used to be dropped here, leaving the sync to time out)
    host = f["host"] if f["host"] is not None or "status" in msg else ""
    if m is None or job is None or not m.sync or host not in (None, m.remotehost):
        log.info("volume_synced for %s from %s ignored", name, f["host"])
        return {}
    if "status" not in msg:                                   # a notice
        if f["fetched"] is not None:
            job.fetched, job.total = f["fetched"], f["total"]
        if f["phase"] == "fetched":
            job.copied = 1
            if m.state == SYNCING_TO_HOST:
                transition(s, m, MAPPED_LOCAL, "replica complete: every object is local")
        return {}
    if job.request_id != msg["request_id"] or job.kind != "periodic" or m.state not in (
            SYNCING_TO_NAS, SYNCING_TO_HOST, MAPPED_LOCAL):
        log.info("late volume_synced for %s ignored", name)
        return {}
    now = time.time()
    job.request_id, job.deadline, job.kind = None, None, None
    if msg.get("status") == schema.SUCCESS:
        job.base, job.last_sync, job.last_bytes = f["snapshot"], now, f["bytes"]
        job.error, job.attempts = None, 0
        job.next_sync = now + frequency(s, name)
        _prune_after(ctx, name, f["snapshot"])
        _sync_over(s, m, f"synced to {name}@{f['snapshot']} ({f['bytes']} bytes)")
    else:
        job.error = msg.get("error")
        job.next_sync = now + min(60, frequency(s, name))
        _sync_over(s, m, f"sync failed: {job.error}; retrying")
    return {}


def _sync_over(s, m, reason):
    """A periodic sync ended: back to mapped-local (a sync during the copy never left
    syncing-to-host; it is only logged)."""
    if m.state == SYNCING_TO_NAS:
        transition(s, m, MAPPED_LOCAL, reason)
    else:
        log.info("volume %s: %s", m.volume, reason)


def _prune_after(ctx, name, snap):
    vol = ctx.session.get(Volume, name)
    if vol is not None and hasattr(ctx.node.volumes, "engine") and snap:
        prune(ctx.node.volumes.engine(vol.pool), name, keep=snap)


# -- periodic ---------------------------------------------------------------------------
def tick(ctx):
    """Start due syncs; retry or give up on the ones past their deadline."""
    s, now = ctx.session, time.time()
    rows = s.scalars(select(Mapping).where(Mapping.sync.is_(True), Mapping.state.in_(
        [SYNCING_TO_HOST, MAPPED_LOCAL, SYNCING_TO_NAS])))
    for m in list(rows):
        job = job_row(s, m.volume)
        if m.state == SYNCING_TO_HOST:
            _push_download_rate(ctx, m, job)
        if job.request_id is not None:            # a sync in flight: is it overdue?
            if job.deadline is not None and job.deadline < now:
                _overdue(ctx, m, job)
        elif m.state in (SYNCING_TO_HOST, MAPPED_LOCAL) and due(s, m, job, now) <= now:
            start_sync(ctx, m, job)


def due(s, m, job, now):
    """When the next periodic sync of `m` is due: frequency changes apply at once;
    after a failure, job.next_sync (a retry); the volume attribute nextsync, if it
    lies between the last sync and now, brings it forward."""
    nxt = _int(attr(s, m.volume, "nextsync"))
    at = (job.next_sync or 0) if job.error else \
        (job.last_sync or job.started or now) + frequency(s, m.volume)
    if nxt and (job.last_sync or 0) < nxt <= now:
        at = min(at, nxt)
    return at


def _push_download_rate(ctx, m, job):
    """`rocks set host storagemap ... downloadspeed=` while the copy runs: tell the node."""
    want = rate(ctx.session, m.volume, "downloadspeed") or 0
    if want == (job.download_rate or 0):
        return
    msg = schema.request("sync", f"rate-{schema.new_request_id()}", volume=m.volume,
                         downloadspeed=want, rate_only=True)
    try:
        ctx.bus.publish(m.remotehost, msg, expiration=60)
        job.download_rate = want
    except Unroutable:
        pass


def start_sync(ctx, m, job, kind="periodic"):
    s, nas = ctx.session, ctx.node
    rid = f"sync-{schema.new_request_id()}"
    msg = schema.request("sync", rid, volume=m.volume,
                         rate=rate(s, m.volume, "uploadspeed"),
                         token=nas.receiver.token(m.volume),
                         downloadspeed=rate(s, m.volume, "downloadspeed") or 0)
    job.kind, job.request_id = kind, rid
    job.deadline = time.time() + SYNC_TIMEOUT
    job.attempts = (job.attempts or 0) + 1
    if m.state == MAPPED_LOCAL:              # during the copy: stays syncing-to-host
        transition(s, m, SYNCING_TO_NAS, "periodic sync")
    try:
        ctx.bus.publish(m.remotehost, msg, reply_to=nas.name, correlation_id=rid,
                        expiration=SYNC_TIMEOUT)
    except Unroutable:
        job.kind = job.request_id = job.deadline = None
        job.error = f"compute node {m.remotehost} is unavailable"
        job.next_sync = time.time() + 60
        _sync_over(s, m, f"sync skipped: {job.error}")


def _overdue(ctx, m, job):
    s = ctx.session
    if job.kind == "final":
        try:
            ctx.node.check_alive(s, m.remotehost)
            gone = None
        except Unavailable as e:
            gone = e
        if gone is not None or (job.attempts or 0) >= FINAL_ATTEMPTS:
            why = f"{gone}; its changes since the last sync are only there" if gone else \
                f"the final sync of {m.volume} from {m.remotehost} did not finish"
            err = Timeout(clean_cancel(why, m.volume, ctx.node.name))
            transition(s, m, ERROR, str(err))
            job.kind = job.request_id = job.deadline = None
            if m.request_id:
                finish(ctx, m, "unmap", error=err)
            return
        _send_final(ctx, m, job)
        return
    job.kind = job.request_id = job.deadline = None
    job.error = "the compute node did not answer the sync in time"
    job.next_sync = time.time() + 30
    _sync_over(s, m, f"sync timed out on {m.remotehost}; retrying")


# -- unmap ------------------------------------------------------------------------------
def unmap(ctx, f, m):
    nas, s, name, host = ctx.node, ctx.session, m.volume, m.remotehost
    if m.state not in (MAPPED_LOCAL, SYNCING_TO_HOST, SYNCING_TO_NAS, ERROR):
        raise Busy(f"volume {name} is {m.state}; it cannot be unmapped now")
    job = job_row(s, name)
    if m.request_id or job.kind == "final":
        raise Busy(f"volume {name} is already being unmapped (final sync from {host})")
    try:
        nas.check_alive(s, host)
    except Unavailable as e:
        transition(s, m, ERROR, f"unmap: {e}")
        return Failure(Unavailable(clean_cancel(f"{e}; its changes since the last sync "
                                                "are only there", name, nas.name)))
    hold(m, ctx, FINAL_RETRY * FINAL_ATTEMPTS)
    if m.state != SYNCING_TO_NAS:
        transition(s, m, SYNCING_TO_NAS, f"unmap from {host}: final sync")
    job.attempts = 0
    if not _send_final(ctx, m, job, force=f["force"]):
        transition(s, m, ERROR, f"compute node {host} is unavailable (unroutable)")
        m.request_id = m.reply_to = m.correlation_id = m.deadline = None
        return Failure(Unavailable(clean_cancel(
            f"compute node {host} is unavailable; its changes since the last sync are "
            "only there", name, nas.name)))
    return DEFERRED


def _send_final(ctx, m, job, force=False):
    nas, s = ctx.node, ctx.session
    rid = f"final-{schema.new_request_id()}"
    msg = schema.request("unmap", rid, volume=m.volume, force=bool(force), sync=True,
                         rate=rate(s, m.volume, "uploadspeed"),
                         token=nas.receiver.token(m.volume))
    job.kind, job.request_id = "final", rid
    job.deadline = time.time() + retry_after(s)
    job.attempts = (job.attempts or 0) + 1
    try:
        ctx.bus.publish(m.remotehost, msg, reply_to=nas.name, correlation_id=rid,
                        expiration=retry_after(s))
        return True
    except Unroutable:
        job.kind = job.request_id = job.deadline = None
        return False


def unmapped(ctx, f, m):
    """volume_unmapped for an img_sync mapping (the final sync's answer)."""
    s, name, msg = ctx.session, m.volume, ctx.msg
    job = job_row(s, name)
    ok = msg.get("status") == schema.SUCCESS
    # any attempt of this final sync that committed completes it; failures count only
    # from the attempt asked last
    current = job.request_id == msg["request_id"] or (
        ok and job.kind == "final" and str(msg["request_id"]).startswith("final-"))
    if not current or m.state != SYNCING_TO_NAS:
        log.info("late volume_unmapped for %s ignored", name)
        return {}
    host = m.remotehost
    job.kind = job.request_id = job.deadline = None
    if msg.get("status") == schema.SUCCESS:
        job.base, job.last_sync, job.last_bytes = f["snapshot"], time.time(), f["bytes"]
        job.error = None
        vol = s.get(Volume, name)
        ctx.node.volumes.unexport(vol.pool, name)
        transition(s, m, UNMAPPED, f"final sync from {host} committed "
                   f"({name}@{f['snapshot']}); the NAS copy is the master")
        if m.request_id:
            finish(ctx, m, "unmap", {"volume": name, "remotehost": host,
                                     "snapshot": f["snapshot"]})
        m.remotehost = m.remotepool = m.uri = m.device = None
        m.deadline = None
        return {}
    job.error = msg.get("error")
    if msg.get("kind") == "Busy":               # still attached and in use there
        transition(s, m, MAPPED_LOCAL, f"unmap refused on {host}: {job.error}")
        if m.request_id:
            finish(ctx, m, "unmap", error=Busy(f"compute node {host}: {job.error}"))
        m.deadline = None
        return {}
    err = ArchipelagoError(clean_cancel(f"compute node {host}: final sync failed: "
                                        f"{job.error}; retry the unmap", name, ctx.node.name))
    transition(s, m, ERROR, str(err))
    if m.request_id:
        finish(ctx, m, "unmap", error=err)
    m.deadline = None
    return {}


def forget(s, name):
    """`rocks clean`: the NAS copy (its last synced snapshot) is the master."""
    job = s.get(SyncJob, name)
    if job is not None:
        s.delete(job)


def annotate(s, rows):
    """Add sync progress to `list` rows (rocks list host storagemap)."""
    jobs = {j.volume: j for j in s.scalars(select(SyncJob))}
    for r in rows:
        j = jobs.get(r["volume"])
        if j is None or not r.get("sync"):
            continue
        total = j.total or r["size"]
        r["copied"] = 100.0 if j.copied else round(100.0 * (j.fetched or 0) / total, 1) \
            if total else None
        r["lastsync"], r["syncbase"], r["syncerror"] = j.last_sync, j.base, j.error
        r["nextsync"], r["syncbytes"] = j.next_sync, j.last_bytes
        # a sync in flight (periodic|final); during the copy the state stays
        # syncing-to-host, so this is where a sync then shows
        r["syncing"] = j.kind if j.request_id else None
    return rows
