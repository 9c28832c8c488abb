"""format.Reader's chunked reading: records cut by chunk ends, payloads that stay
valid (views into chunks never reused), truncation, pipes grown."""
import io
import os
import random

import pytest

from archipelago.sync import format as F


class Trickle(io.RawIOBase):
    """A raw stream that returns at most `step` bytes per read (a slow pipe)."""

    def __init__(self, data, step):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.step, len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def _stream(payloads):
    out = io.BytesIO()
    w = F.Writer(out)
    w.begin({"format": 2, "volume": "v"})
    for i, p in enumerate(payloads):
        w.data(i << 20, p)
        w.zero((i << 20) + len(p), 512)
    w.end()
    return out.getvalue()


@pytest.mark.parametrize("chunk,step", [(64, 7), (1000, 999), (5000, 1 << 20), (1 << 20, 3)])
def test_records_across_chunk_ends_stay_valid(monkeypatch, chunk, step):
    monkeypatch.setattr(F, "READ_CHUNK", chunk)
    rnd = random.Random(chunk + step)
    payloads = [rnd.randbytes(rnd.randrange(1, 3000)) for _ in range(40)]
    raw = _stream(payloads)
    r = F.Reader(Trickle(raw, step))
    r.preamble()
    assert r.next().type == F.BEGIN
    got = []
    while (rec := r.next()).type != F.END:
        if rec.type == F.DATA:
            got.append(rec.payload)         # kept, not copied: must not change
    assert [bytes(p) for p in got] == payloads
    assert r.bytes == len(raw)


def test_truncated_anywhere_is_truncated_or_corrupt(monkeypatch):
    monkeypatch.setattr(F, "READ_CHUNK", 256)
    raw = _stream([b"x" * 700, b"y" * 300])
    for cut in range(0, len(raw), 37):
        r = F.Reader(Trickle(raw[:cut], 50))
        with pytest.raises(F.StreamTruncated):
            r.preamble()
            while r.next().type != F.END:
                pass


def test_reader_grows_a_pipe():
    rfd, wfd = os.pipe()
    try:
        with os.fdopen(rfd, "rb", closefd=False) as f:
            F.Reader(f)
            size = F.fcntl.fcntl(rfd, 1032)         # F_GETPIPE_SZ
        assert size >= 65536                        # grown where the system allows
    finally:
        os.close(rfd)
        os.close(wfd)
