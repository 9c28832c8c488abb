"""Group commit: the map updates of many writes made durable together.

`map_write` commits each first write of a chunk with one durable leaf replace
(and copies the rest of a shared chunk up with FUA): ~3 syncs per write. A
batch -- the ranges a sync receive is about to write -- does the same work for
all of them (the chunk copies queued, then run many at a time), then makes it
durable with one store flush (the copied-up chunks) and one replace per dirty
leaf. The crash rule holds as for single writes: the
caller writes the data only after `map_write_batch` returned, i.e. after the map
changes that make it visible are durable; a crash before that leaves the old map
(objects copied up but not yet named are garbage for the GC).

`whole=True` is for a caller that will write *every byte* of the ranges and can
run again after a crash (a sync commit: the stream is verified and re-applied
from its spool): chunks a range covers entirely are not copied up from the base,
so after a crash between the batch and its writes they may read as zeros until
the caller runs again. Partially covered chunks are copied as always.
"""
from . import format as fmt
from .format import LEAF_ENTRIES
from .mapping import CopyUp, Extent, chunk_mask, needs_update, split

BATCH_MAX = 4096        # ranges in one batch (bounds the reply and the time held)


def covered_mask(off, length, object_size):
    """Chunks of one object that [off, off+length) covers entirely."""
    cs = fmt.chunk_size(object_size)
    first, end = -(-off // cs), (off + length) // cs
    if end <= first:
        return 0
    return ((1 << end) - 1) ^ ((1 << first) - 1)


def map_write_batch(st, store, ranges, whole=False):
    """MAPW of every (offset, length) in `ranges` on held VolumeState `st` (its lock
    held); returns [[Extent, ...] per range]. One flush and one write per dirty leaf
    commit them all at the end."""
    osize, gen = st.hdr["object_size"], st.hdr["gen"]
    copy = CopyUp(store, st.lease, osize, fua=False)
    dirty, out = {}, []
    for offset, length in ranges:
        extents = []
        for idx, off, n in split(offset, length, osize):
            mask = chunk_mask(off, n, osize)
            entry, private = st.entry(idx)
            if needs_update(entry, mask, private):
                skip = covered_mask(off, n, osize) if whole else 0
                entry = copy.prepare(None if entry is None or entry.zero else entry,
                                     mask, gen, private, skip=skip)
                # writable_leaf writes only nodes on the path to this leaf (copies
                # of shared ones); a leaf already private and dirty here keeps its
                # in-memory changes until the commit below.
                wleaf = st.writable_leaf(idx)
                wleaf.set_entry(idx % LEAF_ENTRIES, entry)
                dirty[wleaf.uid] = wleaf
            extents.append(Extent(entry.own_name(), off, n))
        out.append(extents)
    copy.finish()
    if dirty:
        if copy.copied:
            store.flush()         # copied-up chunks durable before a leaf names them
        for node in dirty.values():
            st.write_node(node)
    return out
