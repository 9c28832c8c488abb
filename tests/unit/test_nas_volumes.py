"""VolumeService contract: the in-memory twin and the engine+NBD implementation
behave the same for everything the NAS daemon relies on."""
import types

import pytest

from archipelago import config, errors
from archipelago_nas.volumes.memory import MemoryVolumeService


def engine_service(tmp_path):
    from archipelago_nas.volumes.engine import EngineVolumeService
    cfg = config.from_text("[node]\nname = nas-0-0\n[nas]\nvolumes = engine\n"
                           "nbd_listen = 127.0.0.1\nnbd_host = 127.0.0.1\n"
                           "hosts = compute-0-0=127.0.0.1 compute-0-1=127.0.0.2\n")
    node = types.SimpleNamespace(cfg=cfg, state_dir=tmp_path, name="nas-0-0")
    return EngineVolumeService(node)


@pytest.fixture(params=["memory", "engine"])
def svc(request, tmp_path):
    s = MemoryVolumeService() if request.param == "memory" else engine_service(tmp_path)
    yield s
    s.close()


def test_ensure_creates_then_adopts(svc):
    info = svc.ensure("pool", "v1", 8 << 20)
    assert info.created and info.size == 8 << 20
    again = svc.ensure("pool", "v1", 4 << 20)
    assert not again.created and again.size == 8 << 20
    with pytest.raises(errors.InvalidArgument, match="smaller than"):
        svc.ensure("pool", "v1", 16 << 20)
    assert svc.exists("pool", "v1") and not svc.exists("other", "v1")
    assert [(v.pool, v.name) for v in svc.list()] == [("pool", "v1")]


def test_export_to_one_host(svc):
    svc.ensure("pool", "v1", 8 << 20)
    uri = svc.export("pool", "v1", "compute-0-0")
    assert uri.startswith("nbd://") and uri.endswith("/v1")
    assert svc.export("pool", "v1", "compute-0-0") == uri
    with pytest.raises(errors.Busy, match="exported to compute-0-0"):
        svc.export("pool", "v1", "compute-0-1")
    with pytest.raises(errors.Busy):
        svc.remove("pool", "v1")
    svc.unexport("pool", "v1")
    svc.unexport("pool", "v1")                     # idempotent
    svc.remove("pool", "v1")
    assert not svc.exists("pool", "v1")
    with pytest.raises(errors.NotFound):
        svc.remove("pool", "v1")
    with pytest.raises(errors.NotFound):
        svc.export("pool", "v1", "compute-0-0")


def test_engine_export_serves_data_and_restores(tmp_path):
    from archipelago.nbd.client import Client
    svc = engine_service(tmp_path)
    svc.ensure("pool", "v1", 8 << 20)
    uri = svc.export("pool", "v1", "compute-0-0")
    svc.engine("pool").write("v1", 0, b"hello")
    with Client.connect_uri(uri) as c:
        c.go("v1")
        assert c.size == 8 << 20
    svc.close()
    again = engine_service(tmp_path)               # daemon restart: same port, same data
    assert again.export("pool", "v1", "compute-0-0") == uri
    assert again.engine("pool").read("v1", 0, 5) == b"hello"
    again.close()
