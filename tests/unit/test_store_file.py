"""The ObjectStore contract against FileStore, plus its on-disk specifics: fan-out
layout, names never used as paths unchecked, atomic replace, fd cache limits."""
import os

import pytest
from store_contract import *  # noqa: F403

from archipelago.errors import BackendError, InvalidArgument
from archipelago.store.file import FileStore


@pytest.fixture
def store(tmp_path):
    s = FileStore(tmp_path / "store", fdcache=8)
    yield s
    s.close()


@pytest.fixture
def store2(tmp_path, store):
    """A second, independent handle on the same directory (as another process)."""
    s = FileStore(tmp_path / "store")
    yield s
    s.close()


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def test_fanout_layout(store):
    store.write("obj-1", 0, b"x")
    path = [p for p in _files(store.root) if p.startswith("objects")]
    assert len(path) == 1
    parts = path[0].split(os.sep)
    assert parts[0] == "objects" and len(parts[1]) == 2 and parts[2] == "obj-1"
    assert store.layout == 2
    assert (open(os.path.join(store.root, "layout")).read().strip()) == "2"


def test_store_without_layout_file_keeps_the_old_fanout(tmp_path):
    """A store made before layout files (objects/XX/YY/NAME) is read and written as it
    was, also after a reopen; a new store gets layout 2 whoever opens it first."""
    import hashlib
    root = tmp_path / "old"
    h = hashlib.sha256(b"old-obj").hexdigest()
    d = root / "objects" / h[:2] / h[2:4]
    d.mkdir(parents=True)
    (d / "old-obj").write_bytes(b"before")
    s = FileStore(root)
    assert s.layout == 1 and not (root / "layout").exists()
    assert s.read("old-obj", 0, 6) == b"before"
    s.write("new-obj", 0, b"after")
    s.close()
    s = FileStore(root)
    h = hashlib.sha256(b"new-obj").hexdigest()
    assert (root / "objects" / h[:2] / h[2:4] / "new-obj").exists()
    assert sorted(s.list()) == ["new-obj", "old-obj"]
    s.close()
    a, b = FileStore(tmp_path / "new"), FileStore(tmp_path / "new")
    assert a.layout == b.layout == 2
    a.write("x", 0, b"1")
    a.flush()
    assert b.read("x", 0, 1) == b"1" and list(b.list()) == ["x"]
    a.close()
    b.close()


def test_unknown_layout_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "layout").write_text("9\n")
    with pytest.raises(BackendError, match="unknown object layout"):
        FileStore(tmp_path / "s")


def test_dot_names_stay_inside(store, tmp_path):
    for name in (".", "..", "..."):
        store.replace(name, b"in")
    assert not (tmp_path / "in").exists()
    for p in _files(store.root):
        assert p.startswith(("objects", "leases")) or p == "layout"
    assert sorted(store.list()) == [".", "..", "..."]


def test_fd_cache_is_bounded(store):
    for i in range(50):
        store.write(f"o{i}", 0, bytes([i]) * 10)
    assert len(store._fds) <= 8
    for i in range(50):
        assert store.read(f"o{i}", 0, 10) == bytes([i]) * 10
    store.flush()


def test_no_temp_files_left(store):
    store.replace("m", b"1")
    store.put_if_absent("c", b"2")
    store.put_if_absent("c", b"3")
    store.copy("m", "n")
    assert not [p for p in _files(store.root) if os.path.basename(p).startswith("#")]


def test_copy_keeps_holes(store):
    store.write("sparse", 8 << 20, b"x")
    store.flush()
    store.copy("sparse", "copy")
    st = os.stat(os.path.join(store._dir("copy"), "copy"))
    assert st.st_size == (8 << 20) + 1
    assert st.st_blocks * 512 < (1 << 20)


def test_reopen_sees_everything(tmp_path):
    s = FileStore(tmp_path / "s")
    s.write("a", 0, b"abc")
    s.replace("m", b"map")
    lease = s.lease_acquire("vol", "me", 30)
    s.close()
    s = FileStore(tmp_path / "s")
    assert s.read("a", 0, 3) == b"abc" and s.get("m") == b"map"
    assert s.lease_inquire("vol") == lease
    s.close()


def test_cleanup_temp_removes_only_old_leftovers(store):
    store.replace("m", b"x")
    d = store._dir("m")
    old, new = os.path.join(d, "#tmp-old"), os.path.join(d, "#tmp-new")
    for p in (old, new):
        with open(p, "wb") as f:
            f.write(b"partial")
    os.utime(old, (1, 1))
    assert store.cleanup_temp(older_than=3600) == 1
    assert not os.path.exists(old) and os.path.exists(new)
    assert list(store.list()) == ["m"]


def test_replace_survives_kill_9(tmp_path):
    """A process replacing an object in a loop is killed: the object is always one
    whole version, never torn, and the store opens fine."""
    import signal
    import subprocess
    import sys
    import time
    root = tmp_path / "s"
    code = ("import sys\nfrom archipelago.store.file import FileStore\n"
            "s = FileStore(sys.argv[1])\ni = 0\n"
            "while True:\n    i += 1\n    s.replace('m', bytes([i % 251 + 1]) * 300000)\n"
            "    s.write('d', 0, bytes([i % 251 + 1]) * 8192)\n"
            "    print(i, flush=True)\n")
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        p.stdout.readline()
        time.sleep(0.3)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        s = FileStore(root)
        data = s.get("m")
        assert len(data) == 300000 and len(set(data)) == 1
        assert len(set(s.read("d", 0, 8192))) == 1
        assert sorted(s.list()) == ["d", "m"]
        s.close()


def _count_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a):
        calls.append(a)
        return real(*a)
    monkeypatch.setattr(module, name, counted)
    return calls


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def clean_machine(monkeypatch):
    """No other dirty data on the machine (the syncfs choice looks at it)."""
    import archipelago.store.file as F
    monkeypatch.setattr(F, "_system_dirty", lambda: 0)


def test_system_dirty_reads_meminfo():
    import archipelago.store.file as F
    assert F._system_dirty() >= 0


def test_a_big_flush_is_one_syncfs_and_closes_the_evicted(tmp_path, monkeypatch,
                                                          clean_machine):
    import archipelago.store.file as F
    s = FileStore(tmp_path / "store", fdcache=32, syncfs_min=16)
    before = _open_fds()
    for i in range(40):                 # 8 evicted (retired), 32 still cached
        s.write(f"o{i}", 0, bytes([i]) * 100)
    syncfs = _count_calls(monkeypatch, F, "_libc_syncfs")
    fdatasync = _count_calls(monkeypatch, F.os, "fdatasync")
    s.flush()
    assert len(syncfs) == 1 and fdatasync == []
    assert s._retired == [] and s._dirty_dirs == set()
    assert _open_fds() <= before + 32   # the evicted fds were closed
    s.flush()                           # nothing dirty: nothing to sync
    assert len(syncfs) == 1
    s.close()
    s = FileStore(tmp_path / "store")
    assert [s.read(f"o{i}", 0, 100) for i in range(40)] == \
        [bytes([i]) * 100 for i in range(40)]
    s.close()


@pytest.mark.parametrize("syncfs_min,files", [(16, 5), (0, 100)],
                         ids=["few-files", "syncfs-off"])
def test_flushes_that_go_file_by_file(tmp_path, monkeypatch, clean_machine, syncfs_min,
                                      files):
    import archipelago.store.file as F
    s = FileStore(tmp_path / "store", syncfs_min=syncfs_min)
    for i in range(files):
        s.write(f"o{i}", 0, b"x")
    syncfs = _count_calls(monkeypatch, F, "_libc_syncfs")
    fdatasync = _count_calls(monkeypatch, F.os, "fdatasync")
    s.flush()
    assert syncfs == [] and len(fdatasync) == files
    s.close()


def test_others_dirty_data_means_file_by_file(tmp_path, monkeypatch):
    """syncfs would write everything dirty on the filesystem: with far more dirty
    data on the machine than the store wrote, the flush goes file by file."""
    import archipelago.store.file as F
    s = FileStore(tmp_path / "store", syncfs_min=8)
    for i in range(20):
        s.write(f"o{i}", 0, b"x" * 4096)
    monkeypatch.setattr(F, "_system_dirty", lambda: 1 << 30)
    syncfs = _count_calls(monkeypatch, F, "_libc_syncfs")
    fdatasync = _count_calls(monkeypatch, F.os, "fdatasync")
    s.flush()
    assert syncfs == [] and len(fdatasync) == 20
    for i in range(20):
        s.write(f"p{i}", 0, b"x" * 4096)
    monkeypatch.setattr(F, "_system_dirty", lambda: 20 * 4096 + (1 << 20))
    s.flush()                               # only its own (and a little more)
    assert len(syncfs) == 1 and len(fdatasync) == 20
    s.close()


def test_a_failed_syncfs_falls_back_to_file_by_file_for_good(tmp_path, monkeypatch,
                                                             clean_machine):
    import archipelago.store.file as F
    s = FileStore(tmp_path / "store", fdcache=16, syncfs_min=8)
    for i in range(20):
        s.write(f"o{i}", 0, bytes([i]))

    def eio(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(F, "_libc_syncfs", eio)
    fdatasync = _count_calls(monkeypatch, F.os, "fdatasync")
    s.flush()                   # this flush's files still synced, each on its own fd
    assert len(fdatasync) == 20 and s._retired == [] and s._sbfd is None
    for i in range(20):
        s.write(f"p{i}", 0, b"y")
    s.flush()
    assert len(fdatasync) == 40
    s.close()
    s = FileStore(tmp_path / "store")
    assert s.read("o7", 0, 1) == bytes([7]) and s.read("p19", 0, 1) == b"y"
    s.close()


def test_the_syncfs_option_reaches_the_filed_store(tmp_path):
    from archipelago.peers import blocker
    names = [o.name for o in blocker.OPTIONS]
    assert "syncfs_min" in names


def test_readinto_cached_reads_only_what_the_page_cache_holds(store):
    store.write("o", 0, b"a" * 8192)
    buf = bytearray(b"?" * 12288)
    assert store.readinto_cached("o", 0, buf) and bytes(buf) == b"a" * 8192 + bytes(4096)
    buf = bytearray(b"?" * 10)
    assert store.readinto_cached("none", 0, buf) and bytes(buf) == bytes(10)
    store.flush()
    fd = os.open(store._path("o"), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)   # clean pages: dropped
    finally:
        os.close(fd)
    assert store.readinto_cached("o", 0, bytearray(4096)) is False
    assert store.read("o", 4096, 4) == b"aaaa"
    with pytest.raises(InvalidArgument):
        store.readinto_cached("../x", 0, bytearray(1))


def test_new_objects_opened_once_still_have_their_entries_synced(tmp_path):
    s = FileStore(tmp_path / "store", fdcache=1, syncfs_min=0)
    s.write("a", 0, b"1")           # a miss that creates: creates are tried first now
    s.flush()
    assert s._dirty_dirs == set()
    s.write("b", 0, b"2")           # created by the O_EXCL open
    assert os.path.dirname(s._path("b")) in s._dirty_dirs
    s.write("a", 1, b"3")           # exists, not cached: EEXIST, then opened
    assert s._misses_create is False
    s.flush()
    assert s._dirty_dirs == set()
    s.close()
    s = FileStore(tmp_path / "store")
    assert s.read("a", 0, 2) == b"13" and s.read("b", 0, 1) == b"2"
    s.close()
