"""send/receive between two in-process nodes (client.local over memory stores)."""
import io
import os
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archipelago import client, sync
from archipelago.errors import Exists, InvalidArgument, NotFound
from archipelago.store.memory import MemoryStore
from archipelago.sync import format as F

MiB = 1 << 20
K64 = 64 << 10
SIZE = 8 * MiB


def node():
    return client.local(MemoryStore())


def write(c, vol, data, off):
    with c.volume(vol) as v:
        v.pwrite(data, off)
        v.flush()


def read(c, spec):
    with c.volume(spec, readonly=True) as v:
        return v.pread(v.size, 0)


def stream(c, spec, **kw):
    out = io.BytesIO()
    stats = sync.send(c, spec, out, **kw)
    return out.getvalue(), stats


SPOOL_MAX = None          # the staging of incremental streams: None = the default
SPOOLED = 1 << 40         # spool_max that spools every incremental stream here


def recv(c, vol, raw, state_dir, **kw):
    kw.setdefault("spool_max", SPOOL_MAX)
    return sync.receive(c, vol, io.BytesIO(raw), state_dir=str(state_dir), **kw)


@pytest.fixture(params=["spool", "clone"])
def staging(request, monkeypatch):
    """Run a test with incremental streams spooled, then staged in a clone volume."""
    monkeypatch.setattr(sys.modules[__name__], "SPOOL_MAX",
                        SPOOLED if request.param == "spool" else 0)
    return request.param


def _begin(raw):
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    return r.next().json()


def fingerprint(c, vol):
    """Everything a receive may not change before it commits."""
    info = c.info(vol)
    snaps = [(s, c.info(f"{vol}@{s}")["guid"]) for s in info["snapshots"]]
    return info["size"], snaps, read(c, vol), sorted(c.list())


@pytest.fixture
def pair(tmp_path):
    """(source, target, state dir): v@s1 on both, then 20 scattered 64 KiB writes,
    a zeroed 128 KiB run and v@s2 on the source."""
    rng = random.Random(5)
    a, b = node(), node()
    a.create("v", SIZE)
    write(a, "v", rng.randbytes(2 * MiB), 2 * MiB)
    a.snapshot("v", "s1")
    raw, _ = stream(a, "v@s1")
    recv(b, "v", raw, tmp_path)
    for i in rng.sample(range(SIZE // K64), 20):
        write(a, "v", rng.randbytes(K64), i * K64)
    write(a, "v", bytes(2 * K64), 3 * MiB)
    a.snapshot("v", "s2")
    return a, b, tmp_path


def test_full_then_incremental_is_identical(pair, staging):
    a, b, sd = pair
    assert read(b, "v@s1") == read(a, "v@s1")
    assert b.info("v@s1")["guid"] == a.info("v@s1")["guid"]
    raw, _ = stream(a, "v@s2", from_snap="s1")
    job = sync.Job.open(b, "v", _begin(raw), str(sd), spool_max=SPOOL_MAX)
    assert job.spooled == (staging == "spool")
    assert ("v.recv-" in " ".join(b.list())) == (staging == "clone")
    job.abort()
    res = recv(b, "v", raw, sd)
    assert res["snapshot"] == "s2" and not res["resumed"]
    assert read(b, "v@s2") == read(a, "v@s2") == read(b, "v")
    assert b.info("v@s2")["guid"] == a.info("v@s2")["guid"]
    assert b.info("v")["snapshots"] == ["s1", "s2"]
    assert [n for n in b.list() if "recv" in n] == []      # the staging volume is gone
    assert sync.resume_token(str(sd), "v") is None


def test_stream_size_is_about_the_changed_bytes(pair):
    a, _b, _sd = pair
    changed = sum(n for _, n in a.diff("v@s1", "v@s2"))
    raw, stats = stream(a, "v@s2", from_snap="s1")
    assert changed <= 22 * K64                       # sub-object diff, not 4 MiB objects
    assert stats["zero_bytes"] >= 2 * K64            # the zeroed run went as a Z record
    assert stats["data_bytes"] + stats["zero_bytes"] == changed
    assert len(raw) <= 1.02 * stats["data_bytes"] + 4096


def test_full_stream_of_a_thin_volume_is_small(tmp_path):
    a, b = node(), node()
    a.create("big", 64 * MiB)
    write(a, "big", os.urandom(K64), 50 * MiB)
    a.snapshot("big", "s")
    raw, stats = stream(a, "big@s")
    assert len(raw) < 2 * K64 and stats["data_bytes"] == K64
    recv(b, "big", raw, tmp_path)
    assert read(b, "big@s") == read(a, "big@s")


def test_resize_travels(pair, staging):
    a, b, sd = pair
    a.resize("v", SIZE + 3 * MiB)
    write(a, "v", b"q" * K64, SIZE + MiB)
    a.snapshot("v", "s3")
    raw, _ = stream(a, "v@s2", from_snap="s1")
    recv(b, "v", raw, sd)
    raw, _ = stream(a, "v@s3", from_snap="s2")
    recv(b, "v", raw, sd)
    assert b.info("v@s3")["size"] == SIZE + 3 * MiB
    assert read(b, "v@s3") == read(a, "v@s3")
    a.resize("v", SIZE - MiB)
    a.snapshot("v", "s4")
    raw, _ = stream(a, "v@s4", from_snap="s3")
    recv(b, "v", raw, sd)
    assert read(b, "v@s4") == read(a, "v@s4")


_CACHE = {}


def _fresh_target(a, b, sd):
    """A new target volume on b holding v@s1, and the cached v@s1 -> v@s2 stream."""
    key = a.info("v@s2")["guid"]
    if key not in _CACHE:
        _CACHE[key] = (stream(a, "v@s1")[0], stream(a, "v@s2", from_snap="s1")[0])
    full, incr = _CACHE[key]
    name = f"t{len(b.list())}"
    recv(b, name, full, sd)
    return name, incr


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_flipped_byte_anywhere_changes_nothing(pair, staging, data):
    a, b, sd = pair
    vol, raw = _fresh_target(a, b, sd)
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    bit = data.draw(st.integers(0, 7), label="bit")
    bad = bytearray(raw)
    bad[pos] ^= 1 << bit
    before = fingerprint(b, vol)
    with pytest.raises(F.StreamError):
        recv(b, vol, bytes(bad), sd)
    assert fingerprint(b, vol)[:3] == before[:3]
    sync.abort(b, str(sd), vol)
    assert fingerprint(b, vol) == before


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_truncated_stream_changes_nothing_and_resumes(pair, staging, data):
    a, b, sd = pair
    vol, raw = _fresh_target(a, b, sd)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    before = fingerprint(b, vol)
    with pytest.raises(F.StreamError) as ei:
        recv(b, vol, raw[:cut], sd, checkpoint=(0, 1))
    assert fingerprint(b, vol)[:3] == before[:3]
    token = getattr(ei.value, "token", None)
    if token is None:                   # cut inside the preamble/begin: start over
        assert sync.resume_token(str(sd), vol) is None
        recv(b, vol, raw, sd)
    else:
        assert sync.resume_token(str(sd), vol) == token
        rest, stats = stream(a, "v@s2", resume=token)
        assert stats["resumed"]
        res = recv(b, vol, rest, sd)
        assert res["resumed"]
    assert read(b, f"{vol}@s2") == read(a, "v@s2")


def test_resume_with_an_older_token_and_a_fresh_restart(pair, staging):
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    with pytest.raises(sync.Interrupted) as first:
        recv(b, "v", raw[:len(raw) // 3], sd, checkpoint=(0, 1))
    with pytest.raises(sync.Interrupted) as second:
        rest, _ = stream(a, "v@s2", resume=first.value.token)
        recv(b, "v", rest[:len(rest) // 2], sd, checkpoint=(0, 1))
    assert second.value.token != first.value.token
    rest, _ = stream(a, "v@s2", resume=first.value.token)   # the older one still works
    recv(b, "v", rest, sd)
    assert read(b, "v@s2") == read(a, "v@s2")


def test_a_fresh_stream_replaces_an_interrupted_one(pair):
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    with pytest.raises(sync.Interrupted):
        recv(b, "v", raw[:len(raw) // 2], sd, checkpoint=(0, 1))
    recv(b, "v", raw, sd)
    assert read(b, "v@s2") == read(a, "v@s2")


def test_resume_refusals(pair):
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    with pytest.raises(sync.Interrupted) as ei:
        recv(b, "v", raw[:len(raw) // 2], sd, checkpoint=(0, 1))
    with pytest.raises(InvalidArgument, match="resume token"):
        stream(a, "v@s1", resume=ei.value.token)          # not the token's snapshot
    rest, _ = stream(a, "v@s2", resume=ei.value.token)
    sync.abort(b, str(sd), "v")
    with pytest.raises(NotFound, match="no interrupted receive"):
        recv(b, "v", rest, sd)


def test_base_mismatch_is_refused_and_force_rolls_back(pair, staging):
    a, b, sd = pair
    raw2, _ = stream(a, "v@s2", from_snap="s1")
    write(b, "v", b"local" * 1000, 0)                     # the target moved on
    before = fingerprint(b, "v")
    with pytest.raises(sync.BaseMismatch, match="modified since"):
        recv(b, "v", raw2, sd)
    assert fingerprint(b, "v") == before
    b.snapshot("v", "mine")
    with pytest.raises(sync.BaseMismatch, match="not the newest"):
        recv(b, "v", raw2, sd)
    assert fingerprint(b, "v") == before[:1] + fingerprint(b, "v")[1:2] + before[2:]
    recv(b, "v", raw2, sd, force=True)
    assert b.info("v")["snapshots"] == ["s1", "s2"]        # "mine" was rolled back
    assert read(b, "v") == read(a, "v@s2") == read(b, "v@s2")


def test_unrelated_base_is_refused_even_with_force(tmp_path):
    a, b = node(), node()
    for c in (a, b):
        c.create("v", 4 * MiB)
        c.snapshot("v", "s1")                             # same name, other identity
    a.snapshot("v", "s2")
    raw, _ = stream(a, "v@s2", from_snap="s1")
    with pytest.raises(sync.BaseMismatch, match="is not a snapshot of v"):
        recv(b, "v", raw, tmp_path, force=True)


def test_full_stream_refuses_an_existing_volume_and_repeat_is_refused(pair):
    a, b, sd = pair
    raw, _ = stream(a, "v@s1")
    with pytest.raises(Exists):
        recv(b, "v", raw, sd)
    raw2, _ = stream(a, "v@s2", from_snap="s1")
    recv(b, "v", raw2, sd)
    with pytest.raises(Exists):
        recv(b, "v", raw2, sd)


def test_receive_into_another_name_and_from_forms(pair):
    a, b, sd = pair
    raw, _ = stream(a, "v@s1")
    recv(b, "copy", raw, sd)
    raw2, _ = stream(a, "v@s2", from_snap="v@s1")
    recv(b, "copy", raw2, sd)
    assert read(b, "copy@s2") == read(a, "v@s2")
    with pytest.raises(InvalidArgument):
        stream(a, "v@s2", from_snap="other@s1")
    with pytest.raises(InvalidArgument, match="needs a snapshot"):
        stream(a, "v")


def test_trailer_mismatch_aborts(pair):
    a, b, sd = pair
    out = io.BytesIO()
    w = F.Writer(out)
    p = sync.plan(a, "v@s2", "s1")
    w.begin(p.header)
    w.data(0, b"x" * 512)                 # carries less than the header's total
    w.end()
    before = fingerprint(b, "v")
    with pytest.raises(F.StreamCorrupt, match="carried"):
        recv(b, "v", out.getvalue(), sd)
    assert fingerprint(b, "v") == before and sync.resume_token(str(sd), "v") is None


@pytest.mark.parametrize("step", ["adopt", "copy_ranges", "apply_spool"])
def test_a_crash_during_the_commit_is_finished_by_the_next_receive(pair, monkeypatch,
                                                                   step):
    """A crash after the adopt (VOL's head is the stage's, no snapshot yet), in the
    middle of the copy that replaces it on an older mapperd, or of a spool's apply."""
    from archipelago.errors import Unsupported
    from archipelago.sync import sink, stage
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    mod = {"apply_spool": sink, "copy_ranges": stage, "adopt": b}[step]
    real = getattr(mod, step)

    def half_then_crash(*args, **kw):
        if step == "copy_ranges":
            real(*args[:3], args[3][:len(args[3]) // 2])
        elif step == "adopt":
            real(*args)
        raise KeyboardInterrupt("power cut")

    def older_mapperd(*args):
        raise Unsupported("mapperd: unknown call 'adopt'")

    monkeypatch.setattr(mod, step, half_then_crash)
    if step == "copy_ranges":
        monkeypatch.setattr(b, "adopt", older_mapperd)
    with pytest.raises(KeyboardInterrupt):
        recv(b, "v", raw, sd, spool_max=SPOOLED if step == "apply_spool" else 0)
    assert b.info("v")["snapshots"] == ["s1"]
    monkeypatch.setattr(mod, step, real)
    with pytest.raises(Exists):                   # finishes the commit, then: s2 exists
        recv(b, "v", raw, sd)
    assert b.info("v")["snapshots"] == ["s1", "s2"]
    assert read(b, "v@s2") == read(a, "v@s2") == read(b, "v")
    assert sync.resume_token(str(sd), "v") is None


def test_commit_verifies_a_spool_it_did_not_write_itself(pair, monkeypatch):
    """A fresh spool was verified record by record on arrival: its commit does not hash
    it again; a commit run again after a crash (another process) verifies it."""
    from archipelago.sync import sink
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    seen = []
    real = sink.apply_spool

    def spy(*args, **kw):
        seen.append(kw.get("verified"))
        if len(seen) == 1:
            raise KeyboardInterrupt("power cut")
        return real(*args, **kw)

    monkeypatch.setattr(sink, "apply_spool", spy)
    with pytest.raises(KeyboardInterrupt):
        recv(b, "v", raw, sd, spool_max=SPOOLED)
    with pytest.raises(Exists):                   # the re-run finishes the commit
        recv(b, "v", raw, sd)
    assert seen == [True, False]
    assert read(b, "v@s2") == read(a, "v@s2")


def test_engine_client_in_process(tmp_path):
    """The daemons' path: sync over VolumeEngines they hold, no peers."""
    from archipelago.sync.local import EngineClient
    from archipelago.volume import VolumeEngine
    a = EngineClient(VolumeEngine(MemoryStore(), owner="nas:a"))
    b = EngineClient(VolumeEngine(MemoryStore(), owner="nas:b"))
    a.create("e", 16 * MiB)
    write(a, "e", os.urandom(MiB), 3 * MiB)
    a.snapshot("e", "s1")
    recv(b, "e", stream(a, "e@s1")[0], tmp_path)
    write(a, "e", os.urandom(K64), 9 * MiB)
    a.snapshot("e", "s2")
    raw, stats = stream(a, "e@s2", from_snap="s1")
    assert stats["data_bytes"] == K64
    recv(b, "e", raw, tmp_path)
    assert read(b, "e@s2") == read(a, "e@s2") == read(b, "e")


def test_one_receive_per_volume_at_a_time(pair):
    from archipelago.errors import Busy
    from archipelago.sync.stage import locked
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")
    with locked(str(sd), "v"):
        with pytest.raises(Busy, match="another receive into v"):
            recv(b, "v", raw, sd)
        with pytest.raises(Busy):
            sync.abort(b, str(sd), "v")
        recv(b, "other", stream(a, "v@s1")[0], sd)      # another volume is fine
    recv(b, "v", raw, sd)
    assert read(b, "v@s2") == read(a, "v@s2")


def _version(raw):
    return F.PREAMBLE.unpack(raw[:F.PREAMBLE.size])[1]


def test_a_version_1_stream_is_received_and_resumed_in_version_1(pair, staging,
                                                                   monkeypatch):
    """A stream from an older sender (format 1) is received; the resume token of its
    interruption (without a format: as an older receiver's) makes a current sender
    continue it in format 1."""
    from archipelago.sync import token as T
    a, b, sd = pair
    monkeypatch.setattr(F, "VERSION", 1)            # an older sender
    raw1, _ = stream(a, "v@s2", from_snap="s1")
    monkeypatch.undo()
    assert _version(stream(a, "v@s2", from_snap="s1", version=1)[0]) == 1
    assert _version(raw1) == 1 and _version(stream(a, "v@s2", from_snap="s1")[0]) == 2
    with pytest.raises(sync.Interrupted) as ei:
        recv(b, "v", raw1[:len(raw1) // 2], sd, checkpoint=(0, 1))
    # a format-1 token is what an older receiver makes: no "format" in it
    assert "format" not in T.decode(ei.value.token)
    rest, stats = stream(a, "v@s2", resume=ei.value.token)
    assert _version(rest) == 1 and stats["resumed"]
    recv(b, "v", rest, sd)
    assert read(b, "v@s2") == read(a, "v@s2") == read(b, "v")


def test_a_resume_in_another_format_is_refused_clearly(pair, monkeypatch):
    a, b, sd = pair
    raw, _ = stream(a, "v@s2", from_snap="s1")                    # format 2
    with pytest.raises(sync.Interrupted) as ei:
        recv(b, "v", raw[:len(raw) // 2], sd, checkpoint=(0, 1))
    from archipelago.sync import token as T
    tok = T.decode(ei.value.token)
    tok["format"] = 1                  # a token claiming format 1 for a format-2 job
    rest, _ = stream(a, "v@s2", resume=T.encode(tok))
    assert _version(rest) == 1
    before = fingerprint(b, "v")
    with pytest.raises(InvalidArgument, match="format 2 stream, the resumed one format 1"):
        recv(b, "v", rest, sd)
    assert fingerprint(b, "v") == before
    with pytest.raises(InvalidArgument, match="format 2 stream, not format 1"):
        stream(a, "v@s2", resume=ei.value.token, version=1)
    rest, _ = stream(a, "v@s2", resume=ei.value.token)            # the right token
    recv(b, "v", rest, sd)
    assert read(b, "v@s2") == read(a, "v@s2")
