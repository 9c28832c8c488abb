"""Crash safety of the volume engine over a FileStore: a child process doing writes,
snapshots, clones, removes and GC is killed with SIGKILL at random points; after each
kill every acknowledged write reads back (old-or-new only for the one operation in
flight), every map loads, and the next process takes the volumes over and goes on."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archipelago.errors import NotFound
from archipelago.store.file import FileStore
from archipelago.volume import VolumeEngine

CHILD = Path(__file__).with_name("volume_crash_child.py")
ROUNDS = int(os.environ.get("VOLUME_CRASH_ROUNDS", "8"))


class Model:
    def __init__(self):
        self.vols = {}          # name -> bytearray
        self.snaps = {}         # "vol@snap" -> bytes

    def apply(self, rec):
        kind = rec["kind"]
        if kind == "create":
            self.vols[rec["vol"]] = bytearray(rec["size"])
        elif kind == "write":
            buf = self.vols[rec["vol"]]
            buf[rec["off"]:rec["off"] + rec["len"]] = bytes([rec["val"]]) * rec["len"]
        elif kind == "snapshot":
            self.snaps[f"{rec['vol']}@{rec['snap']}"] = bytes(self.vols[rec["vol"]])
        elif kind == "clone":
            self.vols[rec["vol"]] = bytearray(self.snaps[rec["src"]])
        elif kind == "remove":
            self.snaps.pop(rec["spec"], None)


def replay(model, journal):
    """Apply acknowledged operations; return the one in flight (or None)."""
    pending = None
    for line in Path(journal).read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            break                          # a torn last line: not acknowledged
        if rec["op"] == "begin":
            pending = rec
        elif rec["op"] == "done":
            model.apply(pending)
            pending = None
    return pending


def read_all(eng, spec, size):
    return eng.read(spec, 0, size)


def check_and_settle(eng, model, pending):
    """Check the store against the model; fold the in-flight operation in as the
    store has it (it may or may not have happened, but never half)."""
    if pending is not None and pending["kind"] == "write":
        vol = pending["vol"]
        old = bytes(model.vols[vol])
        new = bytearray(old)
        new[pending["off"]:pending["off"] + pending["len"]] = bytes([pending["val"]]) * \
            pending["len"]
        got = read_all(eng, vol, len(old))
        bad = [i for i in range(len(old)) if got[i] != old[i] and got[i] != new[i]]
        assert not bad, f"{vol}: garbage at {bad[:5]} after a crash during a write"
        model.vols[vol] = bytearray(got)
    elif pending is not None and pending["kind"] in ("snapshot", "clone", "create"):
        spec = (f"{pending['vol']}@{pending['snap']}" if pending["kind"] == "snapshot"
                else pending["vol"])
        try:
            eng.info(spec)
            model.apply(pending)           # it happened
        except NotFound:
            pass
    elif pending is not None and pending["kind"] == "remove":
        try:
            eng.info(pending["spec"])
        except NotFound:
            model.apply(pending)
    for vol, data in model.vols.items():
        assert read_all(eng, vol, len(data)) == bytes(data), f"{vol} lost a write"
    for spec, data in model.snaps.items():
        assert read_all(eng, spec, len(data)) == bytes(data), f"{spec} changed"
    for info in eng.list():                # every map loads
        eng.read(info.name, 0, min(info.size, 1 << 20))
        for snap in info.snapshots:
            eng.info(f"{info.name}@{snap}")


@pytest.mark.slow
def test_kill_9_during_writes_snapshots_and_gc(tmp_path):
    root, journal = tmp_path / "store", tmp_path / "journal"
    rnd = random.Random(int(os.environ.get("VOLUME_CRASH_SEED", "7")))
    model = Model()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for rnd_no in range(ROUNDS):
        journal.write_text("")
        proc = subprocess.Popen([sys.executable, str(CHILD), str(root), str(journal),
                                 str(rnd_no)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while '"ready"' not in journal.read_text():
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "child did not start"
                time.sleep(0.05)
            time.sleep(rnd.uniform(0.1, 2.0))
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        pending = replay(model, journal)
        store = FileStore(root)
        eng = VolumeEngine(store, owner="checker:1")
        try:
            check_and_settle(eng, model, pending)
        finally:
            eng.locks.close(release=False)
            store.close()
    assert model.vols
