"""Child process of test_volume_crash.py: runs the engine over a FileStore and does
random writes, snapshots, clones, removes and GC until it is killed (kill -9).

Every operation is journalled as "begin" before and "done" after it returns (an
unbuffered os.write: it survives the kill), so the parent knows what was
acknowledged and which single operation may have been in flight.
"""
import json
import os
import random
import sys

from archipelago.errors import Busy
from archipelago.store.file import FileStore
from archipelago.volume import VolumeEngine

K = 1024


def main(root, journal, seed):
    rnd = random.Random(seed)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(rec):
        os.write(fd, (json.dumps(rec) + "\n").encode())

    store = FileStore(root)
    eng = VolumeEngine(store, owner=f"crash:{seed}", lease_ttl=30, gc_grace=0)
    vols = [i.name for i in eng.list() if not i.image]
    for name in vols:
        eng.unlock(name, force=True)          # the killed predecessor held them
    for i in range(2):
        name = f"r{seed}v{i}"
        log({"op": "begin", "kind": "create", "vol": name, "size": 4 << 20})
        eng.create(name, 4 << 20, object_size=rnd.choice([64 * K, 256 * K]))
        log({"op": "done"})
        vols.append(name)
    log({"op": "ready"})
    n = 0
    while True:
        n += 1
        vol = rnd.choice(vols)
        size = eng.info(vol).size
        r = rnd.random()
        if r < 0.75:
            off = rnd.randrange(0, size - 1)
            length = rnd.randrange(1, min(size - off, 300 * K) + 1)
            val = n % 251 + 1
            log({"op": "begin", "kind": "write", "vol": vol, "off": off, "len": length,
                 "val": val})
            eng.write(vol, off, bytes([val]) * length)
        elif r < 0.85:
            snap = f"s{seed}x{n}"
            log({"op": "begin", "kind": "snapshot", "vol": vol, "snap": snap})
            eng.snapshot(vol, snap)
        elif r < 0.92:
            snaps = eng.info(vol).snapshots
            if not snaps:
                continue
            snap = rnd.choice(snaps)
            if rnd.random() < 0.5:
                clone = f"c{seed}x{n}"
                log({"op": "begin", "kind": "clone", "src": f"{vol}@{snap}", "vol": clone})
                eng.clone(f"{vol}@{snap}", clone)
                vols.append(clone)
            else:
                log({"op": "begin", "kind": "remove", "spec": f"{vol}@{snap}"})
                eng.remove(f"{vol}@{snap}")
        else:
            log({"op": "begin", "kind": "gc"})
            try:
                eng.gc()
            except Busy:
                pass                # a killed predecessor's GC lease has not expired
        log({"op": "done"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
