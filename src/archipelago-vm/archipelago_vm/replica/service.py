"""ReplicaService: the compute node's local replicas (img_sync).

One VolumeEngine over a FileStore under state_dir/replicas holds every replica;
each replica is served by its own NBD server on [replica] listen (what the
attacher attaches) and filled from the NAS by a Fetcher. The table
state_dir/replicas/replicas.json remembers every replica (its NAS, its base =
the last snapshot the NAS has, the snapshot being sent, the NBD port) so a
restarted daemon serves the same ports again and resumes copying and syncing.

sync(): snapshot the replica, send the stream from its base to the NAS's receiver
(archipelago.sync, [sync] transport), and on success the new snapshot is the base.
The stream carries only what the VM wrote since the base (written.py): chunks the
copy fetched from the NAS differ from the base in the engine's diff but are the
NAS's own data, so ReplicaClient clips the diff to the written grains.
"""
import contextlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from archipelago.errors import ArchipelagoError, NotFound, Unavailable, Unsupported
from archipelago.names import split_snapshot
from archipelago.nbd.engine import SingleExport
from archipelago.nbd.registry import ExportRegistry
from archipelago.nbd.server import Server
from archipelago.nbd.settings import AllowList, parse_address
from archipelago.store.file import FileStore
from archipelago.sync import service as sync_service
from archipelago.sync import transport as sync_transport
from archipelago.sync.config import SYNC
from archipelago.sync.local import EngineClient
from archipelago.volume import VolumeEngine

from . import written
from .config import REPLICA
from .fetch import Fetcher, ReplicaBackend

log = logging.getLogger(__name__)


class ReplicaService:
    def __init__(self, node):
        self.node = node
        self.cfg = node.cfg.section(REPLICA)
        self.sync_cfg = node.cfg.section(SYNC)
        self.root = node.state_dir / "replicas"
        self.root.mkdir(parents=True, exist_ok=True)
        store = FileStore(self.root / "store")
        self.engine = VolumeEngine(store, owner=f"replica:{node.name}")
        self.client = ReplicaClient(self.engine, self._clip)   # sync over our engine
        self.trackers = {}             # volume -> written.WriteTracker
        self.tokens = {}               # volume -> newest resume token the NAS sent
        self.pool = ThreadPoolExecutor(self.cfg.workers, thread_name_prefix="sync")
        self.table_path = self.root / "replicas.json"
        self.lock = threading.RLock()
        self.vol_locks = {}
        self.live = {}                 # volume -> (Server, Fetcher)
        self.notices = []              # (nas, volume, progress): copy finished
        self.running = {}              # (kind, volume) -> requests waiting for that job
        self.syncing = {}              # volume -> {snapshot, since}: a stream being sent
        self.table = self._load()

    # -- table -------------------------------------------------------------------------
    def _load(self):
        try:
            return json.loads(self.table_path.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self):
        tmp = self.table_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.table, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.table_path)

    def volume_lock(self, volume):
        with self.lock:
            return self.vol_locks.setdefault(volume, threading.Lock())

    def get(self, volume):
        return self.table.get(volume)

    # -- life cycle --------------------------------------------------------------------
    def create(self, volume, size, nas, nas_uri, base, sync_dest, rate=None):
        """Make (or find) the replica of `volume` and serve it; returns its local URI."""
        with self.lock:
            entry = self.table.get(volume)
            if entry is None or entry.get("state") == "removed":
                with contextlib.suppress(ArchipelagoError):
                    self._drop_volume(volume)          # leftovers of an older replica
                self.engine.create(volume, size)
                self.engine.snapshot(volume, base["name"], guid=base["guid"])
                written.remove_all(self.root, volume)
                entry = {"volume": volume, "size": size, "nas": nas, "nas_uri": nas_uri,
                         "base": base["name"], "written_since": base["name"],
                         "sync_dest": sync_dest, "port": 0,
                         "pending": None, "state": "serving", "rate": rate,
                         "created": time.time(), "last_sync": None}
                self.table[volume] = entry
                self._save()
            return self.serve(volume)

    def serve(self, volume):
        with self.lock:
            entry = self.table[volume]
            if volume in self.live:
                return self._uri(entry)
            fetcher = Fetcher(self.engine, volume, entry["nas_uri"],
                              str(self.root / f"{volume}.present"), entry["size"],
                              self.cfg.chunk, rate=entry.get("rate") or self.cfg.downloadspeed,
                              paused=self.cfg.fetch == "paused", on_done=self._fetched)
            listen = self.cfg.listen
            backend = ReplicaBackend(self.engine, volume, fetcher,
                                     writes=self.tracker(volume))
            srv = Server(ExportRegistry([SingleExport(volume, lambda: backend)]),
                         [parse_address(f"{listen}:{entry['port']}")],
                         AllowList([listen, "127.0.0.1"]))
            try:
                srv.start()
            except OSError as e:
                fetcher.stop()
                raise Unavailable(f"cannot serve the replica of {volume}: {e.strerror}") \
                    from None
            fetcher.start()
            self.live[volume] = (srv, fetcher)
            entry["port"] = srv.addresses[0].port
            entry["state"] = "serving"
            self._save()
            log.info("replica %s served on %s", volume, self._uri(entry))
            return self._uri(entry)

    def tracker(self, volume):
        """The record of VM writes to `volume` (a replica made by an older vmd has
        none until its next snapshot: its logs are kept under a name no snapshot has,
        so its first sync sends the whole diff)."""
        with self.lock:
            tr = self.trackers.get(volume)
            if tr is None:
                entry = self.table[volume]
                tr = written.WriteTracker(str(self.root), volume, entry["size"],
                                          entry.get("written_since") or ".unrecorded")
                self.trackers[volume] = tr
            return tr

    def _clip(self, volume, snap, ranges):
        with self.lock:
            entry = self.table.get(volume)
            if entry is None or entry.get("state") == "removed":
                return None
        return self.tracker(volume).clip(snap, ranges)

    def _uri(self, entry):
        return f"nbd://{self.cfg.listen}:{entry['port']}/{entry['volume']}"

    def _fetched(self, volume):
        entry = self.table.get(volume)
        if entry is not None:
            self.notices.append((entry["nas"], volume, self.progress(volume)))

    def stop_serving(self, volume):
        """Stop the replica's NBD server and its copy (the data stays)."""
        with self.lock:
            live = self.live.pop(volume, None)
            entry = self.table.get(volume)
            if entry is not None and entry.get("state") == "serving":
                entry["state"] = "detached"
                self._save()
        if live:
            live[0].stop()
            live[1].stop()

    def remove(self, volume):
        self.stop_serving(volume)
        with self.lock:
            self._drop_volume(volume)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / f"{volume}.present")
            tr = self.trackers.pop(volume, None)
            if tr is not None:
                tr.close()
            written.remove_all(self.root, volume)
            entry = self.table.get(volume) or {}
            # a tombstone: a repeated final unmap gets the same answer
            self.table[volume] = {"volume": volume, "state": "removed",
                                  "base": entry.get("base"), "removed": time.time()}
            self._save()
        log.info("replica %s removed", volume)

    def _drop_volume(self, volume):
        try:
            snaps = self.engine.info(volume, usage=False).snapshots
        except NotFound:
            return
        for s in snaps:
            self.engine.remove(f"{volume}@{s}")
        self.engine.remove(volume)

    def set_rate(self, volume, rate):
        with self.lock:
            entry = self.table.get(volume)
            if entry is None:
                return
            entry["rate"] = rate
            self._save()
            live = self.live.get(volume)
        if live:
            live[1].set_rate(rate)

    def progress(self, volume):
        live = self.live.get(volume)
        entry = self.table.get(volume) or {}
        if live:
            p = live[1].progress()
        else:
            p = {"fetched": None, "total": entry.get("size"), "done": None}
        p.update(state=entry.get("state"), base=entry.get("base"),
                 last_sync=entry.get("last_sync"), pending=entry.get("pending"),
                 syncing=self.syncing.get(volume))
        return p

    def restore(self):
        """At start: serve every replica that was being served, resume its copy."""
        week = time.time() - 7 * 86400
        for volume, entry in list(self.table.items()):
            if entry.get("state") == "removed" and entry.get("removed", 0) < week:
                del self.table[volume]            # old tombstones
                continue
            if entry.get("state") != "serving":
                continue
            try:
                self.serve(volume)
            except ArchipelagoError as e:
                log.error("replica %s: cannot serve it again: %s", volume, e)

    # -- sync back ---------------------------------------------------------------------
    def sync(self, volume, rate=None, token=None):
        """Send the replica's changes since its base to the NAS; returns stats. The
        snapshot taken for a send that did not finish is sent again (resumed with
        `token` when the NAS has one)."""
        with self.volume_lock(volume):
            entry = self.table.get(volume)
            if entry is None or entry.get("state") == "removed":
                raise NotFound(f"no replica of {volume} on this node")
            if not entry.get("sync_dest"):
                raise Unsupported(f"replica {volume}: the NAS gave no sync address")
            snap = entry.get("pending")
            if snap is None:
                snap = f"sync-{int(time.time() * 1000)}"
                # no VM write runs while the snapshot is taken: each is recorded in
                # the interval it belongs to (the one sent now, or the next)
                with self.tracker(volume).rotating(snap):
                    self.engine.snapshot(volume, snap)
                    entry["pending"] = snap
                    entry["written_since"] = snap
                    with self.lock:
                        self._save()
            elif not _resumes(token, snap):
                token = None
            tr = self._transport()
            kw = {"from_snap": entry["base"], "rate": rate}
            if token:
                kw = {"resume": token, "rate": rate}
            started = time.time()
            self.syncing[volume] = {"snapshot": snap, "since": started}
            try:
                res = sync_service.send_to(self.client, f"{volume}@{snap}", tr,
                                           entry["sync_dest"], volume, self.sync_cfg, **kw)
                if not res.get("ok") and token and "resume" in str(res.get("error", "")):
                    res = sync_service.send_to(self.client, f"{volume}@{snap}", tr,
                                               entry["sync_dest"], volume, self.sync_cfg,
                                               from_snap=entry["base"], rate=rate)
            except OSError as e:          # a cut link: the NAS kept its checkpoint
                raise SyncFailed(f"sync of {volume} to {entry['sync_dest']} broke off: "
                                 f"{e}", token) from None
            finally:
                self.syncing.pop(volume, None)
            if not res.get("ok"):
                raise SyncFailed(f"sync of {volume} to {entry['sync_dest']} failed: "
                                 f"{res.get('error')}", res.get("token"))
            old = entry["base"]
            with contextlib.suppress(ArchipelagoError):
                self.engine.remove(f"{volume}@{old}")
            entry.update(base=snap, pending=None, last_sync=time.time())
            with self.lock:
                self._save()
            self.tracker(volume).forget_before(keep=snap)
            sent = res.get("sent") or {}
            log.info("replica %s synced to %s: %s data bytes, %s on the wire", volume, snap,
                     sent.get("data_bytes"), sent.get("wire_bytes"))
            return {"snapshot": snap, "bytes": int(sent.get("wire_bytes") or 0),
                    "seconds": round(time.time() - started, 3)}

    def _transport(self):
        """How streams reach the NAS's receiver ([sync] transport): tcp, or the same
        protocol through `ssh -W` (encrypted; ssh_command says how to log in)."""
        name = self.sync_cfg.transport
        if name == "tcp":
            return sync_transport.get("tcp")
        if name == "ssh":
            return _Tunnel(sync_transport.get("ssh"))
        raise Unsupported(f"[sync] transport = {name}: the daemons sync over tcp or ssh "
                          "(the NAS receives into its own engine, not through `vlmc "
                          "receive`; bbcp is not packaged on Debian); set transport = tcp "
                          "or ssh on this node")

    def sync_retrying(self, volume, rate=None, token=None, attempts=6):
        """sync(), again after a failure (the NAS restarting, a cut link), resuming
        from the receiver's token; the last failure is raised."""
        for attempt in range(attempts):
            token = self.tokens.pop(volume, None) or token
            try:
                return self.sync(volume, rate=rate, token=token)
            except (SyncFailed, Unavailable) as e:
                if attempt == attempts - 1:
                    raise
                token = getattr(e, "token", None) or token
                log.warning("replica %s: %s; trying again", volume, e)
                time.sleep(min(2 ** attempt, 8))

    def close(self):
        for volume in list(self.live):
            srv, fetcher = self.live.pop(volume)
            srv.stop()
            fetcher.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        for tr in self.trackers.values():
            tr.close()
        self.engine.shutdown()


class ReplicaClient(EngineClient):
    """EngineClient whose diff from a base carries only what the VM wrote since it."""

    def __init__(self, engine, clip):
        super().__init__(engine)
        self.clip = clip

    def diff(self, from_spec, to_spec):
        ranges = super().diff(from_spec, to_spec)
        vol, base = split_snapshot(from_spec)
        clipped = self.clip(vol, base, ranges) if base else None
        return ranges if clipped is None else clipped


class _Tunnel:
    """The ssh transport as the daemons use it: a tunnel to the NAS's TCP receiver."""

    def __init__(self, ssh):
        self.ssh = ssh

    def connect(self, dest, volume, settings, force=False, limit=None):
        return self.ssh.tunnel(dest, volume, settings)


class SyncFailed(ArchipelagoError):
    """A stream to the NAS did not commit; `token` resumes it."""

    def __init__(self, message, token=None):
        super().__init__(message)
        self.token = token


def _resumes(token, snap):
    if not token:
        return False
    try:
        from archipelago.sync import token as T
        return T.decode(token).get("to_name") == snap
    except ArchipelagoError:
        return False
