"""Reading map trees: node loading and caching, lookups and walks.

Nodes reachable from a snapshot or image root never change again, and neither does a
node of a volume head that belongs to an older generation or to another volume, so
those are kept in one LRU shared by every volume (`NodeCache`). A node that is still
mutable (owned by the volume at its current generation) is cached only by the lease
holder's VolumeState, which is the only writer; anyone else re-reads it.
"""
import threading
from collections import OrderedDict

from ..errors import BackendError, NotFound
from .format import (
    FANOUT,
    LEAF_ENTRIES,
    NODE_PREFIX,
    Entry,
    Node,
    hexuid,
    span,
    unhex,
)


class NodeCache:
    """LRU of immutable decoded nodes, keyed by UID."""

    def __init__(self, store, capacity=2048):
        self.store = store
        self.capacity = capacity
        self._lru = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid):
        with self._lock:
            node = self._lru.get(uid)
            if node is not None:
                self._lru.move_to_end(uid)
            return node

    def put(self, node):
        with self._lock:
            self._lru[node.uid] = node
            self._lru.move_to_end(node.uid)
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)

    def fetch(self, uid):
        try:
            raw = self.store.get(NODE_PREFIX + hexuid(uid))
        except NotFound:
            raise BackendError(f"map node {hexuid(uid)} is missing from the store") from None
        return Node.decode(uid, raw)


class TreeView:
    """A read view of one map tree: a root at `depth`. With `vid`/`gen` set (a volume
    head), nodes that are private to that head go to `mutable` (or are not cached)."""

    def __init__(self, cache, root, depth, vid=None, gen=None, mutable=None):
        self.cache = cache
        self.root = unhex(root) if isinstance(root, str) else root
        self.depth = depth
        self.owner = unhex(vid) if isinstance(vid, str) else vid
        self.gen = gen
        self.mutable = mutable

    def private(self, node):
        return self.owner is not None and node.owner == self.owner and node.gen == self.gen

    def node(self, uid):
        if self.mutable is not None:
            node = self.mutable.get(uid)
            if node is not None:
                return node
        node = self.cache.get(uid)
        if node is not None:
            return node
        node = self.cache.fetch(uid)
        if not self.private(node):
            self.cache.put(node)
        elif self.mutable is not None:
            self.mutable[uid] = node
        return node

    def leaf(self, idx):
        """The leaf holding object `idx`, or None if that range was never written."""
        uid = self.root
        if uid is None or idx >= span(self.depth):
            return None
        node = self.node(uid)
        for level in range(self.depth, 0, -1):
            uid = node.child((idx // span(level - 1)) % FANOUT)
            if uid is None:
                return None
            node = self.node(uid)
        return node

    def lookup(self, idx):
        leaf = self.leaf(idx)
        if leaf is None:
            return None
        e = leaf.entry(idx % LEAF_ENTRIES)
        return None if e.zero else e

    def leaves(self, start=0, stop=None):
        """(first object index, leaf) of every allocated leaf overlapping [start, stop)."""
        if self.root is None:
            return
        stop = span(self.depth) if stop is None else stop
        yield from self._walk(self.root, self.depth, 0, start, stop)

    def _walk(self, uid, level, first, start, stop):
        node = self.node(uid)
        if level == 0:
            yield first, node
            return
        sub = span(level - 1)
        for i, child in node.children():
            lo = first + i * sub
            if lo + sub > start and lo < stop:
                yield from self._walk(child, level - 1, lo, start, stop)

    def entries(self, start=0, stop=None):
        """(object index, Entry) of every allocated entry in [start, stop)."""
        for first, leaf in self.leaves(start, stop):
            for i, e in leaf.entries():
                if start <= first + i and (stop is None or first + i < stop):
                    yield first + i, e

    def node_uids(self):
        """Every node UID of the tree (for GC marking), without loading leaves twice."""
        if self.root is None:
            return
        stack = [(self.root, self.depth)]
        while stack:
            uid, level = stack.pop()
            yield uid, level
            if level:
                stack.extend((c, level - 1) for _, c in self.node(uid).children())


def entry_at(view, idx):
    """The Entry of object `idx` in `view` (None for zeros)."""
    return view.lookup(idx)


__all__ = ["Entry", "NodeCache", "TreeView", "entry_at"]
