"""Python CPU per request of nbdd's co-located RADOS hot path, without librados.

    tools/ceph-cluster start /tmp/c
    .venv/bin/python bench/hotpath_rados.py /tmp/c/ceph.conf archipelago read|write TAG
    PYTHONPATH=/tmp/base/src/archipelago .venv/bin/python bench/hotpath_rados.py ...  # A/B

A co-located volume on a real RadosStore (the map cache warmed by real MAPWs), then
the extension's ra_read/ra_write/ra_wait replaced by no-ops: the connection thread
runs the real Session._loop on a socketpair (16 x 4K requests per batch, as fio
QD16), and this thread plays the drainer (each completion's callback, then the
after-batch sends). Prints the completion side's thread CPU per request (min of 5
rounds of 2000 batches) and the connection thread's (mean over all, its recv
included). Not run by bench/run.py (needs a cluster, and it fakes librados):
figures in docs/rados.md "Measured". Leaves its objects in namespaces micro-*.
"""

import os
import socket
import struct
import sys
import threading
import time
import types

from archipelago.nbd import proto
from archipelago.nbd.colocated import local
from archipelago.nbd.transmission import Session
from archipelago.store import rados_aio
from archipelago.store.rados import RadosStore

QD, ROUNDS, N = 16, 5, 2000
REQ = struct.Struct(">IHHQQI")


class Fake:
    """The extension's lib with no librados behind ra_read/ra_write/ra_wait."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, k):
        return getattr(self.real, k)

    @staticmethod
    def ra_read(cl, oid, buf, n, off, tag, force):
        return 0

    ra_write = ra_read

    @staticmethod
    def ra_wait(cl, tags, rvs, most, ms):
        time.sleep(0.5)
        return 0


def main():
    conf, pool, mode, tag = sys.argv[1:5]
    write = mode == "write"

    def mk(ns):
        return RadosStore(conf=conf, pool=pool, native_aio=True,
                          namespace=f"micro-{ns}-{tag}-{os.getpid()}")
    provider, c = local(mk("d"), mk("m"))
    c.create("v", 64 << 20)
    provider.vlmcd.ttl = 1e9        # no MAPW round trip mid-run (the fake never completes)
    b = provider.open("v", None)
    for off in range(0, 4 << 20, 4096):
        b.pwrite(b"x" * 4096, off)  # real MAPWs: the map cache is warm
    aio = b.store.conn().aio
    rados_aio.lib = Fake(rados_aio.lib)
    if hasattr(rados_aio, "_ra_read"):      # module-bound since 941ef32
        rados_aio._ra_read = rados_aio._ra_write = Fake.ra_read
    time.sleep(1.2)                 # the drainer is now in the fake ra_wait
    s1, s2 = socket.socketpair()
    neg = types.SimpleNamespace(export=types.SimpleNamespace(backend=b, name="v"),
                                flags=proto.TF_HAS_FLAGS | proto.TF_SEND_FLUSH
                                | proto.TF_SEND_FUA, structured=False, meta=())
    sess = Session(s1, neg, "micro")
    times = {}

    def run():
        sess.run()
        times["conn"] = time.thread_time()
    th = threading.Thread(target=run)
    th.start()
    aio._drainer = threading.get_ident()    # after_batch: this thread is the drainer
    cbs = aio._cbs
    cmd = proto.CMD_WRITE if write else proto.CMD_READ
    payload = b"y" * 4096 if write else b""
    rlen = 16 if write else 16 + 4096

    def batch(i):
        s2.sendall(b"".join(
            REQ.pack(proto.REQUEST_MAGIC, 0, cmd, i * QD + k,
                     ((i * QD + k) * 4096) % (4 << 20), 4096) + payload
            for k in range(QD)))
        while len(cbs) < QD:        # the connection thread submitted them all
            time.sleep(0)           # (lets go of the GIL: no 5 ms switch interval)
        t0 = time.thread_time()
        for t in list(cbs):
            cbs.pop(t)[0](4096)
        if aio._after:
            after, aio._after = aio._after, []
            for fn in after:
                fn()
        dt = time.thread_time() - t0
        got = 0
        while got < QD * rlen:
            got += len(s2.recv(1 << 20))
        return dt
    best = min(sum(batch(r * N + i) for i in range(N)) / (N * QD) * 1e6
               for r in range(ROUNDS))
    s2.sendall(REQ.pack(proto.REQUEST_MAGIC, 0, proto.CMD_DISC, 0, 0, 0))
    th.join()
    conn = times["conn"] / (ROUNDS * N * QD) * 1e6
    print(f"{tag} {mode}: completion side {best:.2f} us/req (min of {ROUNDS}), connection "
          f"thread {conn:.2f} us/req (mean) load={os.getloadavg()[0]:.1f}", flush=True)
    os._exit(0)                     # the drainer sleeps in the fake ra_wait


if __name__ == "__main__":
    main()
