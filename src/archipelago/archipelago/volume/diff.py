"""Changed byte ranges between two trees of one lineage, in time proportional to the
change: subtrees with the same node UID are skipped, and within a changed object
the dirty bitmap (or the overlay bitmaps) narrow the change to chunks.

The lineage from A to B is every tree between them: the snapshots of a volume in
generation order, and through `origin` the snapshot (or image) a clone came from.
The change A->B is the union of the changes of consecutive pairs, each of which the
bitmaps describe exactly; where a tree in between was removed the comparison still
holds but may widen to whole objects.
"""
import itertools

from ..errors import InvalidArgument
from . import format as fmt
from .format import BASE, ENTRY_SIZE, FANOUT, LEAF_ENTRIES, OWN_CONTENT, SHARED, span


def _key(t):
    return (t.hdr["id"], t.rec["name"] if t.rec else None)


def _lineage(eng, t, depth=0):
    """[Target] from the oldest ancestor to `t`."""
    from .engine import Target
    h = t.hdr
    chain = []
    oid = h.get("origin_id")
    if oid and depth < 64:
        ohdr = eng.catalog.header(oid, h.get("origin"))
        if ohdr is not None:
            osnap = h.get("origin_snap")
            orec = next((r for r in ohdr["snapshots"] if r["name"] == osnap), None)
            if osnap is None or orec is not None:
                chain = _lineage(eng, Target(h.get("origin"), ohdr, orec, None), depth + 1)
    limit = t.rec["gen"] if t.rec else None
    for rec in sorted(h["snapshots"], key=lambda r: r["gen"]):
        if limit is None or rec["gen"] < limit:
            chain.append(Target(f"{h['name']}@{rec['name']}", h, rec, None))
    chain.append(t)
    return chain


def entry_mask(ea, eb, full):
    """Chunks that differ between entry `ea` (older) and `eb` (newer)."""
    if ea is None and eb is None:
        return 0
    if ea is None or eb is None:
        e = ea or eb
        return full if e.flags & (BASE | OWN_CONTENT) else e.own_bm
    if ea.own == eb.own and (ea.flags ^ eb.flags) & ~SHARED == 0:
        return (ea.own_bm ^ eb.own_bm) | (ea.dirty_bm ^ eb.dirty_bm)
    if not eb.flags & OWN_CONTENT and eb.src == ea.own[:fmt.UID_SIZE]:
        return eb.dirty_bm                      # derived from ea by one copy-up
    if eb.flags & BASE and ea.flags & BASE and eb.base == ea.base:
        return ea.own_bm | eb.own_bm
    if eb.flags & BASE and eb.base == ea.own:
        return eb.own_bm
    return full


def _entry(leaf, i):
    if leaf is None:
        return None
    e = leaf.entry(i)
    return None if e.zero else e


def _walk(va, ua, vb, ub, level, first, out, full):
    if ua == ub:
        return
    na = va.node(ua) if ua is not None else None
    nb = vb.node(ub) if ub is not None else None
    # A copy of the older node: only the slots changed since the copy can differ.
    slots = nb.modified_slots() if na is not None and nb is not None and nb.src == na.uid \
        else range(LEAF_ENTRIES if level == 0 else FANOUT)
    if level == 0:
        da = na.data if na is not None else None
        db = nb.data if nb is not None else None
        for i in slots:
            lo, hi = i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE
            if da is not None and db is not None and da[lo + 1:hi] == db[lo + 1:hi] \
                    and (da[lo] ^ db[lo]) & ~SHARED == 0:
                continue                    # the same entry (maybe marked shared)
            m = entry_mask(_entry(na, i), _entry(nb, i), full)
            if m:
                out[first + i] = out.get(first + i, 0) | m
        return
    sub = span(level - 1)
    for i in slots:
        ca = na.child(i) if na is not None else None
        cb = nb.child(i) if nb is not None else None
        if ca != cb:
            _walk(va, ca, vb, cb, level - 1, first + i * sub, out, full)


def _pair(eng, ta, tb, out, full):
    va, vb = eng._view(ta), eng._view(tb)
    ra, rb = va.root, vb.root
    da, db = va.depth, vb.depth
    # Align depths: a tree grown by resize has the old root under child 0.
    while db > da and rb is not None:
        node = vb.node(rb)
        sub = span(db - 1)
        for i, c in node.children():
            if i:
                _walk(va, None, vb, c, db - 1, i * sub, out, full)
        rb, db = node.child(0), db - 1
    while da > db and ra is not None:
        ra, da = va.node(ra).child(0), da - 1
    _walk(va, ra, vb, rb, db if ra is None else da, 0, out, full)


def diff_specs(eng, from_spec, to_spec):
    ta, tb = eng._resolve(from_spec), eng._resolve(to_spec)
    if ta.object_size != tb.object_size:
        raise InvalidArgument(f"{from_spec} and {to_spec} have different object sizes")
    chain = _lineage(eng, tb)
    keys = [_key(t) for t in chain]
    if _key(ta) not in keys:
        raise InvalidArgument(f"{from_spec} is not an ancestor of {to_spec} "
                              "(diff works within one lineage of snapshots and clones)")
    chain = chain[keys.index(_key(ta)):]
    osize = tb.object_size
    full = fmt.full_bitmap(osize)
    changed = {}
    for a, b in itertools.pairwise(chain):
        _pair(eng, a, b, changed, full)
    return _ranges(changed, osize, tb.size)


def _ranges(changed, osize, size):
    cs = fmt.chunk_size(osize)
    out = []
    for idx in sorted(changed):
        mask, c = changed[idx], 0
        while mask >> c:
            if mask >> c & 1:
                start = idx * osize + c * cs
                end = min(start + cs, size)
                if start < end:
                    if out and out[-1][0] + out[-1][1] == start:
                        out[-1] = (out[-1][0], end - out[-1][0])
                    else:
                        out.append((start, end - start))
            c += 1
    return out
