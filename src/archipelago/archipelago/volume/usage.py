"""Space accounting: VolumeInfo, allocated and unique bytes of a map tree."""
from dataclasses import asdict, dataclass, field

from . import format as fmt
from .format import BASE, OWN_CONTENT, SHARED


@dataclass
class VolumeInfo:
    name: str                     # "VOL", "VOL@SNAP" or an image name
    size: int
    object_size: int
    origin: str | None = None     # the snapshot or image this volume was cloned from
    snapshots: list = field(default_factory=list)
    allocated: int | None = 0     # bytes backed by objects (thin: unwritten = 0)
    unique: int | None = 0        # bytes only this tree holds (freed by removing it)
    lock_owner: str | None = None
    lock_generation: int | None = None
    read_only: bool = False
    image: bool = False           # a hashed, content-addressed image
    id: str = ""
    epoch: int = 0
    created: float = 0.0
    guid: str | None = None       # a snapshot's identity, unique across nodes (identity.py)

    def to_json(self):
        return asdict(self)


def entry_bytes(e, object_size):
    """Logical bytes an entry makes readable from objects."""
    if e.flags & (BASE | OWN_CONTENT):
        return object_size
    return bin(e.own_bm).count("1") * fmt.chunk_size(object_size)


def own_bytes(e, object_size):
    """Bytes held in the entry's own object."""
    if e.flags & OWN_CONTENT or (not e.flags & BASE and e.own_bm == 0):
        return object_size
    return bin(e.own_bm).count("1") * fmt.chunk_size(object_size)


def allocated(view, object_size):
    return sum(entry_bytes(e, object_size) for _, e in view.entries())


def unique(view, others, object_size):
    """Bytes of `view`'s own objects that no tree in `others` references at the same
    object index (leaves shared by node UID are skipped whole). A lower bound: what a
    head shares by copy-on-write (SHARED entries, old leaves) counts as shared even
    once the snapshot or origin holding it is gone."""
    total = 0
    for first, leaf in view.leaves():
        if view.owner is not None and not view.private(leaf):
            continue
        other_leaves = [o.leaf(first) for o in others]
        if any(ol is not None and ol.uid == leaf.uid for ol in other_leaves):
            continue
        for i, e in leaf.entries():
            if e.flags & SHARED:
                continue
            own = e.own_name()
            shared = False
            for ol in other_leaves:
                if ol is None:
                    continue
                oe = ol.entry(i)
                if not oe.zero and own in (oe.own_name(), oe.base_name()):
                    shared = True
                    break
            if not shared:
                total += own_bytes(e, object_size)
    return total
