"""The image part of the VolumeService contract: the in-memory twin and the engine
behave the same (import with dedup figures, O(1) clones, adopting a clone, removing
an image keeps its clones)."""
import pytest
from test_nas_volumes import engine_service

from archipelago import errors
from archipelago_nas.volumes.memory import MemoryVolumeService

M = 1 << 20


@pytest.fixture(params=["memory", "engine"])
def svc(request, tmp_path):
    s = MemoryVolumeService() if request.param == "memory" else engine_service(tmp_path)
    yield s
    s.close()


def raw(path, blocks, size=16 * M):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in blocks.items():
            f.seek(off)
            f.write(data)
    return str(path)


def test_import_clone_adopt_remove(svc, tmp_path):
    seen = []
    st = svc.import_image("pool", "img", raw(tmp_path / "a", {0: b"a" * M}), 16 * M,
                          progress=lambda done, total: seen.append(done))
    assert st["size"] == 16 * M and st["stored"] == st["added"] == M and seen[-1] == 16 * M
    st = svc.import_image("pool", "img2", raw(tmp_path / "b", {4 * M: b"a" * M}), 16 * M)
    assert st["stored"] == M and st["added"] == 0                 # the same block
    with pytest.raises(errors.Exists):
        svc.import_image("pool", "img", raw(tmp_path / "c", {}), 16 * M)
    info = svc.clone_image("pool", "img", "vm", 32 * M)
    assert info.created and info.size == 32 * M
    again = svc.clone_image("pool", "img", "vm", 16 * M)            # adopted
    assert not again.created and again.size == 32 * M
    with pytest.raises(errors.InvalidArgument, match="smaller than"):
        svc.clone_image("pool", "img", "vm", 64 * M)
    with pytest.raises(errors.Exists, match="not a clone of image img2"):
        svc.clone_image("pool", "img2", "vm", 32 * M)
    svc.ensure("pool", "plain", 16 * M)
    with pytest.raises(errors.Exists, match="not a clone"):
        svc.clone_image("pool", "img", "plain", 16 * M)
    assert svc.remove_image("pool", "img") == ["vm"]
    assert svc.exists("pool", "vm")
    with pytest.raises(errors.NotFound):
        svc.remove_image("pool", "img")
    svc.remove("pool", "vm")
