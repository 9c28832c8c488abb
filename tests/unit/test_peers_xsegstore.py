"""XsegStore over the blocker role passes the ObjectStore contract (in-process wire)."""
import pytest
from store_contract import *  # noqa: F403

from archipelago.peers.blocker import Blocker
from archipelago.peers.transport import LocalTransport
from archipelago.peers.xsegstore import XsegStore
from archipelago.store.file import FileStore
from archipelago.store.memory import MemoryStore


@pytest.fixture(params=["memory", "file"])
def backing(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else FileStore(tmp_path / "s")
    yield s
    s.close()


@pytest.fixture
def store(backing):
    t = LocalTransport()
    t.bind(1000, Blocker(backing))
    return XsegStore(t, 1000)


def test_list_pages(backing, store, monkeypatch):
    import archipelago.peers.xsegstore as X
    monkeypatch.setattr(X, "LIST_PAGE", 3)
    names = {f"obj{i:02d}" for i in range(10)}
    for n in names:
        backing.put_if_absent(n, b"x")
    assert set(store.list("obj")) == names
