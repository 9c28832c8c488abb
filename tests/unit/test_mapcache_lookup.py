"""MapCache.lookup: the single-object fast path agrees with the general walk."""
import random

from archipelago.peers.mapcache import MapCache

OSZ, CS = 4 << 20, 64 << 10


def _slow(c, offset, length):
    """The general walk, object by object (what lookup did before its fast path)."""
    out, pos, end = [], offset, offset + length
    while pos < end:
        idx, off = divmod(pos, OSZ)
        n = min(OSZ - off, end - pos)
        e = c.entries.get(idx)
        first, last = off // CS, (off + n - 1) // CS
        m = (1 << (last + 1)) - (1 << first)
        if e is None or e[1] & m != m:
            return None
        out.append([e[0], off, n])
        pos += n
    return out


def test_lookup_matches_the_general_walk():
    rnd = random.Random(7)
    c = MapCache(OSZ, CS)
    # learn some random ranges of 4 objects
    for _ in range(40):
        off = rnd.randrange(0, 4 * OSZ - 1)
        n = rnd.randrange(1, min(3 * CS, 4 * OSZ - off) + 1)
        ext, pos = [], off
        while pos < off + n:
            idx, o = divmod(pos, OSZ)
            k = min(OSZ - o, off + n - pos)
            ext.append([f"obj{idx}", o, k])
            pos += k
        c.learn(off, {"epoch": 1, "extents": ext})
    hits = 0
    for _ in range(5000):
        off = rnd.randrange(0, 4 * OSZ - 1)
        n = rnd.randrange(1, min(2 * CS, 4 * OSZ - off) + 1)
        got = c.lookup(off, n, 60, write=True)
        assert got == _slow(c, off, n), (off, n)
        hits += got is not None
    assert hits
    assert c.lookup(OSZ - 4096, 8192, 60) in (None, _slow(c, OSZ - 4096, 8192))
