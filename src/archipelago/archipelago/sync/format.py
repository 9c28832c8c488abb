"""The sync stream, format versions 1 and 2: framing, checksums, reader and writer.

docs/streams.md is the reference; in short (all integers big-endian):

    stream   = preamble begin record* end
    preamble = "ARCHSYNC" u16 version u16 flags                       (12 bytes)
    record   = head (32 bytes) digest (16 bytes) payload (payload_len bytes)
    head     = u8 type, u8 flags, u16 0, u32 seq, u64 offset, u64 length,
               u32 payload_len, u32 0
    digest   v1: BLAKE2b-128(head || payload), personalised "archsync.rec.v1"
             v2: SHA-256("archsync.rec.v2\0" || head || payload), first 16 bytes

Version 2 differs from 1 only in the hash (SHA-256 runs on the CPU's SHA
instructions, ~2.4x BLAKE2b here); writers emit version 2 unless told otherwise
(a resumed version-1 stream stays version 1), readers take both.

Types: B begin (payload: the JSON header), D data (payload: `length` bytes at
`offset`), Z zeros (`length` bytes at `offset` read as zeros; no payload), E end
(payload: the JSON trailer). `seq` counts records from 0, without gaps.

The whole-stream checksum is a chain over the records' digests, in order:
v1: chain = BLAKE2b-128(chain || digest), from BLAKE2b-128("", "archsync.chain1");
v2: chain = SHA-256("archsync.chain2\0" || chain || digest)[:16], from
SHA-256("archsync.chain2\0")[:16];
folding the B record of a fresh stream and every D and Z record. The trailer
carries the chain and the counts, so a record lost, repeated or reordered in
transit fails the stream even where each record is intact. A resumed stream
starts with its own B record (not chained) and continues the chain and the
counts from the resume token.
"""
import fcntl
import hashlib
import io
import json
import os
import stat
import struct
from collections import deque

from ..errors import ArchipelagoError

MAGIC = b"ARCHSYNC"
VERSION = 2                 # what writers emit
VERSIONS = (1, 2)           # what readers accept
PREAMBLE = struct.Struct(">8sHH")
HEAD = struct.Struct(">BBHIQQII")
DIGEST_SIZE = 16
RECORD_HEAD = HEAD.size + DIGEST_SIZE          # 48
MAX_PAYLOAD = 1 << 20                          # data records carry at most 1 MiB
MAX_META = 1 << 20                             # JSON header/trailer limit
READ_CHUNK = 4 << 20       # the Reader's chunks (one read call fills what has arrived)
PIPE_SIZE = 1 << 20        # a pipe carrying a stream is grown to this (Linux default max)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

BEGIN, DATA, ZERO, END = ord("B"), ord("D"), ord("Z"), ord("E")
TYPE_NAMES = {BEGIN: "begin", DATA: "data", ZERO: "zero", END: "end"}
_REC_PERSON = b"archsync.rec.v1"
_CHAIN_PERSON = b"archsync.chain1"
_REC_V2 = hashlib.sha256(b"archsync.rec.v2\0")        # copied per record
_CHAIN_V2 = hashlib.sha256(b"archsync.chain2\0")


class StreamError(ArchipelagoError):
    """A stream that cannot be applied (corrupt, truncated, wrong version)."""


class StreamCorrupt(StreamError):
    """A record failed its checksum, or the stream broke the format's rules."""


class StreamTruncated(StreamError):
    """The stream ended (or the connection broke) before its trailer."""


def check_version(version):
    if version not in VERSIONS:
        raise StreamCorrupt(f"stream format version {version} is not supported "
                            f"(this node reads versions {', '.join(map(str, VERSIONS))})")
    return version


def digest(head, payload=b"", version=VERSION):
    """The record checksum of `head` || `payload` in format `version`."""
    if version == 2:
        h = _REC_V2.copy()
        h.update(head)
    else:
        h = hashlib.blake2b(head, digest_size=DIGEST_SIZE, person=_REC_PERSON)
    if payload:
        h.update(payload)
    return h.digest()[:DIGEST_SIZE]


def chain_start(version=VERSION):
    if version == 2:
        return _CHAIN_V2.digest()[:DIGEST_SIZE]
    return hashlib.blake2b(b"", digest_size=DIGEST_SIZE, person=_CHAIN_PERSON).digest()


def chain_next(chain, rec_digest, version=VERSION):
    if version == 2:
        h = _CHAIN_V2.copy()
        h.update(chain + rec_digest)
        return h.digest()[:DIGEST_SIZE]
    return hashlib.blake2b(chain + rec_digest, digest_size=DIGEST_SIZE,
                           person=_CHAIN_PERSON).digest()


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Counts:
    """What a stream has carried so far: records chained, data and zero bytes, chain."""

    __slots__ = ("chain", "data_bytes", "records", "version", "zero_bytes")

    def __init__(self, records=0, data_bytes=0, zero_bytes=0, chain=None, version=VERSION):
        self.records, self.data_bytes, self.zero_bytes = records, data_bytes, zero_bytes
        self.version = check_version(version)
        self.chain = chain if chain is not None else chain_start(version)

    def add(self, rtype, length, rec_digest):
        self.records += 1
        if rtype == DATA:
            self.data_bytes += length
        elif rtype == ZERO:
            self.zero_bytes += length
        self.chain = chain_next(self.chain, rec_digest, self.version)

    def to_json(self):
        return {"records": self.records, "data_bytes": self.data_bytes,
                "zero_bytes": self.zero_bytes, "chain": self.chain.hex()}

    @classmethod
    def from_json(cls, d, version=VERSION):
        """Counts of a stream in format `version` (the JSON does not say which)."""
        try:
            return cls(int(d["records"]), int(d["data_bytes"]), int(d["zero_bytes"]),
                       bytes.fromhex(d["chain"]), version)
        except (KeyError, TypeError, ValueError):
            raise StreamCorrupt("bad stream counts") from None

    def copy(self):
        return Counts(self.records, self.data_bytes, self.zero_bytes, self.chain,
                      self.version)


class Writer:
    """Writes one stream to a binary file object. `before(n)` (the rate limiter)
    runs before every n bytes are written; `counts` continues a resumed stream.
    With `pool` (an executor), the checksums of up to `window` data records are
    computed there, in parallel (the hashes release the GIL), while the records
    are still written in order. `version`: the format written (a resumed stream
    keeps the version it started with: its counts say which)."""

    def __init__(self, out, before=None, counts=None, pool=None, window=8, version=None):
        self.out = out
        self.before = before or (lambda n: None)
        if version is None:
            version = counts.version if counts is not None else VERSION
        self.version = check_version(version)
        if counts is not None and counts.version != version:
            raise ValueError("the counts continue a stream of another format version")
        self.counts = counts or Counts(version=version)
        self.seq = 0
        self.bytes = 0
        self.pool, self.window = pool, window
        self.pending = deque()      # (rtype, length, head, payload, digest future)
        grow_pipe(out)

    def _put(self, rtype, offset, length, payload=b"", chained=True):
        head = HEAD.pack(rtype, 0, 0, self.seq, offset, length, len(payload), 0)
        self.seq += 1
        if self.pool is not None and rtype == DATA and chained:
            payload = bytes(payload)        # the caller may reuse its buffer
            self.pending.append((rtype, length, head, payload,
                                 self.pool.submit(digest, head, payload, self.version)))
            while len(self.pending) > self.window:
                self._write_pending()
            return
        self.drain()
        self._write(rtype, length, head, payload, digest(head, payload, self.version),
                    chained)

    def _write(self, rtype, length, head, payload, d, chained=True):
        self.before(RECORD_HEAD + len(payload))
        self.out.write(head + d)
        if payload:
            self.out.write(payload)
        self.bytes += RECORD_HEAD + len(payload)
        if chained:
            self.counts.add(rtype, length, d)

    def _write_pending(self):
        rtype, length, head, payload, fut = self.pending.popleft()
        self._write(rtype, length, head, payload, fut.result())

    def drain(self):
        """Write the records whose checksums are still being computed."""
        while self.pending:
            self._write_pending()

    def begin(self, header):
        """The preamble and the B record. A resumed stream's B record (header["resume"]
        set) takes the seq before the resume point and is not chained."""
        pre = PREAMBLE.pack(MAGIC, self.version, 0)
        self.before(len(pre))
        self.out.write(pre)
        self.bytes += len(pre)
        payload = dumps(header)
        resume = header.get("resume")
        if resume:
            self.seq = resume["seq"] - 1
            self._put(BEGIN, resume["offset"], 0, payload, chained=False)
        else:
            self.seq = 0
            self._put(BEGIN, 0, 0, payload)

    def data(self, offset, payload):
        self._put(DATA, offset, len(payload), payload)

    def zero(self, offset, length):
        self._put(ZERO, offset, length)

    def end(self):
        self.drain()
        trailer = self.counts.to_json()
        self._put(END, 0, 0, dumps(trailer), chained=False)
        self.out.flush()
        return trailer


class Record:
    __slots__ = ("digest", "head", "length", "offset", "payload", "seq", "type",
                 "version")

    def __init__(self, rtype, seq, offset, length, payload, rec_digest, version=VERSION):
        self.type, self.seq, self.offset, self.length = rtype, seq, offset, length
        self.payload, self.digest, self.version = payload, rec_digest, version
        self.head = None

    def verify(self, payload=None):
        """The deferred checksum (Reader.next(defer=True)) of this record, over
        `payload` (a copy of it) if given; StreamCorrupt on a mismatch."""
        if self.head is not None:
            _verified(self.head, self.payload if payload is None else payload,
                      self.digest, self.seq, self.type, self.offset, self.version)

    def json(self):
        try:
            obj = json.loads(bytes(self.payload))
        except ValueError:
            raise StreamCorrupt(f"record {self.seq}: bad JSON payload") from None
        if not isinstance(obj, dict):
            raise StreamCorrupt(f"record {self.seq}: JSON payload is not an object")
        return obj


class Reader:
    """Reads and verifies records from a binary file object. `before(n)` (the rate
    limiter) runs before n bytes of records are taken. Raises StreamTruncated at a
    premature end, StreamCorrupt on a bad checksum or a broken rule. `version` is
    the stream's format version, known once preamble() has read it.

    The stream is read in large pieces (one read call returns what has arrived, up
    to READ_CHUNK) into chunks that are never reused: a record's payload is a view
    into its chunk, valid as long as it is referenced (no copy per record); only a
    record cut by the end of a chunk is copied into the next one. A pipe on `inp`
    is grown to PIPE_SIZE (fewer wake-ups of sender and receiver per MiB)."""

    def __init__(self, inp, before=None):
        self.inp = inp
        self.before = before or (lambda n: None)
        self.version = None
        self.seq = None
        self.bytes = 0              # taken (records parsed), not read ahead
        self._readinto = getattr(inp, "readinto1", None) or inp.readinto
        self._chunk = memoryview(bytearray(0))
        self._pos = self._end = 0   # unparsed bytes: _chunk[_pos:_end]
        grow_pipe(inp)

    def _need(self, n):
        """At least n unparsed bytes in the chunk (reading as much as has arrived)."""
        if self._end - self._pos >= n:
            return
        if len(self._chunk) - self._pos < n:
            have = self._end - self._pos
            chunk = memoryview(bytearray(max(READ_CHUNK, n)))
            chunk[:have] = self._chunk[self._pos:self._end]
            self._chunk, self._pos, self._end = chunk, 0, have
        try:
            while self._end - self._pos < n:
                k = self._readinto(self._chunk[self._end:])
                if not k:
                    break
                self._end += k
        except (ConnectionError, TimeoutError, OSError) as e:
            raise StreamTruncated(f"stream broken after {self.bytes + self._end - self._pos}"
                                  f" bytes: {e.strerror or e}") from None
        if self._end - self._pos < n:
            raise StreamTruncated(f"stream ended after {self.bytes + self._end - self._pos}"
                                  " bytes, before its trailer")

    def _take(self, n):
        """The next n bytes (a view into the chunk)."""
        self.before(n)
        self._need(n)
        pos = self._pos
        self._pos = pos + n
        self.bytes += n
        return self._chunk[pos:pos + n]

    def preamble(self):
        magic, version, flags = PREAMBLE.unpack(self._take(PREAMBLE.size))
        if magic != MAGIC:
            raise StreamCorrupt("not an archipelago sync stream (bad magic)")
        self.version = check_version(version)
        if flags:
            raise StreamCorrupt(f"unknown stream flags {flags:#x} (corrupt or newer)")

    def next(self, defer=False):
        """The next verified Record (its payload a view that stays valid). With
        `defer`, the checksum is left to `Record.verify()` (e.g. in another thread);
        everything else is checked here."""
        raw = self._take(RECORD_HEAD)
        head, want = raw[:HEAD.size], bytes(raw[HEAD.size:])
        rtype, flags, r1, seq, offset, length, plen, r2 = HEAD.unpack(head)
        limit = MAX_PAYLOAD if rtype == DATA else MAX_META
        if rtype not in TYPE_NAMES or plen > limit or flags or r1 or r2:
            raise StreamCorrupt(f"record after #{self.seq}: bad record header")
        payload = self._take(plen) if plen else b""
        got = want if defer else _verified(head, payload, want, seq, rtype, offset,
                                           self.version)
        if (rtype == DATA and plen != length) or (rtype == ZERO and plen):
            raise StreamCorrupt(f"record {seq}: payload length {plen} does not match "
                                f"{length}")
        if self.seq is not None and seq != self.seq + 1:
            raise StreamCorrupt(f"record {seq} follows record {self.seq}: records "
                                "missing or out of order")
        self.seq = seq
        rec = Record(rtype, seq, offset, length, payload, got, self.version)
        rec.head = head if defer else None
        return rec


def grow_pipe(f, size=None):
    """Grow the pipe under file object `f` (if it is one) to `size` bytes (PIPE_SIZE):
    a 64 KiB pipe holds one data record, so sender and receiver would wake each
    other for every record. Best effort: any failure leaves the pipe as it is."""
    try:
        fd = f.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, F_SETPIPE_SZ, size or PIPE_SIZE)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass


def _verified(head, payload, want, seq, rtype, offset, version):
    got = digest(head, payload, version)
    if got != want:
        raise StreamCorrupt(f"record {seq} ({TYPE_NAMES[rtype]} at offset {offset}): "
                            "checksum mismatch")
    return got
