"""volume.images.import_image: a raw file straight into a named, hashed image; dedup
across images, holes and zero blocks take nothing, O(1) clones that leave it intact."""
import os

import pytest

from archipelago.errors import Exists, InvalidArgument, ReadOnly
from archipelago.store.file import FileStore
from archipelago.volume import VolumeEngine
from archipelago.volume.images import import_image

M = 1 << 20


@pytest.fixture
def eng(tmp_path):
    e = VolumeEngine(FileStore(tmp_path / "store"), owner="test:1", gc_grace=0)
    yield e
    e.shutdown()


def raw(path, size, blocks):
    """A sparse file of `size` bytes with {offset: bytes} written."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in blocks.items():
            f.seek(off)
            f.write(data)
    return path


def imp(eng, name, path, **kw):
    with open(path, "rb") as f:
        return import_image(eng, name, f, os.path.getsize(path), **kw)


def test_import_reads_back_and_skips_holes_and_zeros(eng, tmp_path):
    a, b = os.urandom(M), os.urandom(4096)
    p = raw(tmp_path / "a.raw", 40 * M + 1000, {0: a, 13 * M: bytes(2 * M), 40 * M: b[:1000]})
    seen = []
    info, st = imp(eng, "img", p, progress=lambda done, total: seen.append((done, total)))
    assert info.image and info.read_only and info.size == 40 * M + 1024
    assert st["objects"] == 2 and st["stored"] == st["added"] == M + 1000
    assert eng.read("img", 0, M) == a and eng.read("img", 40 * M, 1000) == b[:1000]
    assert eng.read("img", 13 * M, 2 * M) == bytes(2 * M)
    assert seen[-1] == (40 * M + 1000, 40 * M + 1000)
    assert eng.hash("img") == "img"                     # already content-addressed
    with pytest.raises(ReadOnly):
        eng.write("img", 0, b"x")


def test_identical_blocks_are_stored_once(eng, tmp_path):
    shared, own = os.urandom(4 * M), os.urandom(4 * M)
    _, st1 = imp(eng, "one", raw(tmp_path / "1", 16 * M, {0: shared, 8 * M: own}))
    _, st2 = imp(eng, "two", raw(tmp_path / "2", 16 * M, {4 * M: shared, 8 * M: shared}))
    assert st1["added"] == 8 * M
    assert st2["stored"] == 4 * M and st2["added"] == 0
    assert len(list(eng.store.list("vc."))) == 2


def test_clone_is_writable_and_leaves_the_image_alone(eng, tmp_path):
    data = os.urandom(M)
    imp(eng, "base", raw(tmp_path / "b", 8 * M, {0: data}))
    eng.clone("base", "vm1", 16 * M)
    assert eng.read("vm1", 0, M) == data
    eng.write("vm1", 100, b"changed")
    assert eng.read("base", 0, M) == data
    assert eng.read("vm1", 100, 7) == b"changed"
    eng.remove("base")                                # clones stay intact
    eng.gc()
    assert eng.read("vm1", 0, 100) == data[:100]
    assert eng.read("vm1", 107, 1000) == data[107:1107]


def test_bad_input(eng, tmp_path):
    p = raw(tmp_path / "x", M, {0: b"x"})
    imp(eng, "x", p)
    with pytest.raises(Exists):
        imp(eng, "x", p)
    with pytest.raises(InvalidArgument):
        imp(eng, "../x", p)
    with pytest.raises(InvalidArgument):
        imp(eng, "y", p, object_size=3 * M)
