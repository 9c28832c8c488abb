"""Peer configuration sections, the spec they build, and payload envelopes."""
import pytest

from archipelago import config as C
from archipelago.errors import ConfigError, InvalidArgument
from archipelago.peer import payload
from archipelago.peer.config import XSEG, port_range, role_section, spec

ROLE = role_section("blockerb", "data blocker", [
    C.Option("archip_dir", "/srv/archip", C.path, "objects"),
])


def test_role_section_extends_the_common_options():
    cfg = C.from_text("[blockerb]\nportno_start = 1000\nportno_end = 1003\nnr_threads = 4\n"
                      "log_level = debug\narchip_dir = /tmp/x\n")
    opts = cfg.section(ROLE)
    assert (opts.portno_start, opts.nr_threads, opts.nr_ops, opts.log_level) == \
        (1000, 4, 1024, "debug")
    assert port_range(opts) == (1000, 1003)
    assert str(opts.archip_dir) == "/tmp/x"


@pytest.mark.parametrize("text, msg", [
    ("[blockerb]\nportno_strat = 1\n", "unknown setting 'portno_strat'"),
    ("[blockerb]\nnr_threads = -1\n", "nr_threads"),
    ("[blockerb]\nlog_level = loud\n", "log_level"),
])
def test_bad_role_settings_name_the_key(text, msg):
    with pytest.raises(ConfigError, match=msg):
        C.from_text(text).section(ROLE)


def test_port_range_checks():
    cfg = C.from_text("[blockerb]\nportno_start = 10\nportno_end = 5\n")
    with pytest.raises(ConfigError, match="below"):
        port_range(cfg.section(ROLE))
    with pytest.raises(ConfigError, match="portno_start is not set"):
        port_range(C.from_text("").section(ROLE))


def test_xseg_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHIPELAGO_RUN_DIR", str(tmp_path))
    x = C.from_text("[XSEG]\nSEGMENT_PORTS = 512\nSEGMENT_DYNPORTS = 128\n"
                    "SEGMENT_SIZE = 64\n").section(XSEG)
    s = spec(x)
    assert s.startswith("posix:archipelago-") and s.endswith(":128:512:64:12:4096")
    import xseg
    assert xseg.parse_spec(s)["nr_ports"] == 512


def test_payload_round_trip_and_malformed():
    buf = bytearray(100)
    env = payload.encode({"src": "obj-a", "n": [1, 2]}, b"\0raw")
    buf[:len(env)] = env
    header, raw = payload.decode(memoryview(buf)[:len(env)])
    assert header == {"src": "obj-a", "n": [1, 2]} and bytes(raw) == b"\0raw"
    assert payload.size({"a": 1}) == len(payload.encode({"a": 1}))
    for bad in (b"", b"\x05\0\0\0{}", b"\x02\0\0\0{x"):
        with pytest.raises(InvalidArgument, match="malformed payload"):
            payload.decode(bad)
