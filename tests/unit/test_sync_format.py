"""Sync stream framing, resume tokens and the token bucket (no volumes involved)."""
import io

import pytest

from archipelago.errors import InvalidArgument
from archipelago.sync import format as F
from archipelago.sync import token as T
from archipelago.sync.config import parse_hostport
from archipelago.sync.ratelimit import TokenBucket, parse_rate


def _stream(records):
    out = io.BytesIO()
    w = F.Writer(out)
    w.begin({"format": 1, "volume": "v"})
    for kind, off, arg in records:
        if kind == "D":
            w.data(off, arg)
        else:
            w.zero(off, arg)
    trailer = w.end()
    return out.getvalue(), trailer


def _read_all(raw):
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    recs = []
    while True:
        rec = r.next()
        recs.append((rec.type, rec.seq, rec.offset, rec.length, bytes(rec.payload)))
        if rec.type == F.END:
            return recs


def test_roundtrip_and_chain():
    raw, trailer = _stream([("D", 0, b"a" * 1000), ("Z", 4096, 8192), ("D", 65536, b"b")])
    recs = _read_all(raw)
    assert [r[0] for r in recs] == [F.BEGIN, F.DATA, F.ZERO, F.DATA, F.END]
    assert [r[1] for r in recs] == [0, 1, 2, 3, 4]
    assert recs[2][2:4] == (4096, 8192) and recs[2][4] == b""
    assert trailer["records"] == 4 and trailer["data_bytes"] == 1001
    assert trailer["zero_bytes"] == 8192
    # the chain is recomputable from the records' digests
    c = F.Counts()
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    while (rec := r.next()).type != F.END:
        c.add(rec.type, rec.length, rec.digest)
    assert c.to_json() == trailer


def test_every_flipped_byte_is_detected():
    raw, _ = _stream([("D", 0, bytes(range(256)) * 4), ("Z", 1024, 512)])
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 0x40
        with pytest.raises(F.StreamError):
            _read_all(bytes(bad))


def test_every_truncation_is_detected():
    raw, _ = _stream([("D", 0, b"x" * 3000)])
    for cut in range(len(raw)):
        with pytest.raises(F.StreamTruncated):
            _read_all(raw[:cut])


def test_missing_record_breaks_the_sequence():
    raw, _ = _stream([("D", 0, b"x" * 10), ("D", 512, b"y" * 10)])
    first = F.PREAMBLE.size + F.RECORD_HEAD + len(F.dumps({"format": 1, "volume": "v"}))
    rec = F.RECORD_HEAD + 10
    with pytest.raises(F.StreamCorrupt, match="out of order"):
        _read_all(raw[:first] + raw[first + rec:])


def test_version_and_magic():
    raw, _ = _stream([])
    with pytest.raises(F.StreamCorrupt, match="magic"):
        _read_all(b"NOTASYNC" + raw[8:])
    bad = F.PREAMBLE.pack(F.MAGIC, 99, 0) + raw[F.PREAMBLE.size:]
    with pytest.raises(F.StreamCorrupt, match="version 99"):
        _read_all(bad)


def test_token_roundtrip_and_damage():
    state = {"volume": "v", "from": "aa" * 8, "from_name": "s1", "to": "bb" * 8,
             "to_name": "s2", "seq": 7, "offset": 1 << 20,
             "counts": F.Counts(6, 100, 0).to_json()}
    tok = T.encode(state)
    assert tok.startswith("1-") and T.decode(tok) == state
    for bad in (tok[:-1] + ("0" if tok[-1] != "0" else "1"), tok[:10], "junk", "",
                tok.replace("1-", "2-", 1)):
        with pytest.raises(InvalidArgument):
            T.decode(bad)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


@pytest.mark.parametrize("rate", [64 << 10, 1 << 20, 50 << 20])
@pytest.mark.parametrize("piece", [4096, 65584, 1 << 20])
def test_token_bucket_holds_the_rate_within_10_percent(rate, piece):
    clk = FakeClock()
    tb = TokenBucket(rate, clock=clk, sleep=clk.sleep)
    total = 0
    while clk.now < 20 or total < 20 * piece:
        tb.take(piece)
        total += piece
        clk.now += 1e-6                # the work between two takes
    measured = total / clk.now
    assert 0.9 * rate <= measured <= 1.1 * rate


def test_token_bucket_after_idle_allows_only_a_burst():
    clk = FakeClock()
    tb = TokenBucket(1 << 20, clock=clk, sleep=clk.sleep)
    clk.now = 100.0                   # idle for a long time
    start = clk.now
    for _ in range(100):
        tb.take(64 << 10)
    assert (100 * (64 << 10)) / (clk.now - start) <= 1.1 * (1 << 20)


@pytest.mark.parametrize("text,want", [
    ("50M", 50 << 20), ("1.5G", 3 << 29), ("800K", 800 << 10), ("2048B", 2048),
    ("10", 10 << 20), ("50M/s", 50 << 20), (None, None), ("0", None), ("", None),
])
def test_parse_rate(text, want):
    assert parse_rate(text) == want


@pytest.mark.parametrize("text", ["fast", "-5M", "M"])
def test_parse_rate_rejects(text):
    with pytest.raises(InvalidArgument):
        parse_rate(text)


def test_parse_hostport():
    assert parse_hostport("nas1:9000") == ("nas1", 9000)
    assert parse_hostport("nas1", 7450) == ("nas1", 7450)
    assert parse_hostport("[::1]:80") == ("::1", 80)
    for bad in ("", "host:x", "host:70000", ":80"):
        with pytest.raises(InvalidArgument):
            parse_hostport(bad)


def test_progress_bar_only_when_asked(capsys):
    from archipelago.sync.progress import Progress
    bar = Progress(1000, "send v@s", enabled=True)
    bar.update(600)
    bar.update(400)
    bar.close()
    assert "send v@s" in capsys.readouterr().err
    quiet = Progress(1000, "send v@s")          # stderr is not a terminal here
    quiet.update(1000)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_writer_with_a_checksum_pool_writes_the_same_stream():
    import io
    import random
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(4)
    recs = [(i * 65536, rng.randbytes(rng.choice([1, 4096, 65536]))) for i in range(40)]

    def stream(pool):
        out = io.BytesIO()
        w = F.Writer(out, pool=pool, window=3)
        w.begin({"format": 1})
        for k, (off, data) in enumerate(recs):
            buf = bytearray(data)
            w.data(off, memoryview(buf))
            buf[:] = bytes(len(buf))        # the caller reuses its buffer at once
            if k % 7 == 0:
                w.zero(off + 60000, 10)
        trailer = w.end()
        return out.getvalue(), trailer

    with ThreadPoolExecutor(3) as pool:
        assert stream(pool) == stream(None)


# Frozen test vectors: the bytes of one small stream in each format version.
VECTORS = {
    1: ("d6388516f0480731f0f04f86ee8511db4e56e1d307cc35b0f0c92c94fc9f1aae",
        "c0e8fd1a1f38e01672a223124be1e42a"),
    2: ("026ddffc0cb839736bab18a25b1c4798c4b09276a6369b1819de27d146881fdb",
        "64606c9a92e558f7c11ba83385ec1343"),
}


def _vector_stream(version):
    out = io.BytesIO()
    w = F.Writer(out, version=version)
    w.begin({"format": version, "volume": "v"})
    w.data(0, b"a" * 1000)
    w.zero(4096, 8192)
    w.data(65536, b"b")
    trailer = w.end()
    return out.getvalue(), trailer


@pytest.mark.parametrize("version", [1, 2])
def test_format_vectors(version):
    import hashlib
    raw, trailer = _vector_stream(version)
    assert (hashlib.sha256(raw).hexdigest(), trailer["chain"]) == VECTORS[version]
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    assert r.version == version
    recs = _read_all(raw)
    assert [x[0] for x in recs] == [F.BEGIN, F.DATA, F.ZERO, F.DATA, F.END]
    c = F.Counts(version=version)
    r = F.Reader(io.BytesIO(raw))
    r.preamble()
    while (rec := r.next()).type != F.END:
        c.add(rec.type, rec.length, rec.digest)
    assert c.to_json() == trailer


def test_writers_emit_version_2_and_a_v1_record_under_v2_fails():
    raw, _ = _stream([("D", 0, b"x" * 100)])
    assert F.PREAMBLE.unpack(raw[:F.PREAMBLE.size])[1] == F.VERSION == 2
    v1, _ = _vector_stream(1)
    # the same records with the preamble's version changed: every checksum fails
    relabelled = F.PREAMBLE.pack(F.MAGIC, 2, 0) + v1[F.PREAMBLE.size:]
    with pytest.raises(F.StreamCorrupt, match="checksum mismatch"):
        _read_all(relabelled)


def test_counts_continue_only_in_their_version():
    with pytest.raises(ValueError):
        F.Writer(io.BytesIO(), counts=F.Counts(version=1), version=2)
    assert F.Writer(io.BytesIO(), counts=F.Counts(version=1)).version == 1
    with pytest.raises(F.StreamCorrupt, match="version 3"):
        F.Counts(version=3)


def test_token_carries_the_format_and_old_tokens_mean_version_1():
    state = {"volume": "v", "from": None, "from_name": None, "to": "bb" * 8,
             "to_name": "s2", "seq": 3, "offset": 0, "counts": F.Counts().to_json()}
    assert "format" not in T.decode(T.encode(state))            # a version-1 token
    assert T.decode(T.encode({**state, "format": 1})) == state
    assert T.decode(T.encode({**state, "format": 2}))["format"] == 2
