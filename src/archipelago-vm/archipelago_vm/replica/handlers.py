"""The compute node's img_sync side of map, unmap and sync.

Long work (streams to the NAS) runs in the ReplicaService's worker pool; the
answer is queued and sent from the bus thread by drain() (pika is not thread
safe), together with "copy finished" and progress notices to the NAS.
"""
import logging
import queue
import time

from archipelago.bus import schema
from archipelago.bus.dispatch import DEFERRED
from archipelago.bus.errors import BusError
from archipelago.errors import NotFound

from ..models import Device

log = logging.getLogger(__name__)
PROGRESS_EVERY = 10.0


def map_local(ctx, f):
    """Create the replica, serve it, attach it: usable at once (copy on read)."""
    node, s, name = ctx.node, ctx.session, f["volume"]
    dev = s.get(Device, name)
    reps = node.replicas
    if dev is not None and reps.get(name) and reps.get(name).get("state") == "serving":
        return _reply(node, dev)
    base = f["base"] or {}
    if not base.get("name") or not base.get("guid"):
        raise NotFound(f"map of {name} with sync: the NAS sent no base snapshot")
    local = reps.create(name, f["size"], f["nas"], f["uri"], base, f["sync_dest"],
                        rate=f["downloadspeed"])
    device = node.attacher.attach(local, f["read_only"])
    if dev is None:
        dev = Device(volume=name, nas=f["nas"], uri=local, device=device, size=f["size"],
                     read_only=f["read_only"])
        s.add(dev)
    log.info("attached the local replica of %s from %s as %s", name, f["nas"], device)
    return _reply(node, dev)


def _reply(node, dev):
    return {"volume": dev.volume, "device": dev.device, "uri": dev.uri, "host": node.name,
            "replica": node.replicas.progress(dev.volume)}


def unmap_local(ctx, f):
    """Detach, stop serving, then (in the pool) the final sync and the replica's removal."""
    node, s, name = ctx.node, ctx.session, f["volume"]
    reps = node.replicas
    dev = s.get(Device, name)
    device = dev.device if dev else None
    if dev is not None:
        node.attacher.detach(dev.device, force=f["force"])
        s.delete(dev)
    entry = reps.get(name)
    if entry is None:
        raise NotFound(f"no replica of {name} on {node.name}; nothing to sync")
    if entry.get("state") == "removed":
        return {"volume": name, "host": node.name, "device": device,
                "snapshot": entry.get("base"), "bytes": 0}
    reps.stop_serving(name)

    def final():
        done = reps.get(name) or {}
        if done.get("state") == "removed":        # an earlier attempt finished it
            return {"volume": name, "host": node.name, "device": device,
                    "snapshot": done.get("base"), "bytes": 0}
        res = reps.sync_retrying(name, rate=f["rate"], token=f["token"])
        reps.remove(name)
        return {"volume": name, "host": node.name, "device": device, **res}
    submit(ctx, final, "volume_unmapped", key=("final", name))
    return DEFERRED


def drop_replica(ctx, f):
    """A forced unmap without sync (the NAS's undo or `rocks clean`): detach and drop
    the replica without syncing (the NAS copy is the master)."""
    node, name = ctx.node, f["volume"]
    if not f["force"] or node.replica_progress(name) is None:
        return
    if node.replicas.get(name).get("state") == "removed":
        return
    dev = ctx.session.get(Device, name)
    if dev is not None:
        node.attacher.detach(dev.device, force=True)
    node.replicas.remove(name)
    log.warning("replica %s dropped without a sync (forced unmap)", name)


def sync_now(ctx, f):
    node, name = ctx.node, f["volume"]
    if node.replicas.get(name) is None:
        raise NotFound(f"no replica of {name} on {node.name}")

    def job():
        res = node.replicas.sync(name, rate=f["rate"], token=f["token"])
        return {"volume": name, "host": node.name, "phase": "to-nas", **res}
    submit(ctx, job, "volume_synced", key=("sync", name))
    return DEFERRED


def submit(ctx, fn, reply_action, key):
    """Run fn in the pool; its result answers this request and every request for the
    same `key` that arrives while it runs (the NAS asks again when it hears nothing:
    one job, every asker answered with its own request_id)."""
    node, msg = ctx.node, dict(ctx.msg)
    waiter = (ctx.reply_to, ctx.correlation_id, msg)
    outbox, running = _outbox(node), node.replicas.running
    with node.replicas.lock:
        if key in running:
            running[key].append(waiter)
            if msg.get("token"):           # the NAS's newest checkpoint: a retry resumes it
                node.replicas.tokens[key[1]] = msg["token"]
            log.info("%s of %s is already running; answering %s too", key[0], key[1],
                     msg["request_id"])
            return
        running[key] = [waiter]

    def run():
        try:
            result, err = fn(), None
        except Exception as e:            # answered, never lost in the pool
            log.warning("%s of %s failed: %s", msg.get("action"), msg.get("volume"), e)
            result, err = None, e
        with node.replicas.lock:
            waiters = running.pop(key, [])
        for reply_to, cid, m in waiters:
            reply = schema.failure(m, err, reply_action) if err is not None else \
                schema.success(m, reply_action, **result)
            outbox.put((reply_to, cid, reply))
    node.replicas.pool.submit(run)


def _outbox(node):
    if getattr(node, "_sync_outbox", None) is None:
        node._sync_outbox = queue.Queue()
    return node._sync_outbox


def drain(ctx):
    """Bus thread, every second: finished jobs' answers; copy-finished and progress
    notices to the NAS."""
    node = ctx.node
    outbox = _outbox(node)
    while True:
        try:
            reply_to, cid, reply = outbox.get_nowait()
        except queue.Empty:
            break
        ctx.reply_later(reply_to, cid, reply)
    if getattr(node, "_replicas", None) is None:
        return
    reps = node.replicas
    while reps.notices:
        nas, volume, progress = reps.notices.pop(0)
        _notify(ctx, nas, volume, "fetched", progress)
    now = time.time()
    for volume, (_srv, fetcher) in list(reps.live.items()):
        last = getattr(fetcher, "_notified", 0)
        if not fetcher.done and now - last >= PROGRESS_EVERY:
            fetcher._notified = now
            _notify(ctx, reps.get(volume)["nas"], volume, "progress", fetcher.progress())


def _notify(ctx, nas, volume, phase, progress):
    msg = schema.request("volume_synced", volume=volume, host=ctx.node.name, phase=phase,
                         fetched=progress.get("fetched"), total=progress.get("total"))
    try:
        ctx.bus.publish(nas, msg, reply_to=None, correlation_id=msg["request_id"],
                        expiration=600)
    except BusError as e:
        log.warning("could not tell %s about %s (%s): %s", nas, volume, phase, e)
