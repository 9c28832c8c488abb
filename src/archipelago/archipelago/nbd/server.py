"""The NBD server: listeners, the allow-list, one thread per connection.

    reg = ExportRegistry([MemoryProvider({"disk": 1 << 30})])
    srv = Server(reg, [parse_address("127.0.0.1:0")], AllowList(["127.0.0.1"]))
    srv.start()              # binds, accepts in a background thread
    srv.addresses            # the bound addresses (real port numbers)
    srv.stop()

A connection runs the handshake (negotiate.py) and then the transmission loop
(transmission.py) in its own thread; whatever one client does, the others and
the server carry on. Clients not on the allow-list are closed at accept, before
a byte is sent. If `status_path` is given, a JSON snapshot (listeners, open
exports, connections) is rewritten on every connect and disconnect; that is
what `archipelago status` and `vlmc map` read.
"""
import json
import logging
import os
import selectors
import socket
import threading
import time

from .negotiate import HardDisconnect, negotiate
from .settings import Address
from .transmission import ProtocolError, Session
from .wire import Disconnected, set_nodelay, set_sndbuf

log = logging.getLogger(__name__)

# Send buffer of a unix-socket connection. A unix stream socket queues at most the
# sender's SO_SNDBUF (default net.core.wmem_default, ~208 KiB), so a 1 MiB READ
# reply left the thread sending it blocked ~4 times per reply waiting for the
# client to drain it (with the co-located RADOS path: the store's completion
# thread, stalling every other completion). nbdd as root forces it past
# net.core.wmem_max; unprivileged it is capped there (raise it to 4 MiB for this to
# take effect). TCP keeps the kernel's autotuning.
UNIX_SNDBUF = 4 << 20


class Server:
    """Serves an ExportRegistry on a set of addresses."""

    def __init__(self, registry, listen, allow, status_path=None):
        self.registry = registry
        self.listen = list(listen)
        self.allow = allow
        self.status_path = status_path
        self.addresses = []
        self._socks = []
        self._conns = {}
        self._conn_id = 0
        self._lock = threading.Lock()
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        try:
            for addr in self.listen:
                self._bind(addr)
        except BaseException:
            self._close_listeners()
            raise
        self._thread = threading.Thread(target=self._accept_loop, name="nbd-accept",
                                        daemon=True)
        self._thread.start()
        log.info("nbdd listening on %s", ", ".join(map(str, self.addresses)))
        self.write_status()

    def _bind(self, addr):
        if addr.kind == "unix":
            _remove_stale(addr.path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(addr.path)
            bound = addr
        else:
            info = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM,
                                      flags=socket.AI_PASSIVE)[0]
            s = socket.socket(info[0], socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(info[4])
            host, port = s.getsockname()[:2]
            bound = Address("tcp", host=host, port=port)
        s.listen(128)
        s.setblocking(False)
        self._socks.append((s, bound))
        self.addresses.append(bound)

    def serve_forever(self):
        """Block until stop() (from a signal handler or another thread)."""
        if self._thread is None:
            self.start()
        while self._thread.is_alive():
            self._thread.join(0.5)

    def request_stop(self):
        """Make serve_forever() return; safe to call from a signal handler."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass                              # already stopped

    def stop(self, timeout=5):
        """Stop accepting, close every connection, release the exports."""
        self.request_stop()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c["sock"].shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for c in conns:
            c["thread"].join(max(0, deadline - time.monotonic()))
        self._close_listeners()
        if self._wake_w >= 0 and not (self._thread and self._thread.is_alive()):
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        if self.status_path:
            try:
                os.unlink(self.status_path)
            except FileNotFoundError:
                pass

    def _close_listeners(self):
        for s, bound in self._socks:
            s.close()
            if bound.kind == "unix":
                try:
                    os.unlink(bound.path)
                except FileNotFoundError:
                    pass
        self._socks = []

    @property
    def stopping(self):
        return self._stopping

    # -- accepting -------------------------------------------------------------------

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        for s, bound in self._socks:
            sel.register(s, selectors.EVENT_READ, bound)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    if key.data is None:
                        return
                    self._accept(key.fileobj, key.data)
        finally:
            sel.close()

    def _accept(self, lsock, bound):
        try:
            sock, peer = lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.warning("accept on %s: %s", bound, e)
            return
        sock.setblocking(True)
        if bound.kind == "unix":
            client, host = f"unix:{bound.path}", None
        else:
            host = peer[0]
            client = f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
        if not self.allow.allows(bound.kind, host):
            log.warning("refused connection from %s on %s: not in the allow list",
                        client, bound)
            sock.close()
            return
        with self._lock:
            self._conn_id += 1
            cid = self._conn_id
            t = threading.Thread(target=self._serve, args=(cid, sock, client),
                                 name=f"nbd-conn-{cid}", daemon=True)
            self._conns[cid] = {"sock": sock, "thread": t, "client": client,
                                "export": None, "since": time.time()}
        t.start()

    # -- one connection ----------------------------------------------------------------

    def _serve(self, cid, sock, client):
        neg = None
        try:
            set_nodelay(sock)
            if sock.family == socket.AF_UNIX:
                set_sndbuf(sock, UNIX_SNDBUF)
            neg = negotiate(sock, self.registry, client, lambda: self._stopping)
            if neg is None:
                return
            with self._lock:
                self._conns[cid]["export"] = neg.export.name
            log.info("client %s connected to %s", client, neg.export.name)
            self.write_status()
            Session(sock, neg, client).run()
        except Disconnected as e:
            log.debug("client %s: %s", client, e)
        except (HardDisconnect, ProtocolError) as e:
            log.warning("client %s: %s; closing the connection", client, e)
        except OSError as e:
            log.debug("client %s: %s", client, e)
        except Exception:
            log.exception("client %s: unexpected error; closing the connection", client)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            if neg is not None:
                self.registry.release(neg.export, client)
                log.info("client %s disconnected from %s", client, neg.export.name)
            with self._lock:
                self._conns.pop(cid, None)
            if neg is not None:
                self.write_status()

    # -- status ----------------------------------------------------------------------

    def status(self):
        with self._lock:
            conns = [{"client": c["client"], "export": c["export"], "since": c["since"]}
                     for c in self._conns.values()]
        return {"pid": os.getpid(), "listen": [str(a) for a in self.addresses],
                "uris": [a.uri() for a in self.addresses],
                "exports": self.registry.status(), "connections": conns}

    def write_status(self):
        if not self.status_path or self._stopping:
            return
        tmp = f"{self.status_path}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.status(), f, indent=1)
            os.replace(tmp, self.status_path)
        except OSError as e:
            log.warning("cannot write %s: %s", self.status_path, e)


def _remove_stale(path):
    """Unlink a socket file nobody listens on; refuse to steal a live one."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    from ..errors import Busy
    raise Busy(f"{path}: another server is already listening there")


def read_status(path):
    """The JSON status a running nbdd left at `path`, or None."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
