"""The lease holder's view of one volume head: its header, its private (mutable) map
nodes, and the copy-on-write steps that make a leaf writable.

Every step is one atomic store write, ordered so that a crash between any two leaves
a loadable map that reads the old data: a new node is written (unreferenced) before
the private parent or the header that will point at it is replaced, and a copied
node holds exactly what the node it replaces held.
"""
import threading

from . import format as fmt
from .format import FANOUT, LEAF_ENTRIES, OWN, SHARED, Node, hexuid, new_uid, span, unhex
from .tree import TreeView


class VolumeState:
    def __init__(self, store, cache, hdr, lease):
        self.store = store
        self.cache = cache
        self.hdr = hdr
        self.lease = lease
        self.lock = threading.RLock()
        self.mutable = {}                  # uid -> Node private to the current generation
        self.owner = unhex(hdr["id"])
        self.temporary = False             # held for one metadata operation only

    @property
    def vid(self):
        return self.hdr["id"]

    @property
    def name(self):
        return self.hdr["name"]

    def view(self):
        h = self.hdr
        return TreeView(self.cache, h["root"], h["depth"], self.owner, h["gen"], self.mutable)

    def entry(self, idx):
        """(map entry of object `idx` or None, whether its leaf is private to us)."""
        view = self.view()
        leaf = view.leaf(idx)
        if leaf is None:
            return None, False
        return leaf.entry(idx % LEAF_ENTRIES), view.private(leaf)

    # -- persistence ---------------------------------------------------------------------
    def save_header(self):
        self.store.replace(fmt.header_name(self.vid), fmt.encode_header(self.hdr),
                           lease=self.lease)

    def write_node(self, node):
        self.store.replace(node.name, node.encode(), lease=self.lease)

    def trim(self, keep):
        """Forget all but `keep` private nodes (called between operations only: the
        store has every one of them, written through). Bounds memory per open volume."""
        while len(self.mutable) > keep:
            self.mutable.pop(next(iter(self.mutable)))

    def new_generation(self):
        """After a snapshot: every node is shared now; forget the mutable cache."""
        for node in self.mutable.values():
            self.cache.put(node)
        self.mutable.clear()

    # -- copy-on-write of map blocks -------------------------------------------------------
    def _new_node(self, level, data=None, src=fmt.NO_UID):
        node = Node(new_uid(), level, self.hdr["gen"], self.owner, data, src)
        self.mutable[node.uid] = node
        return node

    def _copy(self, node):
        """A private copy of a shared node. Leaf entries are marked SHARED: their objects
        belong to the snapshot or origin that still holds the old node."""
        data = bytearray(node.data)
        if node.level == 0:
            for i in range(0, LEAF_ENTRIES * fmt.ENTRY_SIZE, fmt.ENTRY_SIZE):
                if data[i] & OWN:
                    data[i] |= SHARED
        return self._new_node(node.level, data, node.uid)

    def _set_root(self, node):
        self.write_node(node)
        self.hdr["root"] = hexuid(node.uid)
        self.save_header()

    def writable_leaf(self, idx):
        """The private leaf for object `idx`, copying shared nodes and creating missing
        ones on the way down (each change committed before the next)."""
        view = self.view()
        depth = self.hdr["depth"]
        if view.root is None:
            node = self._new_node(depth)
            self._set_root(node)
        else:
            node = view.node(view.root)
            if not view.private(node):
                node = self._copy(node)
                self._set_root(node)
        for level in range(depth, 0, -1):
            slot = (idx // span(level - 1)) % FANOUT
            cuid = node.child(slot)
            child = view.node(cuid) if cuid is not None else None
            if child is not None and view.private(child):
                node = child
                continue
            child = self._new_node(level - 1) if child is None else self._copy(child)
            self.write_node(child)
            node.set_child(slot, child.uid)
            self.write_node(node)              # private: replaced in place, atomically
            node = child
        return node

    def grow_depth(self, depth):
        """Add root levels until the tree addresses span(depth) objects (O(depth))."""
        old_root = self.hdr["root"]
        for level in range(self.hdr["depth"] + 1, depth + 1):
            if old_root is not None:
                node = self._new_node(level)
                node.set_child(0, unhex(old_root))
                self.write_node(node)
                old_root = hexuid(node.uid)
        self.hdr["root"], self.hdr["depth"] = old_root, depth

    def clear_from(self, nobjects):
        """Zero every entry at index >= nobjects (shrink)."""
        view = self.view()
        for first, leaf in list(view.leaves(nobjects)):
            idxs = [first + i for i, _ in leaf.entries() if first + i >= nobjects]
            if not idxs:
                continue
            leaf = self.writable_leaf(idxs[0])
            for idx in idxs:
                leaf.set_entry(idx % LEAF_ENTRIES, None)
            self.write_node(leaf)
