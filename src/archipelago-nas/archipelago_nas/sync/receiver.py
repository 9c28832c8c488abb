"""The NAS's stream receiver: authenticated TCP ([sync] listen, else nbd_listen with
[sync] port), a few threads accepting at once, each stream received into the
volume's pool through a client over the NAS's own VolumeEngine (archipelago.sync:
verified, staged, resumable; the state and resume tokens live in [sync] state_dir).
Only volumes mapped with img_sync are accepted."""
import logging
import threading

from archipelago.errors import ArchipelagoError
from archipelago.sync import resume_token
from archipelago.sync.config import SYNC
from archipelago.sync.config import secret as load_secret
from archipelago.sync.local import EngineClient
from archipelago.sync.service import receive_result
from archipelago.sync.transport import tcp

from ..config import NAS
from ..models import Mapping, Volume

log = logging.getLogger(__name__)
ACCEPTING = ("syncing-to-host", "mapped-local", "syncing-to-nas", "error")


class Receiver:
    def __init__(self, nas, threads=2):
        self.nas = nas
        self.settings = nas.cfg.section(SYNC)
        self.state_dir = str(self.settings.state_dir)
        self.clients = {}
        self.lock = threading.Lock()
        self.sock = None
        self.threads = []
        self.nthreads = threads
        sec = nas.cfg.section(NAS)
        self.listen = self.settings.listen or f"{sec.nbd_listen}:{self.settings.port}"
        self.host = sec.nbd_host or nas.name
        self.error = None

    def start(self):
        try:
            self.secret = load_secret(self.settings)
            self.sock = tcp.bind(self.listen)
        except ArchipelagoError as e:
            self.error = str(e)
            log.warning("img_sync disabled: no stream receiver (%s)", e)
            return
        for i in range(self.nthreads):
            t = threading.Thread(target=self._loop, name=f"sync-recv-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        log.info("sync receiver on %s", self.dest)

    @property
    def dest(self):
        """HOST:PORT compute nodes send streams to."""
        if self.sock is None:
            return None
        return f"{self.host}:{self.sock.getsockname()[1]}"

    def _loop(self):
        while self.sock is not None:
            try:
                tcp.serve(self.sock, self.secret, self.handle, once=True,
                          idle_timeout=self.settings.idle_timeout)
            except OSError:
                if self.sock is None:
                    return
            except Exception:
                log.exception("sync receiver")

    def client(self, pool):
        with self.lock:
            if pool not in self.clients:
                self.clients[pool] = EngineClient(self.nas.volumes.engine(pool))
            return self.clients[pool]

    def handle(self, volume, rfile):
        with self.nas.db.scope() as s:
            vol, m = s.get(Volume, volume), s.get(Mapping, volume)
            ok = vol is not None and m is not None and m.sync and m.state in ACCEPTING
            pool = vol.pool if vol is not None else None
        if not ok:
            return {"ok": False, "code": 2, "token": None,
                    "error": f"{volume} is not mapped with img_sync on {self.nas.name}"}
        res = receive_result(self.client(pool), volume, rfile, state_dir=self.state_dir)
        log.info("sync receive into %s: %s", volume,
                 "ok" if res.get("ok") else res.get("error"))
        return res

    def token(self, volume):
        try:
            return resume_token(self.state_dir, volume)
        except ArchipelagoError:
            return None

    def stop(self):
        sock, self.sock = self.sock, None
        if sock is not None:
            import socket
            try:
                sock.shutdown(socket.SHUT_RDWR)    # wakes the threads blocked in accept
            except OSError:
                pass
            sock.close()
        for t in self.threads:
            t.join(timeout=5)
