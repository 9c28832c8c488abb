"""Peer configuration: embedded defaults, validation with clear messages."""
import pytest

from archipelago import config as C
from archipelago.errors import ConfigError
from archipelago.peers import config as PC


def test_embedded_default_is_a_single_node(run_dir):
    xseg, roles = PC.check(C.from_text(""))
    assert [r.name for r in roles] == ["blockerb", "blockerm", "mapperd", "vlmcd"]
    assert [r.type for r in roles] == ["filed", "filed", "mapperd", "vlmcd"]
    assert roles[0].opts.archip_dir == run_dir / "state" / "blocks"
    assert roles[1].opts.archip_dir == run_dir / "state" / "maps"
    assert xseg.segment_name.startswith("archipelago-")
    assert PC.find_type(roles, "vlmcd").port == 500


def test_segment_name_is_private_to_the_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIPELAGO_RUN_DIR", str(tmp_path / "a"))
    a = C.from_text("").section(PC.XSEG).segment_name
    monkeypatch.setenv("ARCHIPELAGO_RUN_DIR", str(tmp_path / "b"))
    assert a != C.from_text("").section(PC.XSEG).segment_name


def test_custom_roles_and_keys_are_case_insensitive(run_dir):
    cfg = C.from_text("""
[XSEG]
SEGMENT_SIZE = 64
[PEERS]
ROLES = data maps mapperd vlmcd
[data]
type = memd
portno_start = 10
[maps]
type = filed
portno_start = 12
archip_dir = /tmp/x
[mapperd]
blockerb_port = 10
blockerm_port = 12
[vlmcd]
mapper_port = 1001
blocker_port = 10
""")
    xseg, roles = PC.check(cfg)
    assert xseg.segment_size == 64 << 20
    assert roles[0].type == "memd" and roles[1].opts.archip_dir.name == "x"


@pytest.mark.parametrize("text,needle", [
    ("[PEERS]\nROLES = foo\n", "no [foo] section"),
    ("[PEERS]\nROLES = foo\n[foo]\nportno_start = 3\n", "type is missing"),
    ("[blockerb]\ntype = nfs\n", "must be one of"),
    ("[blockerb]\nportno_start = x\n", "portno_start"),
    ("[blockerb]\nfdcash = 3\n", "unknown setting 'fdcash'"),
    ("[vlmcd]\nportno_start = 1000\n", "port 1000 is also used by [blockerb]"),
    ("[mapperd]\nblockerb_port = 7\n", "blockerb_port = 7: no role"),
    ("[vlmcd]\nmapper_port = 1000\n", "expected mapperd"),
    ("[vlmcd]\nportno_start = 1500\n", "beyond"),
    ("[PEERS]\nORDER = vlmcd\n", "same roles"),
    ("[blockerb]\nportno_start = 9\nportno_end = 8\n", "below"),
    ("[mapperd]\nnr_threads = 0\n", "only for blockers"),
])
def test_bad_settings_name_the_section_and_key(run_dir, text, needle):
    with pytest.raises(ConfigError, match=None) as e:
        PC.check(C.from_text(text))
    assert needle in str(e.value)
