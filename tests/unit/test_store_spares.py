"""Spare object files (store/spares.py): a FileStore's new objects renamed into place
from pre-made empty files; never over an existing object, crash-safe as O_CREAT,
and the store works as before when there are none."""
import errno
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from archipelago import client, sync
from archipelago.store import spares
from archipelago.store.file import FileStore

MiB = 1 << 20


def _ready(store, n, timeout=10.0):
    """Wait until the store's pool holds `n` spares (made by its background thread)."""
    end = time.monotonic() + timeout
    while len(store._spares) < n:
        assert time.monotonic() < end, f"{len(store._spares)} spares of {n}"
        time.sleep(0.01)


def _spare_files(store):
    d = os.path.join(store.root, spares.DIRNAME)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.fixture
def store(tmp_path):
    s = FileStore(tmp_path / "s")
    yield s
    s.close()


def test_no_spares_creates_as_before(store):
    store.write("a", 0, b"hello")
    assert store.read("a", 0, 5) == b"hello"
    assert store._spares.taken == 0 and _spare_files(store) == []


def test_new_objects_take_spares_then_create(store):
    assert store.reserve_spares(3)
    _ready(store, 3)
    assert len(_spare_files(store)) == 3
    for i in range(5):                      # 3 from spares, 2 created (pool empty)
        store.write(f"o{i}", 10, b"data%d" % i)
    assert store._spares.taken == 3 and _spare_files(store) == []
    for i in range(5):
        assert store.read(f"o{i}", 0, 15) == bytes(10) + b"data%d" % i
    assert sorted(store.list()) == [f"o{i}" for i in range(5)]
    # the spare directory lost names: the flush fsyncs it with the objects' dirs
    assert os.path.join(store.root, spares.DIRNAME) in store._dirty_dirs
    store.flush()
    assert not store._dirty_dirs


def test_existing_object_is_never_overwritten(tmp_path, store):
    """An object made by another process after this one found it missing: the spare
    stays a spare and the write goes into the existing object."""
    other = FileStore(tmp_path / "s")
    try:
        store.reserve_spares(1)
        _ready(store, 1)
        path = store._path("x")
        other.write("x", 0, b"theirs-and-more")
        fd = store._new_object(path)        # as _get_fd does after its failed open
        try:
            os.pwrite(fd, b"mine", 0)
        finally:
            os.close(fd)
        assert other.read("x", 0, 15) == b"miners-and-more"
        assert len(store._spares) == 1 and len(_spare_files(store)) == 1
        with pytest.raises(FileExistsError):
            store._spares.claim(path)
        assert len(store._spares) == 1
        assert other.read("x", 0, 15) == b"miners-and-more"
    finally:
        other.close()


def test_spare_taken_elsewhere_is_skipped(tmp_path, store):
    """Two processes share the spare directory: one whose spare was taken (or cleaned
    up) meanwhile goes on to the next one, then to creating."""
    store.reserve_spares(2)
    _ready(store, 2)
    other = FileStore(tmp_path / "s")
    try:
        assert other.reserve_spares(2)      # adopts the same two files
        assert len(other._spares) == 2
        other.write("p", 0, b"p")
        other.write("q", 0, b"q")
        assert other._spares.taken == 2 and _spare_files(store) == []
        store.write("r", 0, b"r")           # both of its spares gone: created
        assert store._spares.taken == 0
        assert [store.read(n, 0, 1) for n in "pqr"] == [b"p", b"q", b"r"]
    finally:
        other.close()


def test_rename_noreplace_refuses_an_existing_target(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    with pytest.raises(FileExistsError):
        spares.rename_noreplace(a, b)
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    spares.rename_noreplace(a, tmp_path / "c")
    assert not a.exists() and (tmp_path / "c").read_bytes() == b"A"


def test_pool_switches_off_where_noreplace_is_unsupported(store, monkeypatch):
    store.reserve_spares(2)
    _ready(store, 2)

    def einval(src, dst):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(spares, "rename_noreplace", einval)
    store.write("a", 0, b"a")
    assert store.read("a", 0, 1) == b"a"
    assert not store._spares.enabled and store._spares.taken == 0
    assert not store.reserve_spares(5)
    assert len(_spare_files(store)) == 2      # untouched, for a process that can


def test_without_renameat2_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(spares, "_renameat2", None)
    s = FileStore(tmp_path / "s")
    try:
        assert not s.reserve_spares(4)
        s.write("a", 0, b"a")
        assert s.read("a", 0, 1) == b"a" and _spare_files(s) == []
    finally:
        s.close()


def test_cleanup_removes_old_spares_only(store):
    store.reserve_spares(3)
    _ready(store, 3)
    old = os.path.join(store.root, spares.DIRNAME, _spare_files(store)[0])
    os.utime(old, (1, 1))
    assert store.cleanup_temp(older_than=3600) == 1
    assert len(_spare_files(store)) == 2
    for i in range(3):                      # the removed one is skipped
        store.write(f"o{i}", 0, b"x")
    assert store._spares.taken == 2
    assert sorted(store.list()) == ["o0", "o1", "o2"]


_CHILD = """
import os, sys, time
from archipelago.store.file import FileStore
s = FileStore(sys.argv[1])
s.write("old", 0, b"acknowledged")
s.flush()
s.reserve_spares(int(sys.argv[3]))
while len(s._spares) < int(sys.argv[2]):
    time.sleep(0.001)
if sys.argv[4] == "after-rename":
    def die(*a):
        os.kill(os.getpid(), 9)
    os.pwrite = die              # killed between the rename and the first write
print("ready", flush=True)
s.write("new", 0, b"never acknowledged")
print("written", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("when", ["after-rename", "filling"])
def test_kill_9_leaves_no_half_object(tmp_path, when):
    """kill -9 between a spare's rename and the object's first write: the object is
    there, empty (as after O_CREAT and no write), reads as zeros; kill -9 while the
    pool is being filled: stray spares only, which list() never shows and cleanup
    removes; acknowledged data intact either way."""
    root = tmp_path / "s"
    want = 1 if when == "after-rename" else 0
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), str(want),
                          "50000" if when == "filling" else "4", when],
                         stdout=subprocess.PIPE,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        assert p.stdout.readline() == b"ready\n"
        if when == "filling":
            time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
        assert p.wait(timeout=30) == -signal.SIGKILL
    finally:
        p.kill()
        p.stdout.close()
    if when == "filling":           # a `touch` of the killed filler may still run
        end, last = time.monotonic() + 10, None
        while last != os.listdir(root / spares.DIRNAME) and time.monotonic() < end:
            last = os.listdir(root / spares.DIRNAME)
            time.sleep(0.3)
    s = FileStore(root)
    try:
        assert s.read("old", 0, 12) == b"acknowledged"
        if when == "after-rename":
            assert sorted(s.list()) == ["new", "old"]
            assert s.stat("new") == 0 and s.read("new", 0, 18) == bytes(18)
        else:
            assert "old" in s.list()
        left = _spare_files(s)
        assert left and all(f.startswith(spares.PREFIX) for f in left)
        assert all(os.path.getsize(os.path.join(root, spares.DIRNAME, f)) == 0
                   for f in left)
        assert s.cleanup_temp(older_than=-1) == len(left)
        assert _spare_files(s) == []
        s.write("again", 0, b"fine")
        assert s.read("again", 0, 4) == b"fine"
    finally:
        s.close()


def test_receive_writes_new_objects_from_spares(tmp_path):
    """A real incremental receive on an in-process FileStore reserves spares as the
    stream starts and its writes take them; the received snapshot reads as sent."""
    import random
    a = client.local(FileStore(tmp_path / "a" / "blocks"), FileStore(tmp_path / "a" / "maps"))
    b = client.local(FileStore(tmp_path / "b" / "blocks"), FileStore(tmp_path / "b" / "maps"))
    direct = FileStore(tmp_path / "b" / "blocks")
    b._direct_open = lambda: direct
    rng = random.Random(5)
    a.create("v", 16 * MiB)
    with a.volume("v") as v:
        v.pwrite(rng.randbytes(8 * MiB), 0)
        v.flush()
    a.snapshot("v", "s1")
    out = io.BytesIO()
    sync.send(a, "v@s1", out)
    sync.receive(b, "v", io.BytesIO(out.getvalue()), state_dir=str(tmp_path / "st"))
    with a.volume("v") as v:
        for i in rng.sample(range(256), 30):
            v.pwrite(rng.randbytes(64 << 10), i * (64 << 10))
        v.flush()
    a.snapshot("v", "s2")
    taken = direct._spares.taken
    out = io.BytesIO()
    sync.send(a, "v@s2", out, from_snap="s1")
    sync.receive(b, "v", io.BytesIO(out.getvalue()), state_dir=str(tmp_path / "st"))
    assert direct._spares.taken > taken
    with a.volume("v@s2", readonly=True) as va, b.volume("v@s2", readonly=True) as vb:
        assert va.pread(16 * MiB, 0) == vb.pread(16 * MiB, 0)
    direct.close()
