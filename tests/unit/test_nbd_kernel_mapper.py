"""The mapper's rules (idempotence, busy refusal, stale records, cleanup) against an
in-memory twin connector and a real in-process nbdd."""
import pytest

from archipelago import config
from archipelago.errors import BackendError, Busy, InvalidArgument, NotFound, Unavailable
from archipelago.nbd.testing import serve
from archipelago_kernel import mapper as mapper_mod
from archipelago_kernel.connector import Connector, choose
from archipelago_kernel.state import State


class FakeConnector(Connector):
    """Attaches nothing; remembers what it 'attached' (os-brick's fake connector)."""

    name = "fake"
    attached = {}
    counter = 0

    @classmethod
    def available(cls):
        return True, ""

    def attach(self, mapping, work_dir):
        if mapping.volume == "boom":
            (work_dir / "partial").write_text("x")
            raise BackendError("attach failed")
        FakeConnector.counter += 1
        mapping.device = f"/dev/fake{FakeConnector.counter}"
        self.attached[mapping.id] = mapping.device
        return mapping

    def detach(self, mapping, force=False):
        self.attached.pop(mapping.id, None)

    def alive(self, mapping):
        return self.attached.get(mapping.id) == mapping.device


class Broken(FakeConnector):
    name = "broken"

    @classmethod
    def available(cls):
        return False, "not here"


@pytest.fixture
def m(run_dir):
    FakeConnector.attached.clear()
    cfg = config.from_text(f"[node]\nrun_dir = {run_dir}\n")
    with serve(memory={"vol": 1 << 20, "other": 1 << 20, "boom": 1 << 20},
               status_path=str(run_dir / "nbdd.json")):
        yield mapper_mod.Mapper(cfg, table={"broken": Broken, "fake": FakeConnector})


def test_map_is_idempotent_and_recorded(m, run_dir):
    a = m.map("vol")
    assert a.method == "fake" and a.uri.startswith("nbd+unix:///vol?socket=")
    assert m.map("vol").id == a.id
    with pytest.raises(Busy, match="read-write"):
        m.map("vol", read_only=True)
    # a new Mapper (a restart) sees the same record
    again = mapper_mod.Mapper(m.cfg, table=m.table)
    assert [(x.id, alive) for x, alive in again.showmapped()] == [(a.id, True)]


def test_unmap_by_device_volume_or_id_and_idempotent(m):
    a, b = m.map("vol"), m.map("other")
    assert [x.id for x in m.unmap(a.device)] == [a.id]
    assert m.unmap(a.device) == [] and m.unmap("vol") == []
    assert [x.id for x in m.unmap(b.id)] == [b.id]
    assert m.showmapped() == []


def test_unmap_refuses_busy_unless_forced(m, monkeypatch):
    a = m.map("vol")
    monkeypatch.setattr(mapper_mod.devices, "busy", lambda dev: f"{dev} is mounted on /x")
    with pytest.raises(Busy, match="mounted"):
        m.unmap("vol")
    assert m.showmapped()[0][0].id == a.id
    m.unmap("vol", force=True)
    assert m.showmapped() == []


def test_stale_record_is_replaced(m):
    a = m.map("vol")
    FakeConnector.attached.clear()                  # the device vanished (reboot)
    assert m.showmapped()[0][1] is False
    b = m.map("vol")
    assert b.id != a.id and [x.id for x, _ in m.showmapped()] == [b.id]


def test_failed_map_cleans_up(m, run_dir):
    with pytest.raises(BackendError):
        m.map("boom")
    with pytest.raises(NotFound):
        m.map("nosuch")
    with pytest.raises(InvalidArgument):
        m.map("../etc/passwd")
    assert m.showmapped() == []
    assert not any(State(run_dir).work.iterdir())


def test_snapshot_maps_read_only(m, tmp_path):
    with serve(exports_dir=tmp_path, status_path=str(m.run_dir / "nbdd.json")):
        (tmp_path / "vol@s1").write_bytes(bytes(4096))
        assert m.map("vol@s1").read_only


def test_choose():
    table = {"broken": Broken, "fake": FakeConnector}
    assert choose(None, table) is FakeConnector
    with pytest.raises(Unavailable, match="not here"):
        choose("broken", table)
    with pytest.raises(InvalidArgument):
        choose("nope", table)
    with pytest.raises(Unavailable):
        choose(None, {"broken": Broken})
