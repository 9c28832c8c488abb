"""The ObjectStore contract against FileStore, plus its on-disk specifics: fan-out
layout, names never used as paths unchecked, atomic replace, fd cache limits."""
import os

import pytest
from store_contract import *  # noqa: F403

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
    assert parts[0] == "objects" and len(parts[1]) == 2 and len(parts[2]) == 2
    assert parts[3] == "obj-1"


def test_dot_names_stay_inside(store, tmp_path):
    for name in (".", "..", "..."):
        store.replace(name, b"in")
    assert not (tmp_path / "in").exists()
    for p in _files(store.root):
        assert p.startswith(("objects", "leases"))
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
